"""Saga outcome counters and step durations from saga events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from meshwatch.instrumentation import (
    EventType,
    HypervisorEvent,
    HypervisorEventBus,
    SagaMetricsCollector,
)
from meshwatch.instrumentation.catalogue import (
    SAGA_COMPENSATIONS,
    SAGA_ESCALATIONS,
    SAGA_STEP_DURATION,
    SAGA_STEPS,
    SAGAS,
)
from meshwatch.instrumentation.drops import event_drops

T0 = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)


@pytest.fixture
def bus() -> HypervisorEventBus:
    return HypervisorEventBus()


def emit(
    bus: HypervisorEventBus,
    event_type: EventType,
    seconds: float = 0.0,
    agent: str | None = "did:o",
    **payload: Any,
) -> None:
    at = T0 + timedelta(seconds=seconds)
    bus.emit(HypervisorEvent(event_type, "s1", agent, payload=payload, timestamp=at))


def families(collector: SagaMetricsCollector) -> dict:
    return {f.metric: f.samples for f in collector.metric_families()}


def test_outcomes_and_durations(bus: HypervisorEventBus) -> None:
    collector = SagaMetricsCollector(bus)
    emit(bus, EventType.SAGA_CREATED, saga_id="d")
    emit(bus, EventType.SAGA_STEP_STARTED, 0, saga_id="d", step_id="v")
    emit(bus, EventType.SAGA_STEP_COMMITTED, 0.3, saga_id="d", step_id="v")
    emit(bus, EventType.SAGA_STEP_STARTED, 1, saga_id="d", step_id="m")
    emit(bus, EventType.SAGA_STEP_FAILED, 4, saga_id="d", step_id="m")
    emit(bus, EventType.SAGA_COMPENSATING, 5, saga_id="d", step_id="v")
    emit(bus, EventType.SAGA_ESCALATED, 6, saga_id="d")
    emit(bus, EventType.SAGA_COMPLETED, 7, agent=None, saga_id="e")
    samples = families(collector)
    assert samples[SAGAS] == {("did:o", "escalated"): 1.0, ("", "completed"): 1.0}
    assert samples[SAGA_STEPS] == {
        ("did:o", "committed"): 1.0,
        ("did:o", "failed"): 1.0,
        ("did:o", "compensated"): 1.0,
    }
    assert samples[SAGA_COMPENSATIONS] == {("did:o",): 1.0}
    assert samples[SAGA_ESCALATIONS] == {("did:o",): 1.0}
    committed = samples[SAGA_STEP_DURATION][("committed",)]
    failed = samples[SAGA_STEP_DURATION][("failed",)]
    assert (committed.count, committed.sum) == (1, pytest.approx(0.3))
    assert (failed.count, failed.sum) == (1, 3.0)
    # 0.3 s falls in the 0.5 s bucket, not the 0.25 s one
    bounds = SAGA_STEP_DURATION.buckets
    assert committed.cumulative_counts[bounds.index(0.25)] == 0
    assert committed.cumulative_counts[bounds.index(0.5)] == 1
    assert collector.open_steps == 0


def test_step_end_without_start_counts_but_is_not_timed(bus: HypervisorEventBus) -> None:
    collector = SagaMetricsCollector(bus)
    emit(bus, EventType.SAGA_STEP_COMMITTED, saga_id="d", step_id="v")
    samples = families(collector)
    assert samples[SAGA_STEPS] == {("did:o", "committed"): 1.0}
    assert samples[SAGA_STEP_DURATION] == {}


def test_open_steps_are_bounded_and_cleared_by_saga_end(bus: HypervisorEventBus) -> None:
    collector = SagaMetricsCollector(bus, max_open_steps=2)
    before = event_drops("saga_metrics", "open_step_evicted")
    for i in range(4):
        emit(bus, EventType.SAGA_STEP_STARTED, i, saga_id=f"s{i}", step_id="x")
    assert collector.open_steps == 2
    assert event_drops("saga_metrics", "open_step_evicted") == before + 2
    emit(bus, EventType.SAGA_FAILED, 9, saga_id="s3")
    assert collector.open_steps == 1
    assert collector._open_by_saga == {"s2": {"x"}}
    emit(bus, EventType.SAGA_STEP_FAILED, 9, saga_id="s2", step_id="x")
    assert collector.open_steps == 0
    assert collector._open_by_saga == {}


@pytest.mark.parametrize(
    ("event_type", "payload", "reason"),
    [
        (EventType.SAGA_COMPLETED, {}, "missing_saga_id"),
        (EventType.SAGA_STEP_STARTED, {"saga_id": "s"}, "missing_step_id"),
        (EventType.SAGA_STEP_COMMITTED, {"saga_id": None, "step_id": "a"}, "missing_saga_id"),
    ],
)
def test_malformed_events_are_dropped(
    bus: HypervisorEventBus, event_type: EventType, payload: dict, reason: str
) -> None:
    collector = SagaMetricsCollector(bus)
    before = event_drops("saga_metrics", reason)
    emit(bus, event_type, **payload)
    assert event_drops("saga_metrics", reason) == before + 1
    assert all(not samples for samples in families(collector).values())


def test_constructor_validates(bus: HypervisorEventBus) -> None:
    with pytest.raises(ValueError):
        SagaMetricsCollector(bus, max_open_steps=0)
    with pytest.raises(TypeError):
        SagaMetricsCollector(bus, max_open_steps="10")  # type: ignore[arg-type]
    collector = SagaMetricsCollector(bus)
    collector.close()
    emit(bus, EventType.SAGA_COMPLETED, saga_id="x")
    assert families(collector)[SAGAS] == {}
