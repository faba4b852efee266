"""GenAISpanMetrics on spans made here: attribution, memory bound, legacy names, failures."""

from __future__ import annotations

import asyncio
import logging

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from meshwatch.instrumentation.drops import event_drops
from meshwatch.instrumentation.genai import (
    SCHEMA_URL,
    GenAIMetrics,
    GenAISpanMetrics,
    create_agent,
    emits_legacy_attributes,
    invoke_agent,
    invoke_workflow,
    llm_call,
)
from meshwatch.instrumentation.stores import HistogramValue

PRICES = {"m-large": {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_creation": 3.75}}


class Setup:
    def __init__(self, **kwargs: object) -> None:
        self.genai = GenAISpanMetrics(prices=PRICES, **kwargs)  # type: ignore[arg-type]
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(self.genai)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("some.other.library")

    def agent(self, name: str | None, **attributes: object) -> trace.Span:
        attrs: dict[str, object] = {"gen_ai.operation.name": "invoke_agent", **attributes}
        if name is not None:
            attrs["gen_ai.agent.name"] = name
        return self.tracer.start_span(f"invoke_agent {name or ''}".strip(), attributes=attrs)  # type: ignore[arg-type]

    def chat(self, model: str = "m-large", **attributes: object) -> trace.Span:
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "acme",
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 100,
            **attributes,
        }
        return self.tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attrs)  # type: ignore[arg-type]

    def calls(self, agent: str, model: str = "m-large") -> float:
        self.genai.flush()
        return self.genai.calls.get(("chat", "acme", model, agent))

    def cost(self, agent: str, model: str = "m-large") -> float:
        self.genai.flush()
        return self.genai.cost.get(("chat", "acme", model, agent))


def test_a_call_is_credited_to_the_enclosing_agent_however_deep() -> None:
    s = Setup()
    agent = s.agent("planner")
    with (
        trace.use_span(agent, end_on_exit=True),
        s.tracer.start_as_current_span("http POST"),
        s.tracer.start_as_current_span("retry"),
    ):
        s.chat().end()
    assert s.calls("planner") == 1
    assert s.cost("planner") == pytest.approx((1000 * 3.0 + 100 * 15.0) / 1e6)
    assert s.genai.open_spans() == 0


def test_a_call_outside_any_agent_has_no_agent() -> None:
    s = Setup()
    s.chat().end()
    assert s.calls("") == 1
    assert s.genai.open_spans() == 0, "spans outside agents are not tracked at all"


def test_nested_agents_credit_the_innermost_and_handoffs_the_agent_handed_to() -> None:
    s = Setup()
    outer = s.agent("orchestrator")
    with trace.use_span(outer, end_on_exit=True):
        s.chat().end()
        inner = s.agent("researcher")
        with trace.use_span(inner, end_on_exit=True):
            s.chat().end()
            s.chat().end()
        s.chat().end()
    assert (s.calls("orchestrator"), s.calls("researcher")) == (2, 2)


def test_a_call_that_ends_after_its_agent_keeps_that_agent() -> None:
    s = Setup()
    agent = s.agent("async-worker")
    chat = s.tracer.start_span(
        "chat m-large",
        context=trace.set_span_in_context(agent),
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "acme",
            "gen_ai.request.model": "m-large",
            "gen_ai.usage.input_tokens": 10,
        },
    )
    agent.end()  # the agent's span ends first (fire-and-forget work)
    chat.end()
    assert s.calls("async-worker") == 1
    assert s.genai.open_spans() == 0


def test_an_agent_name_set_after_the_span_started_still_counts() -> None:
    s = Setup()
    agent = s.agent(None)
    with trace.use_span(agent, end_on_exit=True):
        chat = s.chat()
        agent.set_attribute("gen_ai.agent.name", "late-named")
        chat.end()
    assert s.calls("late-named") == 1


def test_open_spans_are_bounded_and_evictions_counted() -> None:
    s = Setup(max_open_spans=8)
    before = event_drops("genai_spans", "open_spans_full")
    agents = [s.agent(f"a{i}") for i in range(20)]
    assert s.genai.open_spans() == 8
    assert event_drops("genai_spans", "open_spans_full") - before == 12
    for agent in agents:
        agent.end()
    assert s.genai.open_spans() == 0


def test_cache_tokens_are_priced_apart_from_the_other_input_tokens() -> None:
    s = Setup()
    with trace.use_span(s.agent("cacher"), end_on_exit=True):
        s.chat(
            **{
                "gen_ai.usage.cache_read.input_tokens": 600,
                "gen_ai.usage.cache_creation.input_tokens": 200,
            }
        ).end()
    expected = (200 * 3.0 + 600 * 0.3 + 200 * 3.75 + 100 * 15.0) / 1e6
    assert s.cost("cacher") == pytest.approx(expected, rel=1e-12)
    s.genai.flush()
    assert s.genai.cache_tokens.get(("chat", "acme", "m-large", "cacher", "cache_read")) == 600
    assert s.genai.cache_tokens.get(("chat", "acme", "m-large", "cacher", "cache_creation")) == 200


