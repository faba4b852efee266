"""GenAI agent/tool spans: convention names, parents, errors, metrics; W3C propagation in headers."""

from __future__ import annotations

import queue
import threading
import traceback

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode
from prometheus_client import CollectorRegistry

from meshwatch.instrumentation.context import current_trace, use_trace
from meshwatch.instrumentation.genai import (
    GENAI_METRICS,
    GenAIMetrics,
    execute_tool,
    extract,
    inject,
    invoke_agent,
    receive,
)
from meshwatch.instrumentation.prometheus import ScrapeExporter
from meshwatch.instrumentation.stores import HistogramValue, MetricSource
from meshwatch.instrumentation.trace import CausalTraceId


class Tracing:
    """A private tracer provider with an in-memory exporter, and a private metrics source."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.metrics = GenAIMetrics()

    def agent(self, name: str, **kwargs: object):  # type: ignore[no-untyped-def]
        return invoke_agent(name, tracer_provider=self.provider, metrics=self.metrics, **kwargs)

    def tool(self, name: str, **kwargs: object):  # type: ignore[no-untyped-def]
        return execute_tool(name, tracer_provider=self.provider, metrics=self.metrics, **kwargs)

    def spans(self) -> dict[str, ReadableSpan]:
        return {span.name: span for span in self.exporter.get_finished_spans()}

    def histogram(self, attr: str, labels: tuple[str, str]) -> HistogramValue:
        value = getattr(self.metrics, attr).items()[labels]
        assert isinstance(value, HistogramValue)
        return value


@pytest.fixture
def tracing() -> Tracing:
    return Tracing()


class Boom(Exception):
    pass


def test_agent_and_tool_spans_follow_the_genai_conventions(tracing: Tracing) -> None:
    with (
        tracing.agent("researcher", agent_id="did:mesh:r", conversation_id="conv-1") as agent,
        tracing.tool("web_search", call_id="call_7", tool_type="function"),
    ):
        pass
    spans = tracing.spans()
    outer, inner = spans["invoke_agent researcher"], spans["execute_tool web_search"]
    assert outer.kind is SpanKind.INTERNAL and inner.kind is SpanKind.INTERNAL
    assert dict(outer.attributes) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "researcher",
        "gen_ai.provider.name": "meshwatch",  # required by the conventions
        "gen_ai.system": "meshwatch",  # pre-1.37 name, without the stability opt-in
        "meshwatch.agent.id": "did:mesh:r",  # gen_ai.agent.id is for remote agents only
        "gen_ai.conversation.id": "conv-1",
    }
    assert dict(inner.attributes) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "web_search",
        "gen_ai.tool.call.id": "call_7",
        "gen_ai.tool.type": "function",
    }
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id
    assert outer.context.span_id == agent.get_span_context().span_id
    assert outer.status.status_code is StatusCode.UNSET


def test_a_remote_agent_call_is_a_client_span(tracing: Tracing) -> None:
    with tracing.agent("planner", remote=True, provider="openai"):
        pass
    span = tracing.spans()["invoke_agent planner"]
    assert span.kind is SpanKind.CLIENT
    assert span.attributes["gen_ai.provider.name"] == "openai"


def test_durations_are_recorded_with_the_trace_as_exemplar(tracing: Tracing) -> None:
    with tracing.agent("researcher") as span, tracing.tool("search"):
        pass
    agent = tracing.histogram("invoke_agent_duration", ("researcher", ""))
    tool = tracing.histogram("execute_tool_duration", ("search", ""))
    assert agent.count == tool.count == 1
    assert agent.sum >= tool.sum >= 0
    trace_hex = f"{span.get_span_context().trace_id:032x}"
    assert [e.labels["trace_id"] for e in agent.exemplars if e] == [trace_hex]


def test_a_failure_marks_the_span_and_propagates_untouched(tracing: Tracing) -> None:
    raised = Boom("quota exceeded")

    def call_tool() -> None:
        raise raised

    with pytest.raises(Boom) as info, tracing.agent("researcher"), tracing.tool("search"):
        call_tool()
    assert info.value is raised
    assert traceback.extract_tb(info.value.__traceback__)[-1].name == "call_tool"
    for name in ("invoke_agent researcher", "execute_tool search"):
        span = tracing.spans()[name]
        assert span.attributes["error.type"] == "Boom"
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "Boom: quota exceeded"
        assert [e.name for e in span.events] == ["exception"]
    assert tracing.histogram("execute_tool_duration", ("search", "Boom")).count == 1
    assert tracing.histogram("invoke_agent_duration", ("researcher", "Boom")).count == 1


class Opaque:
    def __str__(self) -> str:
        return "opaque"


def test_none_and_non_scalar_attributes_never_break_export(tracing: Tracing) -> None:
    attributes = {
        "keep": 1,
        "none": None,
        "nested": {"a": [1, 2]},
        "seq": [1, 2],
        "mixed": [1, "a", None],
        "obj": Opaque(),
        "huge": 2**70,
    }
    with tracing.agent("a", agent_id=None, attributes=attributes), tracing.tool("t", call_id=None):
        pass
    spans = tracing.spans()
    attrs = dict(spans["invoke_agent a"].attributes)
    assert "none" not in attrs and "gen_ai.agent.id" not in attrs
    assert attrs["keep"] == 1 and attrs["seq"] == (1, 2)
    assert attrs["nested"] == "{'a': [1, 2]}" and attrs["obj"] == "opaque"
    assert attrs["mixed"] == "[1, 'a', None]" and attrs["huge"] == str(2**70)
    assert "gen_ai.tool.call.id" not in spans["execute_tool t"].attributes
    assert encode_spans(list(spans.values())).resource_spans, "the OTLP encoder accepts them"


def test_spans_nest_under_the_current_causal_trace(tracing: Tracing) -> None:
    causal = CausalTraceId().child()
    with use_trace(causal), tracing.agent("worker") as span:
        inside = current_trace()
    recorded = tracing.spans()["invoke_agent worker"]
    assert recorded.context.trace_id == causal.otel_trace_id
    assert recorded.parent is not None and recorded.parent.is_remote
    assert recorded.parent.span_id == causal.otel_span_id
    assert inside is not None, "inside the span the causal trace is the span"
    assert inside.otel_trace_id == causal.otel_trace_id
    assert inside.otel_span_id == span.get_span_context().span_id
    assert current_trace() is None


def test_inject_writes_traceparent_for_the_current_span_or_causal_trace(tracing: Tracing) -> None:
    assert inject() == {}
    causal = CausalTraceId()
    with use_trace(causal):
        assert inject({"other": "x"}) == {"other": "x", "traceparent": causal.to_traceparent()}
    with tracing.agent("a") as span:
        headers = inject({})
    ctx = span.get_span_context()
    flags = f"{int(ctx.trace_flags):02x}"
    assert headers == {"traceparent": f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{flags}"}
    assert int(flags, 16) & 1, "sampled"


def test_tracestate_travels_with_the_trace(tracing: Tracing) -> None:
    incoming = {
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "tracestate": "vendor=abc",
    }
    with receive(incoming), tracing.agent("relay"):
        outgoing = inject({})
    assert outgoing["tracestate"] == "vendor=abc"
    assert outgoing["traceparent"].split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    "headers",
    [
        {"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        {"traceparent": b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        {"traceparent": ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]},
    ],
    ids=["any-case-key", "bytes-value", "list-value"],
)
def test_extract_reads_headers_as_transports_carry_them(tracing: Tracing, headers: dict) -> None:
    with tracing.agent("writer", context=extract(headers)):
        pass
    span = tracing.spans()["invoke_agent writer"]
    assert f"{span.context.trace_id:032x}" == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span.parent is not None and span.parent.span_id == 0x00F067AA0BA902B7


@pytest.mark.parametrize(
    "headers",
    [None, "not-a-mapping", {}, {"traceparent": "garbage"}, {"traceparent": 42}],
    ids=["none", "str", "empty", "malformed", "int"],
)
def test_bad_headers_start_a_fresh_trace_without_raising(tracing: Tracing, headers: object) -> None:
    with receive(headers), tracing.agent("writer"):  # type: ignore[arg-type]
        pass
    assert tracing.spans()["invoke_agent writer"].parent is None


def test_a_conversation_across_threads_is_one_trace(tracing: Tracing) -> None:
    mailbox: queue.Queue[dict] = queue.Queue()
    seen: dict[str, object] = {}

    def writer() -> None:
        headers = mailbox.get(timeout=30)
        with receive(headers), tracing.agent("writer") as span:
            seen["causal"] = current_trace()
            seen["span"] = span.get_span_context()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with tracing.agent("researcher") as sender:
            mailbox.put(inject({}))
            thread.join(30)
    finally:
        thread.join(30)
    assert not thread.is_alive()
    spans = tracing.spans()
    researcher, writer_span = spans["invoke_agent researcher"], spans["invoke_agent writer"]
    assert writer_span.context.trace_id == researcher.context.trace_id
    assert writer_span.parent is not None
    assert writer_span.parent.span_id == sender.get_span_context().span_id
    causal = seen["causal"]
    assert isinstance(causal, CausalTraceId)
    assert causal.otel_trace_id == researcher.context.trace_id


def test_the_default_metrics_are_exposed_through_the_prometheus_adapter() -> None:
    assert isinstance(GENAI_METRICS, MetricSource)
    provider = TracerProvider()
    with invoke_agent("exposed-agent", tracer_provider=provider):
        pass
    registry = CollectorRegistry()
    registry.register(ScrapeExporter([GENAI_METRICS], include_self_metrics=False))
    family = GENAI_METRICS.invoke_agent_duration.metric.name
    count = registry.get_sample_value(
        f"{family}_count", {"gen_ai_agent_name": "exposed-agent", "error_type": ""}
    )
    assert count is not None and count >= 1


def test_without_an_sdk_spans_are_no_ops_but_durations_still_count() -> None:
    metrics = GenAIMetrics()
    causal = CausalTraceId()
    with (
        use_trace(causal),
        invoke_agent("bare", tracer_provider=NoOpTracerProvider(), metrics=metrics),
    ):
        headers = inject({})
    assert headers["traceparent"].split("-")[1] == causal.trace_id_hex32
    assert metrics.invoke_agent_duration.items()[("bare", "")].count == 1
