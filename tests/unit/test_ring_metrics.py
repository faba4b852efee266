"""Ring metrics: transitions, breaches, live elevation durations, drops, delta export."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from meshwatch.instrumentation import (
    CardinalityGuard,
    EventType,
    HypervisorEvent,
    HypervisorEventBus,
    RingMetricsCollector,
)
from meshwatch.instrumentation.catalogue import (
    RING_BREACHES,
    RING_CURRENT,
    RING_ELEVATED,
    RING_ELEVATION_DURATION,
    RING_ELEVATIONS_DENIED,
    RING_TRANSITIONS,
)
from meshwatch.instrumentation.drops import event_drops
from meshwatch.instrumentation.ring_metrics import BATCH, UNKNOWN_AGENT
from meshwatch.instrumentation.stores import OVERFLOW

T0 = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
AGENT = "did:mesh:analyst"


class FakeClock:
    def __init__(self, at: datetime) -> None:
        self.now = at.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def bus() -> HypervisorEventBus:
    return HypervisorEventBus()


@pytest.fixture
def collector(bus: HypervisorEventBus, clock: FakeClock) -> RingMetricsCollector:
    return RingMetricsCollector(bus, clock=clock)


def emit(
    bus: HypervisorEventBus,
    event_type: EventType,
    seconds: float = 0.0,
    agent: str | None = AGENT,
    session: str | None = "s1",
    **payload: Any,
) -> None:
    bus.emit(
        HypervisorEvent(
            event_type, session, agent, payload=payload, timestamp=T0 + timedelta(seconds=seconds)
        )
    )


def test_snapshot_shape(bus: HypervisorEventBus, collector: RingMetricsCollector) -> None:
    emit(bus, EventType.RING_ASSIGNED, ring=3)
    emit(bus, EventType.RING_ELEVATED, from_ring=3, to_ring=1)
    emit(bus, EventType.RING_BREACH_DETECTED, attempted_tool="shell_exec")
    emit(bus, EventType.RING_BREACH_DETECTED, session=None)
    snapshot = collector.collect()
    assert set(snapshot) == {
        RING_TRANSITIONS.name,
        RING_BREACHES.name,
        RING_ELEVATIONS_DENIED.name,
        RING_CURRENT.name,
        RING_ELEVATION_DURATION.name,
        RING_ELEVATED.name,
        "events_processed",
    }
    assert snapshot[RING_TRANSITIONS.name] == {
        ("ring.assigned", AGENT, "s1"): 1,
        ("ring.elevated", AGENT, "s1"): 1,
    }
    assert snapshot[RING_BREACHES.name] == {(AGENT, "s1"): 1, (AGENT, ""): 1}
    assert snapshot[RING_CURRENT.name] == {AGENT: 1}
    assert snapshot[RING_ELEVATED.name] == {AGENT: 1}
    assert snapshot["events_processed"] == 4
    assert collector.events_processed == 4


def test_elevation_grows_live_then_keeps_last_length(
    bus: HypervisorEventBus, collector: RingMetricsCollector, clock: FakeClock
) -> None:
    emit(bus, EventType.RING_ASSIGNED, ring=3)
    emit(bus, EventType.RING_ELEVATED, 10, to_ring=1)
    clock.now = (T0 + timedelta(seconds=40)).timestamp()
    assert collector.collect()[RING_ELEVATION_DURATION.name] == {AGENT: 30.0}
    clock.advance(100)
    assert collector.collect()[RING_ELEVATION_DURATION.name] == {AGENT: 130.0}
    # A second ELEVATED while elevated does not restart the clock.
    emit(bus, EventType.RING_ELEVATED, 150, to_ring=0)
    assert collector.collect()[RING_ELEVATION_DURATION.name] == {AGENT: 130.0}
    assert collector.collect()[RING_CURRENT.name] == {AGENT: 0}
    emit(bus, EventType.RING_DEMOTED, 250, to_ring=3)
    clock.advance(1_000)
    snapshot = collector.collect()
    assert snapshot[RING_ELEVATION_DURATION.name] == {AGENT: 240.0}
    assert snapshot[RING_ELEVATED.name] == {AGENT: 0}
    assert snapshot[RING_CURRENT.name] == {AGENT: 3}


def test_expiry_returns_to_the_assigned_ring(
    bus: HypervisorEventBus, collector: RingMetricsCollector
) -> None:
    emit(bus, EventType.RING_ASSIGNED, ring=2)
    emit(bus, EventType.RING_ELEVATED, 5, to_ring=0)
    emit(bus, EventType.RING_ELEVATION_EXPIRED, 65)
    snapshot = collector.collect()
    assert snapshot[RING_CURRENT.name] == {AGENT: 2}
    assert snapshot[RING_ELEVATED.name] == {AGENT: 0}
    assert snapshot[RING_ELEVATION_DURATION.name] == {AGENT: 60.0}
    assert snapshot[RING_TRANSITIONS.name][("ring.elevation_expired", AGENT, "s1")] == 1


def test_partial_demotion_keeps_the_agent_elevated(
    bus: HypervisorEventBus, collector: RingMetricsCollector, clock: FakeClock
) -> None:
    emit(bus, EventType.RING_ASSIGNED, ring=3)
    emit(bus, EventType.RING_ELEVATED, 0, to_ring=0)
    emit(bus, EventType.RING_DEMOTED, 5, to_ring=1)  # still above the assigned ring 3
    clock.now = (T0 + timedelta(seconds=20)).timestamp()
    snapshot = collector.collect()
    assert snapshot[RING_ELEVATED.name] == {AGENT: 1}
    assert snapshot[RING_ELEVATION_DURATION.name] == {AGENT: 20.0}


def test_elevation_without_an_assignment(
    bus: HypervisorEventBus, collector: RingMetricsCollector
) -> None:
    emit(bus, EventType.RING_ELEVATED, 0, agent="did:x", to_ring=1)
    assert collector.collect()[RING_ELEVATED.name] == {"did:x": 1}
    emit(bus, EventType.RING_DEMOTED, 7, agent="did:x", to_ring=2)
    assert collector.collect()[RING_ELEVATED.name] == {"did:x": 0}
    assert collector.collect()[RING_ELEVATION_DURATION.name] == {"did:x": 7.0}
    # from_ring stands in for the assignment when none was seen
    emit(bus, EventType.RING_ELEVATED, 0, agent="did:y", from_ring=3, to_ring=1)
    emit(bus, EventType.RING_DEMOTED, 3, agent="did:y", to_ring=2)
    assert collector.collect()[RING_ELEVATED.name]["did:y"] == 1


def test_out_of_order_timestamps_never_go_negative(
    bus: HypervisorEventBus, collector: RingMetricsCollector
) -> None:
    emit(bus, EventType.RING_ASSIGNED, ring=3)
    emit(bus, EventType.RING_ELEVATED, 100, to_ring=1)
    emit(bus, EventType.RING_DEMOTED, 50, to_ring=3)
    assert collector.collect()[RING_ELEVATION_DURATION.name] == {AGENT: 0.0}


@pytest.mark.parametrize(
    ("event_type", "payload", "reason"),
    [
        (EventType.RING_ASSIGNED, {}, "missing_ring"),
        (EventType.RING_ASSIGNED, {"to_ring": None}, "missing_ring"),
        (EventType.RING_ASSIGNED, {"ring": None}, "missing_ring"),
        (EventType.RING_ASSIGNED, {"ring": "sandbox"}, "invalid_ring"),
        (EventType.RING_ASSIGNED, {"ring": "7"}, "invalid_ring"),
        (EventType.RING_ASSIGNED, {"ring": 3.0}, "invalid_ring"),
        (EventType.RING_ASSIGNED, {"ring": True}, "invalid_ring"),
        (EventType.RING_ASSIGNED, {"ring": 4}, "invalid_ring"),
        (EventType.RING_ASSIGNED, {"ring": -1}, "invalid_ring"),
        (EventType.RING_ELEVATED, {"from_ring": 3}, "missing_ring"),
        (EventType.RING_ELEVATED, {"to_ring": 1, "from_ring": "x"}, "invalid_ring"),
        (EventType.RING_DEMOTED, {"to_ring": [3]}, "invalid_ring"),
        (EventType.RING_ELEVATION_EXPIRED, {"to_ring": 9}, "invalid_ring"),
    ],
)
def test_malformed_payloads_are_dropped_and_counted(
    bus: HypervisorEventBus,
    collector: RingMetricsCollector,
    event_type: EventType,
    payload: dict,
    reason: str,
) -> None:
    before = event_drops("ring_metrics", reason)
    emit(bus, event_type, **payload)
    assert collector.events_dropped == 1  # a read applies the queued events first
    assert event_drops("ring_metrics", reason) == before + 1
    snapshot = collector.collect()
    assert snapshot["events_processed"] == 0
    assert snapshot[RING_TRANSITIONS.name] == {}
    assert bus.subscriber_errors() == {}


def test_a_full_batch_is_applied_without_a_read(
    bus: HypervisorEventBus, collector: RingMetricsCollector
) -> None:
    """Queued events never wait for a reader longer than one batch: BATCH events apply."""
    before = event_drops("ring_metrics", "invalid_ring")
    for _ in range(BATCH - 1):
        emit(bus, EventType.RING_ASSIGNED, ring=9)
    emit(bus, EventType.RING_ASSIGNED, ring=9)
    assert event_drops("ring_metrics", "invalid_ring") == before + BATCH
    assert len(collector._queue.pending) == 0


def test_readers_see_every_event_emitted_before_the_read(
    bus: HypervisorEventBus, collector: RingMetricsCollector
) -> None:
    """Each reader applies the queue first, whatever the batch position."""
    emit(bus, EventType.RING_ASSIGNED, ring=3)
    assert collector.events_processed == 1
    emit(bus, EventType.RING_ELEVATED, to_ring=1)
    assert collector.collect()[RING_ELEVATED.name] == {AGENT: 1}
    emit(bus, EventType.RING_BREACH_DETECTED)
    families = {f.metric.name: f.samples for f in collector.metric_families()}
    assert families[RING_BREACHES.name] == {(AGENT, "s1"): 1.0}
    emit(bus, EventType.RING_ELEVATION_DENIED, reason="trust")
    assert collector.events_processed == 4
    emit(bus, EventType.RING_DEMOTED, to_ring=3)
    collector.reset()  # queued events are forgotten with the rest
    assert collector.collect()["events_processed"] == 0


def test_events_without_an_agent_are_filed_under_the_unknown_agent(
    bus: HypervisorEventBus, collector: RingMetricsCollector
) -> None:
    emit(bus, EventType.RING_BREACH_DETECTED, agent=None)
    emit(bus, EventType.RING_ASSIGNED, agent=None, ring=1)
    emit(bus, EventType.RING_ASSIGNED, agent="", ring=2)
    snapshot = collector.collect()
    assert snapshot["events_processed"] == 3
    assert snapshot[RING_BREACHES.name] == {(UNKNOWN_AGENT, "s1"): 1}
    assert snapshot[RING_TRANSITIONS.name] == {("ring.assigned", UNKNOWN_AGENT, "s1"): 2}
    assert snapshot[RING_CURRENT.name] == {UNKNOWN_AGENT: 2}


def test_a_ring_given_as_a_numeric_string_is_that_ring(
    bus: HypervisorEventBus, collector: RingMetricsCollector
) -> None:
    emit(bus, EventType.RING_ASSIGNED, ring="3")
    emit(bus, EventType.RING_ELEVATED, 10, from_ring="3", to_ring=" 2")
    snapshot = collector.collect()
    assert snapshot[RING_CURRENT.name] == {AGENT: 2}
    assert snapshot[RING_ELEVATED.name] == {AGENT: 1}
    assert collector.events_dropped == 0


def test_denied_elevations_are_counted_per_agent_and_reason(
    bus: HypervisorEventBus, collector: RingMetricsCollector
) -> None:
    emit(bus, EventType.RING_ELEVATION_DENIED, reason="insufficient_trust")
    emit(bus, EventType.RING_ELEVATION_DENIED, reason="insufficient_trust")
    emit(bus, EventType.RING_ELEVATION_DENIED, agent=None)
    assert collector.collect()[RING_ELEVATIONS_DENIED.name] == {
        (AGENT, "insufficient_trust"): 2,
        (UNKNOWN_AGENT, "unspecified"): 1,
    }
    assert collector.collect()[RING_CURRENT.name] == {}, "a denial changes no ring"


def test_reset_forgets_everything_and_keeps_listening(
    bus: HypervisorEventBus, collector: RingMetricsCollector
) -> None:
    emit(bus, EventType.RING_ASSIGNED, ring=3)
    emit(bus, EventType.RING_BREACH_DETECTED)
    exporter = RecordingExporter()
    collector.export_to_prometheus(exporter)
    collector.reset()
    snapshot = collector.collect()
    assert snapshot["events_processed"] == 0
    assert snapshot[RING_CURRENT.name] == {}
    assert snapshot[RING_BREACHES.name] == {}
    emit(bus, EventType.RING_BREACH_DETECTED)
    assert collector.collect()[RING_BREACHES.name] == {(AGENT, "s1"): 1}
    collector.export_to_prometheus(exporter)  # deltas start from zero again after a reset
    assert (
        exporter.counters[(RING_BREACHES.name, (("agent_did", AGENT), ("session_id", "s1")))] == 2
    )


class RecordingExporter:
    def __init__(self) -> None:
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.gauges: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.calls: list[tuple[str, str, float]] = []

    def set_gauge(self, name, value, labels=None, help_text=""):  # type: ignore[no-untyped-def]
        assert help_text
        self.gauges[(name, tuple(sorted((labels or {}).items())))] = value
        self.calls.append(("gauge", name, value))

    def inc_counter(self, name, value=1.0, labels=None, help_text=""):  # type: ignore[no-untyped-def]
        assert help_text
        assert value > 0
        key = (name, tuple(sorted((labels or {}).items())))
        self.counters[key] = self.counters.get(key, 0.0) + value
        self.calls.append(("counter", name, value))


def test_repeated_export_passes_only_deltas(
    bus: HypervisorEventBus, collector: RingMetricsCollector
) -> None:
    exporter = RecordingExporter()
    emit(bus, EventType.RING_ASSIGNED, ring=3)
    emit(bus, EventType.RING_BREACH_DETECTED)
    collector.export_to_prometheus(exporter)
    collector.export_to_prometheus(exporter)  # nothing changed: no counter calls
    breaches = (RING_BREACHES.name, (("agent_did", AGENT), ("session_id", "s1")))
    assert exporter.counters[breaches] == 1.0
    counter_calls = [c for c in exporter.calls if c[0] == "counter"]
    assert len(counter_calls) == 2
    for _ in range(3):
        emit(bus, EventType.RING_BREACH_DETECTED)
    collector.export_to_prometheus(exporter)
    assert exporter.counters[breaches] == 4.0  # exact, not 1 + 4 or 1 + 1 + 4
    assert [c for c in exporter.calls if c[0] == "counter"][-1] == (
        "counter",
        RING_BREACHES.name,
        3.0,
    )
    assert exporter.gauges[(RING_CURRENT.name, (("agent_did", AGENT),))] == 3


def test_export_retries_what_a_failing_exporter_missed(
    bus: HypervisorEventBus, collector: RingMetricsCollector
) -> None:
    class Flaky(RecordingExporter):
        fail = True

        def inc_counter(self, name, value=1.0, labels=None, help_text=""):  # type: ignore[no-untyped-def]
            if self.fail:
                raise ConnectionError("push gateway down")
            super().inc_counter(name, value, labels, help_text)

    exporter = Flaky()
    emit(bus, EventType.RING_BREACH_DETECTED)
    with pytest.raises(ConnectionError):
        collector.export_to_prometheus(exporter)
    exporter.fail = False
    collector.export_to_prometheus(exporter)
    assert sum(exporter.counters.values()) == 1.0
    with pytest.raises(TypeError):
        collector.export_to_prometheus(object())  # type: ignore[arg-type]


def test_metric_families_match_the_snapshot(
    bus: HypervisorEventBus, collector: RingMetricsCollector, clock: FakeClock
) -> None:
    emit(bus, EventType.RING_ASSIGNED, ring=3)
    emit(bus, EventType.RING_ELEVATED, to_ring=1)
    clock.now = (T0 + timedelta(seconds=3)).timestamp()
    families = {f.metric: f for f in collector.metric_families()}
    assert set(families) == {
        RING_TRANSITIONS,
        RING_BREACHES,
        RING_ELEVATIONS_DENIED,
        RING_CURRENT,
        RING_ELEVATION_DURATION,
        RING_ELEVATED,
    }
    assert families[RING_ELEVATION_DURATION].samples == {(AGENT,): 3.0}
    assert families[RING_ELEVATED].samples == {(AGENT,): 1.0}
    assert families[RING_TRANSITIONS].label_names == RING_TRANSITIONS.labels


def test_agents_beyond_the_series_cap_fold_into_overflow(bus: HypervisorEventBus) -> None:
    collector = RingMetricsCollector(bus, guard=CardinalityGuard(max_series=2))
    for i in range(5):
        emit(bus, EventType.RING_ASSIGNED, agent=f"did:{i}", ring=3)
    snapshot = collector.collect()
    assert set(snapshot[RING_CURRENT.name]) == {"did:0", "did:1", OVERFLOW}
    assert len(collector._agents) == 3
    assert len(snapshot[RING_TRANSITIONS.name]) == 3


def test_drop_session_id_guard(bus: HypervisorEventBus) -> None:
    collector = RingMetricsCollector(bus, guard=CardinalityGuard(drop_session_id=True))
    emit(bus, EventType.RING_BREACH_DETECTED, session="s1")
    emit(bus, EventType.RING_BREACH_DETECTED, session="s2")
    assert collector.collect()[RING_BREACHES.name] == {(AGENT, ""): 2}


def test_close_unsubscribes(bus: HypervisorEventBus, collector: RingMetricsCollector) -> None:
    collector.close()
    emit(bus, EventType.RING_BREACH_DETECTED)
    assert collector.collect()["events_processed"] == 0


def test_counts_are_exact_under_threads_and_a_reset_starts_them_over(
    bus: HypervisorEventBus, collector: RingMetricsCollector
) -> None:
    """The handlers add to series already seen in place, in dicts they hold: under the shared
    lock that is exact across threads, and a reset swaps the dicts they add to."""
    threads, per_thread = 4, 300
    emit(bus, EventType.RING_ASSIGNED, ring=3)

    def work() -> None:
        for _ in range(per_thread):
            emit(bus, EventType.RING_ELEVATED, to_ring=1)
            emit(bus, EventType.RING_BREACH_DETECTED)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    seen = []
    while any(worker.is_alive() for worker in workers):
        seen.append(collector.collect()[RING_BREACHES.name].get((AGENT, "s1"), 0))
    for worker in workers:
        worker.join(timeout=30)
    assert seen == sorted(seen), "a snapshot never sees a count go down"
    snapshot = collector.collect()
    assert snapshot[RING_BREACHES.name] == {(AGENT, "s1"): threads * per_thread}
    assert snapshot[RING_TRANSITIONS.name][("ring.elevated", AGENT, "s1")] == threads * per_thread
    collector.reset()
    for _ in range(2):  # the second one finds its series in the new store's dict
        emit(bus, EventType.RING_ELEVATED, to_ring=1)
        emit(bus, EventType.RING_BREACH_DETECTED)
    snapshot = collector.collect()
    assert snapshot[RING_BREACHES.name] == {(AGENT, "s1"): 2}
    assert snapshot[RING_TRANSITIONS.name] == {("ring.elevated", AGENT, "s1"): 2}