def test_pre_1_37_attribute_names_are_read_as_a_fallback() -> None:
    s = Setup()
    s.tracer.start_span(
        "chat",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "acme",
            "gen_ai.request.model": "m-large",
            "gen_ai.usage.prompt_tokens": 50,
            "gen_ai.usage.completion_tokens": 5,
        },
    ).end()
    assert s.calls("") == 1
    usage = s.genai.token_usage.items()
    assert usage[("chat", "acme", "m-large", "", "input")].sum == 50
    assert usage[("chat", "acme", "m-large", "", "output")].sum == 5


def test_a_failed_call_counts_as_an_error_with_its_type() -> None:
    s = Setup()
    with trace.use_span(s.agent("flaky"), end_on_exit=True):
        s.chat(
            **{
                "error.type": "RateLimitError",
                "gen_ai.usage.input_tokens": 0,
                "gen_ai.usage.output_tokens": 0,
            }
        ).end()
        unnamed = s.chat()
        unnamed.set_status(Status(StatusCode.ERROR))
        unnamed.end()
    s.genai.flush()
    errors = s.genai.errors.items()
    assert errors[("chat", "acme", "m-large", "flaky", "RateLimitError")] == 1
    assert errors[("chat", "acme", "m-large", "flaky", "_OTHER")] == 1
    assert s.calls("flaky") == 2
    duration = s.genai.operation_duration.items()
    assert duration[("chat", "acme", "m-large", "flaky", "RateLimitError")].count == 1


def test_bad_usage_values_are_dropped_and_counted_never_raised() -> None:
    s = Setup()
    before = event_drops("llm_metrics", "bad_token_count")
    s.chat(**{"gen_ai.usage.input_tokens": -5}).end()
    s.chat(**{"gen_ai.usage.output_tokens": "lots"}).end()
    s.genai.flush()
    assert event_drops("llm_metrics", "bad_token_count") - before == 2
    assert s.calls("") == 0


def test_agent_tool_and_workflow_spans_of_other_libraries_give_durations() -> None:
    s = Setup()
    workflow = s.tracer.start_span(
        "invoke_workflow support",
        attributes={"gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": "support"},
    )
    with (
        trace.use_span(workflow, end_on_exit=True),
        trace.use_span(s.agent("triage"), end_on_exit=True),
    ):
        s.tracer.start_span(
            "execute_tool lookup",
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup"},
        ).end()
    s.genai.flush()
    work = s.genai.work
    assert work.invoke_agent_duration.items()[("triage", "")].count == 1
    assert work.execute_tool_duration.items()[("lookup", "")].count == 1
    assert work.workflow_duration.items()[("support", "")].count == 1


def test_meshwatch_spans_record_once_not_twice() -> None:
    s = Setup()
    own = GenAIMetrics()
    with (
        invoke_workflow("support", tracer_provider=s.provider, metrics=own),
        invoke_agent("writer", tracer_provider=s.provider, metrics=own),
    ):
        with llm_call(s.genai, "m-large", provider="acme", tracer_provider=s.provider) as call:
            call.usage(input_tokens=10, output_tokens=2, response_model="m-large-2026")
        s.chat().end()  # another library's call inside meshwatch's agent span
    assert s.calls("writer") == 2, "one from llm_call, one from the foreign span"
    assert own.invoke_agent_duration.items()[("writer", "")].count == 1
    assert own.workflow_duration.items()[("support", "")].count == 1
    assert not s.genai.work.invoke_agent_duration.items(), "meshwatch's spans are not re-counted"
    spans = {span.name: span for span in s.exporter.get_finished_spans()}
    (llm,) = [
        x
        for x in s.exporter.get_finished_spans()
        if x.instrumentation_scope is not None
        and x.instrumentation_scope.name == "meshwatch.genai"
        and x.name == "chat m-large"
    ]
    assert llm.kind is SpanKind.CLIENT
    assert llm.instrumentation_scope.schema_url == SCHEMA_URL
    assert (
        dict(llm.attributes).items()
        >= {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "acme",
            "gen_ai.request.model": "m-large",
            "gen_ai.response.model": "m-large-2026",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 2,
        }.items()
    )
    agent_span = spans["invoke_agent writer"]
    assert llm.parent is not None and llm.parent.span_id == agent_span.context.span_id
    assert spans["invoke_workflow support"].attributes["gen_ai.workflow.name"] == "support"


