"""Saga spans: event-time timing, the tutorial's names and attributes, sinks, bounds."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from meshwatch.instrumentation import (
    CausalTraceId,
    EventType,
    HypervisorEvent,
    HypervisorEventBus,
    SagaSpanExporter,
    SagaSpanRecord,
)
from meshwatch.instrumentation.drops import event_drops, span_drops

T0 = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)


@pytest.fixture
def bus() -> HypervisorEventBus:
    return HypervisorEventBus()


@pytest.fixture
def exporter(bus: HypervisorEventBus) -> SagaSpanExporter:
    return SagaSpanExporter(bus)


def emit(
    bus: HypervisorEventBus,
    event_type: EventType,
    seconds: float = 0.0,
    *,
    agent: str | None = None,
    session: str | None = None,
    trace: str | None = None,
    **payload: Any,
) -> None:
    bus.emit(
        HypervisorEvent(
            event_type,
            session,
            agent,
            trace,
            payload=payload,
            timestamp=T0 + timedelta(seconds=seconds),
        )
    )


class ListSink:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float, dict[str, Any], str]] = []

    def record_span(self, name, start_time, end_time, attributes, status):  # type: ignore[no-untyped-def]
        self.calls.append((name, start_time, end_time, attributes, status))


def test_step_span_is_timed_by_its_events(
    bus: HypervisorEventBus, exporter: SagaSpanExporter
) -> None:
    step = {"saga_id": "deploy", "step_id": "v", "step_action": "validate"}
    emit(bus, EventType.SAGA_STEP_STARTED, 1.0, **step)
    emit(bus, EventType.SAGA_STEP_COMMITTED, 3.5, **step)
    (span,) = exporter.completed_spans
    assert span.start_time == (T0 + timedelta(seconds=1)).timestamp()
    assert span.end_time == (T0 + timedelta(seconds=3.5)).timestamp()
    assert span.duration_seconds == 2.5
    assert span.status == "ok"
    assert span.causal_trace_id is None
    assert "agent.saga.result" not in span.attributes
    assert "agent.did" not in span.attributes  # absent, not None


def test_failed_step_attributes(bus: HypervisorEventBus, exporter: SagaSpanExporter) -> None:
    emit(bus, EventType.SAGA_STEP_STARTED, saga_id="s", step_id="m", step_action="migrate")
    emit(
        bus,
        EventType.SAGA_STEP_FAILED,
        2,
        agent="did:a",
        session="s1",
        saga_id="s",
        step_id="m",
        error="connection_timeout",
        reason="database unreachable after 30s",
    )
    (span,) = exporter.completed_spans
    assert span.name == "saga.step.migrate"  # the action remembered from the start event
    assert span.status == "error"
    assert span.attributes == {
        "agent.saga.id": "s",
        "agent.saga.step_id": "m",
        "agent.saga.step_action": "migrate",
        "agent.saga.state": "error",
        "agent.saga.error": "connection_timeout",
        "agent.saga.reason": "database unreachable after 30s",
        "agent.did": "did:a",
        "session.id": "s1",
    }


def test_compensation_span(bus: HypervisorEventBus, exporter: SagaSpanExporter) -> None:
    emit(bus, EventType.SAGA_COMPENSATING, 4, saga_id="s", step_id="r", step_action="rollback")
    # A compensation that announced its start gets a timed span.
    emit(bus, EventType.SAGA_STEP_STARTED, 5, saga_id="s", step_id="r2", step_action="undo")
    emit(bus, EventType.SAGA_COMPENSATING, 7, saga_id="s", step_id="r2", reason="step failed")
    instant, timed = exporter.completed_spans
    assert (instant.name, instant.status, instant.duration_seconds) == (
        "saga.compensate.rollback",
        "compensating",
        0.0,
    )
    assert instant.attributes["agent.saga.state"] == "compensating"
    assert (timed.name, timed.duration_seconds) == ("saga.compensate.undo", 2.0)
    assert timed.attributes["agent.saga.reason"] == "step failed"


@pytest.mark.parametrize(
    ("end", "name", "status"),
    [
        (EventType.SAGA_COMPLETED, "saga.completed.deploy-v2", "ok"),
        (EventType.SAGA_ESCALATED, "saga.escalated.deploy-v2", "error"),
        (EventType.SAGA_FAILED, "saga.failed.deploy-v2", "error"),
    ],
)
def test_saga_level_spans(
    bus: HypervisorEventBus, exporter: SagaSpanExporter, end: EventType, name: str, status: str
) -> None:
    emit(bus, EventType.SAGA_CREATED, 0, agent="did:o", session="s1", saga_id="deploy-v2")
    emit(bus, end, 12.5, saga_id="deploy-v2", reason="manual review")
    (span,) = exporter.completed_spans
    assert (span.name, span.status, span.duration_seconds) == (name, status, 12.5)
    assert span.attributes == {
        "agent.saga.id": "deploy-v2",
        "agent.saga.state": status,
        "agent.saga.reason": "manual review",
        "agent.did": "did:o",  # from SAGA_CREATED when the end event has none
        "session.id": "s1",
    }
    assert exporter.open_sagas == 0


def test_saga_without_created_starts_at_its_first_step(
    bus: HypervisorEventBus, exporter: SagaSpanExporter
) -> None:
    emit(bus, EventType.SAGA_STEP_STARTED, 2, saga_id="x", step_id="1")
    emit(bus, EventType.SAGA_STEP_COMMITTED, 3, saga_id="x", step_id="1")
    emit(bus, EventType.SAGA_COMPLETED, 9, saga_id="x")
    assert [s.duration_seconds for s in exporter.completed_spans] == [1.0, 7.0]
    assert exporter.completed_spans[0].name == "saga.step.1"  # no action: the step id


def test_causal_trace_travels_in_attributes(
    bus: HypervisorEventBus, exporter: SagaSpanExporter
) -> None:
    root = CausalTraceId()
    step_trace = root.child()
    emit(bus, EventType.SAGA_CREATED, trace=root.full_id, saga_id="t")
    emit(bus, EventType.SAGA_STEP_STARTED, 1, trace=step_trace.full_id, saga_id="t", step_id="a")
    emit(bus, EventType.SAGA_STEP_COMMITTED, 2, trace=step_trace.full_id, saga_id="t", step_id="a")
    emit(bus, EventType.SAGA_COMPLETED, 3, saga_id="t")
    step, saga = exporter.completed_spans
    assert step.attributes["agent.causal_trace_id"] == step_trace.full_id
    assert step.causal_trace_id == step_trace.full_id
    assert saga.causal_trace_id == root.full_id  # from SAGA_CREATED
    parsed = CausalTraceId.from_string(step.causal_trace_id)
    assert parsed.parent_span_id == root.span_id


def test_sink_receives_five_argument_calls(bus: HypervisorEventBus) -> None:
    sink = ListSink()
    exporter = SagaSpanExporter(bus, sink=sink)
    emit(bus, EventType.SAGA_STEP_STARTED, 1, saga_id="s", step_id="a", step_action="go")
    emit(bus, EventType.SAGA_STEP_COMMITTED, 2, saga_id="s", step_id="a", result=42)
    ((name, start, end, attributes, status),) = sink.calls
    assert (name, status, end - start) == ("saga.step.go", "ok", 1.0)
    assert attributes["agent.saga.result"] == 42
    attributes["agent.saga.result"] = "mutated by sink"
    assert exporter.completed_spans[0].attributes["agent.saga.result"] == 42
    assert exporter.sink is sink
    exporter.detach_sink()
    emit(bus, EventType.SAGA_COMPLETED, 3, saga_id="s")
    assert len(sink.calls) == 1
    assert len(exporter.completed_spans) == 2
    with pytest.raises(TypeError):
        exporter.attach_sink(object())  # type: ignore[arg-type]


def test_raising_sink_is_counted_and_never_propagates(
    bus: HypervisorEventBus, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def record_span(self, name, start_time, end_time, attributes, status):  # type: ignore[no-untyped-def]
            raise ConnectionError("collector down")

    exporter = SagaSpanExporter(bus, sink=Broken())
    before = span_drops("sink_error")
    with caplog.at_level(logging.WARNING, logger="meshwatch.instrumentation.saga_spans"):
        for i in range(3):
            emit(bus, EventType.SAGA_COMPLETED, i, saga_id=f"s{i}")
    assert span_drops("sink_error") == before + 3
    assert len(exporter.completed_spans) == 3
    assert bus.subscriber_errors() == {}
    assert "collector down" in caplog.text


def test_completed_spans_are_bounded(bus: HypervisorEventBus) -> None:
    exporter = SagaSpanExporter(bus, max_spans=3)
    for i in range(10):
        emit(bus, EventType.SAGA_COMPLETED, i, saga_id=f"s{i}")
    assert [s.name for s in exporter.completed_spans] == [
        "saga.completed.s7",
        "saga.completed.s8",
        "saga.completed.s9",
    ]


def test_open_steps_and_sagas_are_bounded(bus: HypervisorEventBus) -> None:
    exporter = SagaSpanExporter(bus, max_open_steps=2, max_open_sagas=2)
    steps_before = span_drops("open_step_evicted")
    sagas_before = span_drops("open_saga_evicted")
    for i in range(5):
        emit(bus, EventType.SAGA_STEP_STARTED, i, saga_id="s", step_id=f"step{i}")
    assert exporter.open_steps == 2
    assert span_drops("open_step_evicted") == steps_before + 3
    for i in range(4):
        emit(bus, EventType.SAGA_CREATED, i, saga_id=f"other{i}")
    assert exporter.open_sagas == 2
    assert span_drops("open_saga_evicted") >= sagas_before + 3
    # An evicted step that ends later still yields a (zero-length) span.
    emit(bus, EventType.SAGA_STEP_COMMITTED, 10, saga_id="s", step_id="step0")
    assert exporter.completed_spans[-1].duration_seconds == 0.0


def test_saga_end_discards_its_unfinished_steps(
    bus: HypervisorEventBus, exporter: SagaSpanExporter
) -> None:
    before = span_drops("unfinished_step")
    emit(bus, EventType.SAGA_STEP_STARTED, 0, saga_id="s", step_id="a")
    emit(bus, EventType.SAGA_STEP_STARTED, 0, saga_id="s", step_id="b")
    emit(bus, EventType.SAGA_ESCALATED, 1, saga_id="s")
    assert exporter.open_steps == 0
    assert span_drops("unfinished_step") == before + 2


@pytest.mark.parametrize(
    ("event_type", "payload", "reason"),
    [
        (EventType.SAGA_STEP_STARTED, {}, "missing_saga_id"),
        (EventType.SAGA_COMPLETED, {"saga_id": ""}, "missing_saga_id"),
        (EventType.SAGA_COMPLETED, {"saga_id": ["x"]}, "missing_saga_id"),
        (EventType.SAGA_STEP_COMMITTED, {"saga_id": "s"}, "missing_step_id"),
        (EventType.SAGA_STEP_STARTED, {"saga_id": "s", "step_id": 1.5}, "missing_step_id"),
    ],
)
def test_malformed_saga_events_are_dropped(
    bus: HypervisorEventBus,
    exporter: SagaSpanExporter,
    event_type: EventType,
    payload: dict,
    reason: str,
) -> None:
    before = event_drops("saga_spans", reason)
    emit(bus, event_type, **payload)
    assert event_drops("saga_spans", reason) == before + 1
    assert exporter.completed_spans == []
    assert exporter.open_steps == 0


def test_out_of_order_end_never_precedes_start(
    bus: HypervisorEventBus, exporter: SagaSpanExporter
) -> None:
    emit(bus, EventType.SAGA_STEP_STARTED, 10, saga_id="s", step_id="a")
    emit(bus, EventType.SAGA_STEP_COMMITTED, 5, saga_id="s", step_id="a")
    assert exporter.completed_spans[0].duration_seconds == 0.0


def test_non_scalar_payload_values_become_text(
    bus: HypervisorEventBus, exporter: SagaSpanExporter
) -> None:
    emit(bus, EventType.SAGA_STEP_FAILED, saga_id=7, step_id=3, error={"code": 503})
    (span,) = exporter.completed_spans
    assert span.attributes["agent.saga.id"] == "7"
    assert span.attributes["agent.saga.error"] == "{'code': 503}"


def test_record_is_a_value() -> None:
    record = SagaSpanRecord("n", 1.0, 3.0, {"a": 1}, "ok")
    assert record.duration_seconds == 2.0
    assert record == SagaSpanRecord("n", 1.0, 3.0, {"a": 1}, "ok")


@pytest.mark.parametrize(
    "kwargs", [{"max_spans": 0}, {"max_open_steps": -1}, {"max_open_sagas": 1.5}]
)
def test_constructor_validates(bus: HypervisorEventBus, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SagaSpanExporter(bus, **kwargs)


def test_no_dispatch_for_ring_events(bus: HypervisorEventBus, exporter: SagaSpanExporter) -> None:
    assert bus._routes[EventType.RING_BREACH_DETECTED].handlers == ()
    assert bus._routes[EventType.SAGA_CREATED].handlers != ()
    exporter.close()
    assert all(not route.handlers for route in bus._routes.values())


def test_late_saga_created_fills_in_the_implicit_saga(
    bus: HypervisorEventBus, exporter: SagaSpanExporter
) -> None:
    emit(bus, EventType.SAGA_STEP_STARTED, 5, saga_id="late", step_id="a")
    emit(bus, EventType.SAGA_CREATED, 4, agent="did:o", session="s9", saga_id="late")
    emit(bus, EventType.SAGA_COMPLETED, 10, saga_id="late")
    (span,) = exporter.completed_spans
    assert span.duration_seconds == 6.0
    assert (span.attributes["agent.did"], span.attributes["session.id"]) == ("did:o", "s9")


# --- parity with upstream's SagaSpanExporter -------------------------------------------------


def test_records_expose_saga_step_and_action_like_upstream(
    bus: HypervisorEventBus, exporter: SagaSpanExporter
) -> None:
    emit(bus, EventType.SAGA_CREATED, saga_id="deploy")
    emit(bus, EventType.SAGA_STEP_STARTED, 1, saga_id="deploy", step_id="s1", step_action="migrate")
    emit(bus, EventType.SAGA_STEP_COMMITTED, 2, saga_id="deploy", step_id="s1")
    emit(bus, EventType.SAGA_COMPLETED, 3, saga_id="deploy")
    step, saga = exporter.completed_spans
    assert (step.saga_id, step.step_id, step.step_action) == ("deploy", "s1", "migrate")
    assert (saga.saga_id, saga.step_id, saga.step_action) == ("deploy", "", "")
    assert exporter.events_processed == 4


def test_a_saga_without_saga_id_is_the_saga_of_its_causal_trace(
    bus: HypervisorEventBus, exporter: SagaSpanExporter
) -> None:
    trace = "a1b2c3d4e5f6/89abcdef"
    emit(bus, EventType.SAGA_STEP_STARTED, 1, trace=trace, step_id="s1", action="validate")
    emit(bus, EventType.SAGA_STEP_COMMITTED, 4, trace=trace, step_id="s1")
    (span,) = exporter.completed_spans
    assert span.name == "saga.step.validate", "'action' is a synonym of 'step_action'"
    assert (span.saga_id, span.duration_seconds) == (trace, 3.0)


def test_reset_forgets_spans_open_steps_and_the_count(
    bus: HypervisorEventBus, exporter: SagaSpanExporter
) -> None:
    emit(bus, EventType.SAGA_STEP_STARTED, saga_id="a", step_id="s1")
    emit(bus, EventType.SAGA_STEP_COMMITTED, 1, saga_id="a", step_id="s1")
    emit(bus, EventType.SAGA_STEP_STARTED, 2, saga_id="a", step_id="s2")
    exporter.reset()
    assert (exporter.completed_spans, exporter.open_steps, exporter.open_sagas) == ([], 0, 0)
    assert exporter.events_processed == 0
    emit(bus, EventType.SAGA_STEP_COMMITTED, 3, saga_id="a", step_id="s2")
    (span,) = exporter.completed_spans
    assert span.duration_seconds == 0.0, "the step opened before the reset is forgotten"
    assert exporter.events_processed == 1
