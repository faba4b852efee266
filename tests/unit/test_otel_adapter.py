"""The OpenTelemetry adapter: spans at event times, causal trace ids, bounded counted export."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode, format_span_id, format_trace_id
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from meshwatch.instrumentation import (
    CausalTraceId,
    EventType,
    GovernanceMetrics,
    HypervisorEvent,
    HypervisorEventBus,
    SagaSpanExporter,
    current_trace_id_hex,
)
from meshwatch.instrumentation.catalogue import GOVERNANCE_LATENCY
from meshwatch.instrumentation.drops import span_drops
from meshwatch.instrumentation.otel import (
    BoundedBatchSpanProcessor,
    OTelSpanSink,
    active_otel_trace_id,
    configure_tracing,
    otel_attributes_of,
)
from meshwatch.instrumentation.prometheus import ScrapeExporter

T0 = datetime(2025, 3, 1, 12, 0, 0, 123457, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ns(moment: datetime) -> int:
    """Exact integer nanoseconds of a datetime (no float on the way)."""
    return (moment - EPOCH) // timedelta(microseconds=1) * 1_000


@pytest.fixture
def memory() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


@pytest.fixture
def saga(memory: tuple[TracerProvider, InMemorySpanExporter]) -> HypervisorEventBus:
    bus = HypervisorEventBus()
    SagaSpanExporter(bus, sink=OTelSpanSink(memory[0]))
    return bus


def emit(
    bus: HypervisorEventBus,
    event_type: EventType,
    at: datetime,
    trace: CausalTraceId | None = None,
    **payload: object,
) -> None:
    bus.emit(
        HypervisorEvent(
            event_type=event_type,
            session_id="s1",
            agent_did="did:mesh:orchestrator",
            causal_trace_id=trace,
            payload=payload,
            timestamp=at,
        )
    )


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def test_a_step_span_starts_and_ends_at_its_event_times(
    saga: HypervisorEventBus, memory: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    ids = {"saga_id": "deploy-v2", "step_id": "validate-config", "step_action": "validate"}
    emit(saga, EventType.SAGA_STEP_STARTED, T0, **ids)
    done = T0 + timedelta(seconds=0.5, microseconds=1)
    emit(saga, EventType.SAGA_STEP_COMMITTED, done, result="ok!", **ids)

    span = by_name(memory[1])["saga.step.validate"]
    assert span.start_time == ns(T0)
    assert span.end_time == ns(done)
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {
        "agent.saga.id": "deploy-v2",
        "agent.saga.step_id": "validate-config",
        "agent.saga.step_action": "validate",
        "agent.saga.state": "ok",
        "agent.saga.result": "ok!",
        "agent.did": "did:mesh:orchestrator",
        "session.id": "s1",
    }
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "meshwatch.instrumentation"


def test_failures_are_error_spans_with_their_message(
    saga: HypervisorEventBus, memory: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    ids = {"saga_id": "deploy-v2", "step_id": "run-migrations", "step_action": "migrate"}
    emit(saga, EventType.SAGA_STEP_STARTED, T0, **ids)
    emit(
        saga,
        EventType.SAGA_STEP_FAILED,
        T0 + timedelta(seconds=30),
        error="connection_timeout",
        reason="database unreachable after 30s",
        **ids,
    )
    emit(saga, EventType.SAGA_COMPENSATING, T0 + timedelta(seconds=31), saga_id="deploy-v2", step_id="rollback-config", step_action="rollback")  # fmt: skip
    emit(saga, EventType.SAGA_ESCALATED, T0 + timedelta(seconds=40), saga_id="deploy-v2", reason="rollback incomplete")  # fmt: skip

    spans = by_name(memory[1])
    failed = spans["saga.step.migrate"]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == "connection_timeout"
    assert failed.attributes is not None
    assert failed.attributes["agent.saga.reason"] == "database unreachable after 30s"
    compensating = spans["saga.compensate.rollback"]
    assert compensating.status.status_code is StatusCode.UNSET
    assert compensating.attributes is not None
    assert compensating.attributes["agent.saga.state"] == "compensating"
    escalated = spans["saga.escalated"]
    assert escalated.status.status_code is StatusCode.ERROR
    assert escalated.status.description == "rollback incomplete"
    assert escalated.start_time == ns(T0)  # the saga span covers the whole saga
    assert escalated.end_time == ns(T0 + timedelta(seconds=40))


@pytest.mark.parametrize("outcome", [EventType.SAGA_COMPLETED, EventType.SAGA_FAILED])
def test_saga_level_span_names_leave_the_saga_id_to_an_attribute(
    saga: HypervisorEventBus,
    memory: tuple[TracerProvider, InMemorySpanExporter],
    outcome: EventType,
) -> None:
    for saga_id in ("deploy-v2", "deploy-v3"):
        emit(saga, EventType.SAGA_CREATED, T0, saga_id=saga_id)
        emit(saga, outcome, T0 + timedelta(seconds=2), saga_id=saga_id)

    spans = memory[1].get_finished_spans()
    name = outcome.value  # "saga.completed" / "saga.failed"
    assert [s.name for s in spans] == [name, name]
    assert [s.attributes["agent.saga.id"] for s in spans if s.attributes] == [
        "deploy-v2",
        "deploy-v3",
    ]


def test_a_direct_caller_gets_the_saga_id_attribute_from_the_name(
    memory: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    OTelSpanSink(memory[0]).record_span("saga.escalated.x-1", 1.0, 2.0, {}, "error")
    (span,) = memory[1].get_finished_spans()
    assert span.name == "saga.escalated"
    assert dict(span.attributes or {}) == {"agent.saga.id": "x-1"}
    assert (span.start_time, span.end_time) == (1_000_000_000, 2_000_000_000)


def test_spans_of_one_causal_trace_form_one_trace_under_the_causal_span(
    saga: HypervisorEventBus, memory: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    root = CausalTraceId()
    researcher, writer = root.child(), root.child()
    other = CausalTraceId()
    for trace, saga_id in ((researcher, "a"), (researcher, "b"), (writer, "c"), (other, "d")):
        emit(saga, EventType.SAGA_STEP_STARTED, T0, trace, saga_id=saga_id, step_id="s", step_action=saga_id)  # fmt: skip
        emit(saga, EventType.SAGA_STEP_COMMITTED, T0 + timedelta(seconds=1), trace, saga_id=saga_id, step_id="s")  # fmt: skip

    spans = by_name(memory[1])
    a, b, c, d = (spans[f"saga.step.{x}"] for x in "abcd")
    assert {s.context.trace_id for s in (a, b, c)} == {root.otel_trace_id}
    assert format_trace_id(a.context.trace_id) == root.trace_id_hex32
    assert d.context.trace_id == other.otel_trace_id != root.otel_trace_id
    assert a.parent is not None and b.parent is not None and c.parent is not None
    assert a.parent.span_id == b.parent.span_id == researcher.otel_span_id
    assert c.parent.span_id == writer.otel_span_id
    assert a.parent.is_remote
    # The parent is exactly the span a traceparent header from this causal id names.
    assert researcher.to_traceparent().split("-")[2] == format_span_id(a.parent.span_id)
    span_ids = [s.context.span_id for s in memory[1].get_finished_spans()]
    assert len(set(span_ids)) == len(span_ids)
    assert researcher.otel_span_id not in span_ids  # the causal span is the parent, not the span
    assert a.attributes is not None
    assert a.attributes["agent.causal_trace_id"] == researcher.full_id


@pytest.mark.parametrize(
    "causal", [None, "not-a-trace", "abc/def", 42], ids=["absent", "garbage", "short", "int"]
)
def test_without_a_usable_causal_id_a_span_starts_its_own_trace(
    memory: tuple[TracerProvider, InMemorySpanExporter], causal: object
) -> None:
    provider, exporter = memory
    sink = OTelSpanSink(provider)
    attributes = {} if causal is None else {"agent.causal_trace_id": causal}
    with provider.get_tracer("test").start_as_current_span("agent-work") as active:
        sink.record_span("saga.step.x", 1.0, 2.0, attributes, "ok")
    recorded = by_name(exporter)["saga.step.x"]
    assert recorded.parent is None  # never adopted by whatever span is active
    assert recorded.context.trace_id != active.get_span_context().trace_id


def test_attribute_values_are_made_exportable() -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

    converted = otel_attributes_of(
        {
            "none": None,
            "text": "t",
            "flag": True,
            "count": 3,
            "ratio": 0.5,
            "huge": 2**70,
            "mapping": {"a": 1},
            "words": ["a", "b"],
            "mixed": [1, "a"],
            "empty": [],
            "bytes": b"\x00\x01",
            "weird": Unprintable(),
            7: "non-str key",
        }
    )
    assert converted == {
        "text": "t",
        "flag": True,
        "count": 3,
        "ratio": 0.5,
        "huge": str(2**70),
        "mapping": "{'a': 1}",
        "words": ("a", "b"),
        "mixed": "[1, 'a']",
        "empty": "[]",
        "bytes": str(b"\x00\x01"),
        "weird": "<unprintable Unprintable>",
        "7": "non-str key",
    }


def test_odd_attributes_reach_a_real_otlp_export(
    memory: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    # The OTLP encoder rejects a whole batch over one bad value; prove ours encode.
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    OTelSpanSink(memory[0]).record_span(
        "saga.step.x", 1.0, 2.0, {"huge": 2**70, "m": {"a": [1]}, "none": None}, "ok"
    )
    encoded = encode_spans(memory[1].get_finished_spans()).SerializeToString()
    assert encoded


def test_governance_latency_carries_the_active_span_as_exemplar(
    memory: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, _ = memory
    OTelSpanSink(provider)  # registers the active-span trace id provider
    governance = GovernanceMetrics()
    assert active_otel_trace_id() is None
    with provider.get_tracer("test").start_as_current_span("policy-check") as span:
        expected = format_trace_id(span.get_span_context().trace_id)
        assert active_otel_trace_id() == expected
        assert current_trace_id_hex() == expected
        governance.record_decision(False, "did:mesh:x", "shell_exec", 3.0)

    registry = CollectorRegistry()
    registry.register(ScrapeExporter([governance], include_self_metrics=False))
    exemplars = [
        s.exemplar
        for family in text_string_to_metric_families(generate_openmetrics(registry).decode())
        if family.name == GOVERNANCE_LATENCY.name
        for s in family.samples
        if s.exemplar is not None
    ]
    assert [e.labels for e in exemplars] == [{"trace_id": expected}]


# --- export through the bounded processor --------------------------------------


class GateExporter(SpanExporter):
    """Blocks every export until released, like a collector that stopped answering."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.exported: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(60)
        self.exported.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def test_a_stuck_exporter_never_blocks_the_caller_and_overflow_is_counted() -> None:
    gate = GateExporter()
    processor = BoundedBatchSpanProcessor(
        gate, max_queue_size=8, max_export_batch_size=4, schedule_delay_millis=10
    )
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    sink = OTelSpanSink(provider)
    try:
        for i in range(8):
            sink.record_span(f"saga.step.warmup{i}", 1.0, 2.0, {}, "ok")
        assert gate.entered.wait(30), "the export thread never picked up a batch"
        # The exporter is now stuck inside export(); every further call must still return.
        for i in range(100):
            sink.record_span(f"saga.step.s{i}", 1.0, 2.0, {}, "ok")
        assert not gate.release.is_set()
        assert processor.dropped("queue_full") >= 100 - 4  # at most one batch left meanwhile
        assert processor.exported == 0
    finally:
        gate.release.set()
        provider.shutdown()
    assert processor.exported == len(gate.exported)
    lost = sum(processor.dropped(r) for r in ("queue_full", "export_failed", "shutdown"))
    assert len(gate.exported) + lost == 108
    assert processor.pending == 0


def test_spans_ended_after_shutdown_are_counted() -> None:
    processor = BoundedBatchSpanProcessor(InMemorySpanExporter())
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    provider.shutdown()
    before = span_drops("shutdown")
    OTelSpanSink(provider).record_span("saga.step.late", 1.0, 2.0, {}, "ok")
    assert processor.dropped("shutdown") == 1
    assert span_drops("shutdown") - before >= 1, "the process-wide metric counts it too"


def test_shutdown_timeout_is_checked() -> None:
    with pytest.raises(ValueError, match="shutdown_timeout"):
        BoundedBatchSpanProcessor(InMemorySpanExporter(), shutdown_timeout=-1)


@pytest.mark.parametrize(
    "endpoint", ["127.0.0.1:4318", "localhost", "ftp://h:21", "http://", "http://h:99999", "x y"]
)
def test_an_endpoint_that_is_not_a_url_is_refused_at_configuration(endpoint: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        configure_tracing(endpoint=endpoint, set_global=False)