class Overloaded(Exception):
    pass


def test_a_failing_llm_call_marks_its_span_and_counts_the_error() -> None:
    s = Setup()
    with (
        pytest.raises(Overloaded),
        invoke_agent("w", tracer_provider=s.provider, metrics=GenAIMetrics()),
        llm_call(s.genai, "m-large", provider="acme", tracer_provider=s.provider),
    ):
        raise Overloaded("529")
    s.genai.flush()
    assert s.genai.errors.get(("chat", "acme", "m-large", "w", "Overloaded")) == 1
    span = next(x for x in s.exporter.get_finished_spans() if x.name == "chat m-large")
    assert span.attributes["error.type"] == "Overloaded"
    assert span.status.status_code is StatusCode.ERROR


def test_create_agent_is_a_client_span_with_the_agent_id() -> None:
    s = Setup()
    with create_agent("helper", provider="openai", agent_id="asst_1", tracer_provider=s.provider):
        pass
    span = s.exporter.get_finished_spans()[0]
    assert span.name == "create_agent helper" and span.kind is SpanKind.CLIENT
    assert (
        dict(span.attributes).items()
        >= {
            "gen_ai.operation.name": "create_agent",
            "gen_ai.agent.id": "asst_1",
            "gen_ai.provider.name": "openai",
        }.items()
    )


def test_the_stability_opt_in_drops_the_pre_1_37_names() -> None:
    assert emits_legacy_attributes({})
    assert emits_legacy_attributes({"OTEL_SEMCONV_STABILITY_OPT_IN": "http"})
    assert not emits_legacy_attributes(
        {"OTEL_SEMCONV_STABILITY_OPT_IN": "http, gen_ai_latest_experimental"}
    )


def test_record_call_by_hand_inside_an_agent_turn() -> None:
    genai = GenAISpanMetrics(prices=PRICES)
    with invoke_agent("manual", tracer_provider=trace.NoOpTracerProvider(), metrics=GenAIMetrics()):
        genai.record_call(
            "m-large", provider="acme", input_tokens=2000, output_tokens=10, duration_seconds=0.5
        )
    genai.record_call("unknown-model", provider="acme", input_tokens=7, agent="other")
    genai.flush()
    assert genai.calls.get(("chat", "acme", "m-large", "manual")) == 1
    assert genai.cost.get(("chat", "acme", "m-large", "manual")) == pytest.approx(
        (2000 * 3.0 + 10 * 15.0) / 1e6
    )
    assert genai.unpriced_tokens.get(("chat", "acme", "unknown-model", "other", "input")) == 7
    value = genai.operation_duration.items()[("chat", "acme", "m-large", "manual", "")]
    assert isinstance(value, HistogramValue) and value.count == 1


def test_record_call_survives_a_coroutine_switch() -> None:
    genai = GenAISpanMetrics()

    async def turn(name: str) -> None:
        with invoke_agent(name, tracer_provider=trace.NoOpTracerProvider(), metrics=GenAIMetrics()):
            await asyncio.sleep(0)
            genai.record_call("m", provider="p", input_tokens=1)

    async def both() -> None:
        await asyncio.gather(turn("a"), turn("b"))

    asyncio.run(both())
    genai.flush()
    assert genai.calls.get(("chat", "p", "m", "a")) == genai.calls.get(("chat", "p", "m", "b")) == 1


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        ({"m": {"inptu": 1.0}}, "unknown token type 'inptu'"),
        ({"m": {"input": -1.0}}, "must be >= 0"),
        ({"m": {"input": "cheap"}}, "must be a number"),
        ({"": {"input": 1.0}}, "non-empty string"),
    ],
)
def test_wrong_prices_are_refused_when_configured(prices: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GenAISpanMetrics(prices=prices)  # type: ignore[arg-type]


def test_a_processor_failure_is_counted_and_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = Setup()
    before = event_drops("genai_spans", "on_end_error")

    class Broken:
        context = None

        @property
        def attributes(self) -> dict[str, object]:
            raise RuntimeError("broken span")

    with caplog.at_level(logging.WARNING):
        s.genai.on_end(Broken())  # type: ignore[arg-type]
        s.genai.flush()
    assert event_drops("genai_spans", "on_end_error") - before == 1


def test_queued_records_are_bounded_and_folded_in_inline_when_full() -> None:
    genai = GenAISpanMetrics(max_pending=5)
    for _ in range(12):
        genai.record_call("m", provider="p", agent="a", input_tokens=1)
    assert genai.calls.get(("chat", "p", "m", "a")) == 10, "two inline folds of five"
    assert len(genai._pending) == 2
    families = {f.metric.name: f for f in genai.metric_families()}
    assert families["agent_llm_calls_total"].samples[("chat", "p", "m", "a")] == 12
