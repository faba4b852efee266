"""The event bus: indexes, retention from every index, pub/sub isolation, exact under threads."""

from __future__ import annotations

import logging
import threading
from collections import deque
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshwatch.instrumentation import (
    EventType,
    GovernanceMetrics,
    HypervisorEvent,
    HypervisorEventBus,
    RingMetricsCollector,
    SagaMetricsCollector,
    SagaSpanExporter,
)
from meshwatch.instrumentation.bus import EVENT_OVERHEAD_BYTES
from meshwatch.instrumentation.catalogue import (
    BUS_EVENTS,
    BUS_RETAINED_EVENTS,
    BUS_SUBSCRIBER_ERRORS,
)
from meshwatch.instrumentation.drops import event_drops
from meshwatch.instrumentation.payloads import TRUNCATED_KEY, payload_bytes

T0 = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)


def ev(
    event_type: EventType = EventType.VFS_WRITE,
    session: str | None = None,
    agent: str | None = None,
    at: datetime | None = None,
    **payload: object,
) -> HypervisorEvent:
    return HypervisorEvent(event_type, session, agent, payload=payload, timestamp=at)


def test_indexes_and_combined_query() -> None:
    bus = HypervisorEventBus()
    e1 = ev(EventType.RING_ASSIGNED, "s1", "did:a", T0)
    e2 = ev(EventType.RING_ELEVATED, "s1", "did:b", T0 + timedelta(seconds=1))
    e3 = ev(EventType.RING_ASSIGNED, "s2", "did:a", T0 + timedelta(seconds=2))
    e4 = ev(EventType.VFS_WRITE, None, None, T0 + timedelta(seconds=3))
    for e in (e1, e2, e3, e4):
        bus.emit(e)
    assert bus.query_by_type(EventType.RING_ASSIGNED) == [e1, e3]
    assert bus.query_by_session("s1") == [e1, e2]
    assert bus.query_by_agent("did:a") == [e1, e3]
    assert bus.query_by_agent("did:zzz") == []
    assert bus.query(event_type=EventType.RING_ASSIGNED, agent_did="did:a", session_id="s2") == [e3]
    assert bus.query(agent_did="did:a", start=T0 + timedelta(seconds=1)) == [e3]
    assert bus.query_by_time_range(
        start=T0 + timedelta(seconds=1), end=T0 + timedelta(seconds=2)
    ) == [
        e2,
        e3,
    ]
    # Naive bounds are taken as UTC.
    assert bus.query_by_time_range(end=T0.replace(tzinfo=None)) == [e1]
    assert bus.query() == [e1, e2, e3, e4]
    assert bus.query(limit=2) == [e3, e4]  # the newest two, oldest first
    assert bus.query(limit=0) == []
    assert bus.event_count == 4
    assert bus.type_counts() == {"ring.assigned": 2, "ring.elevated": 1, "vfs.write": 1}
    with pytest.raises(ValueError):
        bus.query(limit=-1)
    with pytest.raises(TypeError):
        bus.query(start="yesterday")  # type: ignore[arg-type]


def test_all_events_is_a_copy() -> None:
    bus = HypervisorEventBus()
    bus.emit(ev())
    bus.all_events.clear()
    bus.query_by_type(EventType.VFS_WRITE).clear()
    assert bus.event_count == 1
    assert len(bus.query_by_type(EventType.VFS_WRITE)) == 1


def test_retention_evicts_from_the_log_and_every_index() -> None:
    bus = HypervisorEventBus(max_events=3)
    old = [
        ev(EventType.RING_ASSIGNED, "s-old", "did:old", T0),
        ev(EventType.RING_ELEVATED, "s-shared", "did:shared", T0),
    ]
    new = [
        ev(EventType.VFS_WRITE, "s-shared", "did:shared", T0 + timedelta(hours=1)) for _ in range(3)
    ]
    for e in (*old, *new):
        bus.emit(e)
    assert bus.all_events == new
    assert bus.event_count == 3
    assert bus.emitted_count == 5
    assert bus.query_by_type(EventType.RING_ASSIGNED) == []
    assert bus.query_by_type(EventType.RING_ELEVATED) == []
    assert bus.query_by_session("s-old") == []
    assert bus.query_by_agent("did:old") == []
    assert bus.query_by_session("s-shared") == new
    assert bus.query_by_agent("did:shared") == new
    assert bus.query_by_time_range(end=T0) == []
    assert bus.type_counts() == {"vfs.write": 3}
    assert bus.emitted_counts() == {"ring.assigned": 1, "ring.elevated": 1, "vfs.write": 3}


def test_memory_stays_bounded_under_unique_keys() -> None:
    """A stream of one-off sessions and agents must not grow the index dicts."""
    bus = HypervisorEventBus(max_events=100)
    for i in range(5_000):
        bus.emit(ev(EventType.SESSION_CREATED, f"s{i}", f"did:{i % 7}-{i}"))
    assert bus.event_count == 100
    assert sum(len(bus.query_by_session(f"s{i}")) for i in range(5_000)) == 100
    assert len(bus._by_session) == 100
    assert len(bus._by_agent) == 100
    assert len(bus._by_type) == 1
    for i in range(5_000, 10_000):  # indexed now: eviction keeps them bounded too
        bus.emit(ev(EventType.SESSION_CREATED, f"s{i}", f"did:{i % 7}-{i}"))
        if i % 999 == 0:
            assert len(bus.query_by_agent(f"did:{i % 7}-{i}")) == 1
    assert len(bus._by_session) <= 100 and len(bus._by_agent) <= 100


def test_indexes_built_on_query_agree_with_the_log_between_any_emits() -> None:
    """Emit does not index; every query first indexes what was emitted since the last one.

    Queries at irregular points (before, at and past the retention bound, with
    evictions of indexed and of never-indexed events between them) must answer
    exactly what filtering the retained log answers.
    """
    bus = HypervisorEventBus(max_events=50)
    types = (EventType.SESSION_CREATED, EventType.RING_ASSIGNED, EventType.SAGA_CREATED)
    assert bus._by_session == {} and bus._by_agent == {}
    for i in range(400):
        bus.emit(ev(types[i % 3], f"s{i % 11}" if i % 5 else None, f"did:{i % 13}"))
        if i % 17 in (0, 1) or i in range(120, 180):
            log = bus.all_events
            for s in ("s0", "s3", "s10", "nope"):
                assert bus.query_by_session(s) == [e for e in log if e.session_id == s]
            for a in ("did:0", "did:12"):
                assert bus.query_by_agent(a) == [e for e in log if e.agent_did == a]
            for t in types:
                assert bus.query_by_type(t) == [e for e in log if e.event_type is t]
            assert bus.query(session_id="s3", agent_did="did:3") == [
                e for e in log if e.session_id == "s3" and e.agent_did == "did:3"
            ]


def test_a_payload_over_the_cap_is_cut_before_anyone_sees_it_and_counted() -> None:
    bus = HypervisorEventBus(max_payload_bytes=4096)
    seen: list[HypervisorEvent] = []
    bus.subscribe(None, seen.append)
    before = event_drops("bus", "payload_truncated")
    big = ev(EventType.SAGA_STEP_FAILED, "s", "a", saga_id="7", blob="x" * 1_000_000, n=[1] * 9)
    bus.emit(big)
    bus.emit(ev(EventType.VFS_WRITE, "s", "a", path="/tmp/x"))
    (cut,) = bus.query_by_type(EventType.SAGA_STEP_FAILED)
    assert seen[0] is cut and cut.event_id == big.event_id and cut.timestamp == big.timestamp
    assert cut.payload["saga_id"] == "7" and cut.payload["n"] == [1] * 9
    assert cut.payload["blob"] == "<truncated: ~1000004 bytes>"
    assert cut.payload[TRUNCATED_KEY] > 1_000_000
    assert seen[1].payload == {"path": "/tmp/x"}, "small payloads pass untouched"
    assert event_drops("bus", "payload_truncated") - before == 1


def test_a_payload_of_many_small_values_is_cut_to_its_size_only() -> None:
    bus = HypervisorEventBus(max_payload_bytes=1024)
    bus.emit(HypervisorEvent(EventType.VFS_WRITE, payload={f"k{i}": i for i in range(1_000)}))
    (cut,) = bus.all_events
    assert list(cut.payload) == [TRUNCATED_KEY]


def test_a_cyclic_payload_is_measured_in_bounded_work() -> None:
    loop: list[object] = []
    loop.append(loop)
    bus = HypervisorEventBus(max_payload_bytes=1024)
    bus.emit(HypervisorEvent(EventType.VFS_WRITE, payload={"loop": loop}))
    assert bus.all_events[0].payload["loop"].startswith("<truncated: ")


def test_retention_has_a_byte_budget_as_well_as_a_count() -> None:
    budget = 50 * (EVENT_OVERHEAD_BYTES + 20_000)
    bus = HypervisorEventBus(max_events=100_000, max_bytes=budget)
    for i in range(1_000):
        bus.emit(ev(EventType.VFS_WRITE, f"s{i}", "a", blob="y" * 19_990, i=i))
        assert bus.retained_bytes <= budget
    assert 40 <= bus.event_count <= 50
    assert bus.all_events[-1].payload["i"] == 999, "the newest are kept"
    indexed = sum(len(bus.query_by_session(f"s{i}")) for i in range(1_000))
    assert indexed == bus.event_count, "evicted from the indexes too"
    for _ in range(200):  # small events after large ones: the count bound applies again
        bus.emit(ev(EventType.VFS_WRITE, "s", "a"))
    assert bus.retained_bytes == sum(
        EVENT_OVERHEAD_BYTES + payload_bytes(e.payload, 2**40) for e in bus.all_events
    )


@pytest.mark.parametrize("name", ["max_bytes", "max_payload_bytes"])
def test_byte_bounds_are_checked(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        HypervisorEventBus(**{name: 0})


def test_eviction_downgrades_and_removes_index_entries() -> None:
    bus = HypervisorEventBus(max_events=2)
    a1, a2, b = ev(agent="did:a"), ev(agent="did:a"), ev(agent="did:b")
    bus.emit(a1)
    bus.emit(a2)
    assert bus.query_by_agent("did:a") == [a1, a2]
    bus.emit(b)
    assert bus.query_by_agent("did:a") == [a2]
    bus.emit(ev(agent="did:c"))
    assert bus.query_by_agent("did:a") == []
    assert "did:a" not in bus._by_agent


def test_typed_and_wildcard_subscribers_in_order() -> None:
    bus = HypervisorEventBus()
    seen: list[str] = []
    bus.subscribe(None, lambda e: seen.append(f"all:{e.event_type.value}"))
    bus.subscribe(EventType.RING_BREACH_DETECTED, lambda e: seen.append("breach-1"))
    bus.subscribe(EventType.RING_BREACH_DETECTED, lambda e: seen.append("breach-2"))
    bus.emit(ev(EventType.RING_BREACH_DETECTED))
    bus.emit(ev(EventType.VFS_WRITE))
    assert seen == ["breach-1", "breach-2", "all:ring.breach_detected", "all:vfs.write"]


def test_failing_subscriber_is_counted_logged_and_isolated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = HypervisorEventBus()
    seen: list[HypervisorEvent] = []

    def broken(event: HypervisorEvent) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(EventType.RING_BREACH_DETECTED, broken)
    bus.subscribe(EventType.RING_BREACH_DETECTED, seen.append)
    bus.subscribe(None, broken)
    bus.subscribe(None, seen.append)
    event = ev(EventType.RING_BREACH_DETECTED)
    with caplog.at_level(logging.DEBUG, logger="meshwatch.instrumentation.bus"):
        for _ in range(3):
            bus.emit(event)
    assert seen == [event] * 6
    assert bus.event_count == 3
    assert bus.subscriber_errors() == {"ring.breach_detected": 6.0}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "repeats of one failing subscriber are rate-limited"
    assert "subscriber bug" in caplog.text
    errors = {f.metric: f for f in bus.metric_families()}[BUS_SUBSCRIBER_ERRORS]
    assert errors.samples == {("ring.breach_detected",): 6.0}


def test_unsubscribe_by_arguments_and_by_handle() -> None:
    bus = HypervisorEventBus()
    seen: list[str] = []

    def typed(e: HypervisorEvent) -> None:
        seen.append("typed")

    def wildcard(e: HypervisorEvent) -> None:
        seen.append("wild")

    bus.subscribe(EventType.VFS_WRITE, typed)
    handle = bus.subscribe(handler=wildcard)
    bus.emit(ev())
    assert bus.unsubscribe(EventType.VFS_WRITE, typed) is True
    assert bus.unsubscribe(EventType.VFS_WRITE, typed) is False
    bus.emit(ev())
    assert handle.cancel() is True
    assert handle.cancel() is False
    bus.emit(ev())
    assert seen == ["typed", "wild", "wild"]
    assert all(not route.handlers for route in bus._routes.values())


def test_batched_subscription_applies_every_batch_and_on_flush() -> None:
    bus = HypervisorEventBus()
    applied: list[list[str | None]] = []

    def apply(pending: deque[HypervisorEvent]) -> None:
        batch = []
        while pending:
            batch.append(pending.popleft().session_id)
        applied.append(batch)

    queue = bus.subscribe_batched([EventType.VFS_WRITE, EventType.VFS_DELETE], apply, batch=3)
    for i in range(7):
        bus.emit(HypervisorEvent(EventType.VFS_WRITE if i % 2 else EventType.VFS_DELETE, f"s{i}"))
    bus.emit(HypervisorEvent(EventType.SESSION_CREATED, "other"))  # not subscribed
    assert applied == [["s0", "s1", "s2"], ["s3", "s4", "s5"]]
    assert list(e.session_id for e in queue.pending) == ["s6"]
    queue.flush()
    queue.flush()  # nothing waits: no empty batch
    assert applied[-1] == ["s6"]
    assert len(applied) == 3
    assert queue.cancel() is True
    assert queue.cancel() is False
    bus.emit(HypervisorEvent(EventType.VFS_WRITE, "after"))
    assert not queue.pending
    assert all(not route.batched for route in bus._routes.values())


def test_a_raising_batch_is_counted_and_the_emit_returns() -> None:
    bus = HypervisorEventBus()

    def apply(pending: deque[HypervisorEvent]) -> None:
        pending.clear()
        raise RuntimeError("boom")

    bus.subscribe_batched([EventType.VFS_WRITE], apply, batch=1)
    bus.emit(HypervisorEvent(EventType.VFS_WRITE, "s"))
    assert bus.subscriber_errors() == {"vfs.write": 1.0}
    assert bus.event_count == 1


@pytest.mark.parametrize("batch", [0, -1, True, 2.0])
def test_batched_subscription_rejects_a_bad_batch_size(batch: object) -> None:
    with pytest.raises(ValueError, match="batch"):
        HypervisorEventBus().subscribe_batched([EventType.VFS_WRITE], len, batch=batch)  # type: ignore[arg-type]


def test_batched_events_from_many_threads_are_all_applied_once() -> None:
    bus = HypervisorEventBus()
    lock = threading.Lock()
    seen: list[str | None] = []

    def apply(pending: deque[HypervisorEvent]) -> None:
        with lock:
            while pending:
                seen.append(pending.popleft().session_id)

    queue = bus.subscribe_batched([EventType.VFS_WRITE], apply, batch=16)

    def emitter(n: int) -> None:
        for i in range(2_000):
            bus.emit(HypervisorEvent(EventType.VFS_WRITE, f"t{n}-{i}"))

    threads = [threading.Thread(target=emitter, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    queue.flush()
    assert sorted(seen) == sorted(f"t{n}-{i}" for n in range(4) for i in range(2_000))
    for n in range(4):  # each thread's events in the order it emitted them
        mine = [s for s in seen if s is not None and s.startswith(f"t{n}-")]
        assert mine == [f"t{n}-{i}" for i in range(2_000)]


def test_subscriber_may_emit_reentrantly() -> None:
    bus = HypervisorEventBus()

    def echo(event: HypervisorEvent) -> None:
        bus.emit(ev(EventType.AUDIT_DELTA_CAPTURED))

    bus.subscribe(EventType.VFS_WRITE, echo)
    bus.emit(ev())
    assert bus.type_counts() == {"vfs.write": 1, "audit.delta_captured": 1}


def test_subscribe_validates() -> None:
    bus = HypervisorEventBus()
    with pytest.raises(TypeError):
        bus.subscribe(EventType.VFS_WRITE)
    with pytest.raises(ValueError):
        bus.subscribe("not.a_type", print)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        bus.emit({"event_type": "vfs.write"})  # type: ignore[arg-type]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            HypervisorEventBus(max_events=bad)  # type: ignore[arg-type]


def test_bus_metric_families() -> None:
    bus = HypervisorEventBus(max_events=2)
    for _ in range(3):
        bus.emit(ev(EventType.SESSION_CREATED))
    bus.emit(ev(EventType.SESSION_TERMINATED))
    families = {f.metric: f for f in bus.metric_families()}
    assert families[BUS_EVENTS].samples == {("session.created",): 3.0, ("session.terminated",): 1.0}
    assert families[BUS_RETAINED_EVENTS].samples == {(): 2.0}


def test_eight_threads_emitting_100k_each_lose_nothing() -> None:
    threads_n, per_thread = 8, 100_000
    bus = HypervisorEventBus(max_events=50_000)
    per_type = [EventType.RING_BREACH_DETECTED, EventType.VFS_WRITE]
    delivered = [0] * threads_n
    lock = threading.Lock()
    counted = {"n": 0}

    def count(event: HypervisorEvent) -> None:
        with lock:
            counted["n"] += 1

    bus.subscribe(EventType.RING_BREACH_DETECTED, count)
    start = threading.Barrier(threads_n)

    def work(index: int) -> None:
        event_type = per_type[index % 2]
        event = HypervisorEvent(event_type, f"s{index}", f"did:{index}")
        start.wait()
        emit = bus.emit
        for _ in range(per_thread):
            emit(event)
        delivered[index] = per_thread

    threads = [threading.Thread(target=work, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    total = threads_n * per_thread
    assert sum(delivered) == total
    assert bus.emitted_count == total
    assert bus.emitted_counts() == {
        "ring.breach_detected": total // 2,
        "vfs.write": total // 2,
    }
    assert counted["n"] == total // 2
    assert bus.event_count == 50_000
    assert sum(bus.type_counts().values()) == 50_000
    assert sum(len(bus.query_by_session(f"s{i}")) for i in range(threads_n)) == 50_000
    assert sum(len(bus.query_by_agent(f"did:{i}")) for i in range(threads_n)) == 50_000


# -- hypothesis: whatever the payload or ids, emit never raises with every collector attached ------

_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
_values = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_key_names = st.sampled_from(
    [
        "ring",
        "to_ring",
        "from_ring",
        "saga_id",
        "step_id",
        "step_action",
        "error",
        "reason",
        "result",
    ]
)
_payloads = st.dictionaries(_key_names | st.text(max_size=10), _values, max_size=6)
_ids = st.none() | st.text(max_size=30)
_timestamps = (
    st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    )
    | st.none()
)


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    __repr__ = __str__


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(
        st.tuples(st.sampled_from(list(EventType)), _ids, _ids, _ids, _payloads, _timestamps),
        min_size=1,
        max_size=25,
    ),
    unprintable=st.booleans(),
)
def test_arbitrary_events_never_raise_from_emit(events: list, unprintable: bool) -> None:
    bus = HypervisorEventBus(max_events=10)
    ring = RingMetricsCollector(bus)
    spans = SagaSpanExporter(bus, max_spans=5, max_open_steps=3, max_open_sagas=3)
    sagas = SagaMetricsCollector(bus, max_open_steps=3)
    governance = GovernanceMetrics()
    bus.subscribe(
        None,
        lambda e: governance.record_decision(
            bool(e.payload), e.agent_did, e.payload.get("tool"), e.payload.get("ring")
        ),
    )
    for event_type, session, agent, trace, payload, at in events:
        if unprintable:
            payload = {**payload, "error": _Unprintable(), "result": _Unprintable()}
        bus.emit(HypervisorEvent(event_type, session, agent, trace, payload, timestamp=at))
    assert bus.subscriber_errors() == {}
    assert bus.emitted_count == len(events)
    for source in (bus, ring, spans, sagas, governance):
        if hasattr(source, "metric_families"):
            list(source.metric_families())
    ring.collect()
    assert len(spans.completed_spans) <= 5
    assert spans.open_steps <= 3
    assert spans.open_sagas <= 3
    assert sagas.open_steps <= 3


def test_time_range_bounds_are_exact_to_the_microsecond() -> None:
    """Queries compare the stored microseconds; auto and given timestamps alike."""
    bus = HypervisorEventBus()
    given = [ev(at=T0 + timedelta(microseconds=us)) for us in (0, 1, 2)]
    auto = HypervisorEvent(EventType.VFS_WRITE)
    for event in (*given, auto):
        bus.emit(event)
    one = T0 + timedelta(microseconds=1)
    assert bus.query_by_time_range(start=one, end=one) == [given[1]]
    assert bus.query_by_time_range(end=one) == given[:2]
    assert bus.query_by_time_range(start=auto.timestamp) == [auto]
    assert bus.query_by_time_range(start=auto.timestamp + timedelta(microseconds=1)) == []
    assert bus.query_by_time_range(start=one.replace(tzinfo=None), end=one) == [given[1]]


def test_an_index_entry_grows_from_event_to_tuple_to_deque_and_shrinks_back() -> None:
    """Each form answers what the log holds; a key shrinking under eviction gets compact again."""
    from collections import deque

    from meshwatch.instrumentation.bus import _SMALL

    bus = HypervisorEventBus(max_events=3 * _SMALL)
    mine = [ev(session="s", at=T0 + timedelta(microseconds=i)) for i in range(2 * _SMALL)]
    forms = []
    for event in mine:
        bus.emit(event)
        assert bus.query_by_session("s") == [e for e in bus.all_events if e.session_id == "s"]
        forms.append(type(bus._by_session["s"]))
    assert forms[0] is HypervisorEvent
    assert set(forms[1:_SMALL]) == {tuple} and set(forms[_SMALL:]) == {deque}
    shrinking = []
    for _ in range(3 * _SMALL):  # other sessions push every "s" event out, oldest first
        bus.emit(ev(session="other"))
        assert bus.query_by_session("s") == [e for e in bus.all_events if e.session_id == "s"]
        shrinking.append(type(bus._by_session.get("s")))
    assert deque in shrinking and tuple in shrinking and HypervisorEvent in shrinking
    assert "s" not in bus._by_session
    assert shrinking.index(tuple) > shrinking.index(deque), "a deque turns back into a tuple"


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=8),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(allow_nan=False),
            st.text(max_size=40),
            st.lists(st.text(max_size=5), max_size=4),
            st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
        ),
        max_size=6,
    )
)
def test_emit_accounts_each_payload_as_payload_bytes_does(payload: dict) -> None:
    """The event measures a flat payload when built, the bus a nested one: both as payload_bytes."""
    bus = HypervisorEventBus(max_events=2)
    bus.emit(HypervisorEvent(EventType.VFS_WRITE, payload=payload))
    expected = payload_bytes(payload, 2**40) if payload else 0
    assert bus.retained_bytes == expected + EVENT_OVERHEAD_BYTES
    bus.emit(HypervisorEvent(EventType.VFS_WRITE, payload=payload))
    bus.emit(HypervisorEvent(EventType.VFS_WRITE))  # evicts the first: its estimate leaves
    assert bus.retained_bytes == expected + 2 * EVENT_OVERHEAD_BYTES


def test_a_nested_payload_is_measured_once_by_the_first_bus_and_its_size_travels_with_it() -> None:
    nested = HypervisorEvent(EventType.VFS_WRITE, payload={"paths": ["/a", "/bb"], "n": 1})
    size = payload_bytes(nested.payload, 2**40)
    small, large = HypervisorEventBus(max_payload_bytes=16), HypervisorEventBus(max_events=2)
    large.emit(nested)
    small.emit(nested)  # over its cap: this bus keeps a capped copy
    large.emit(nested)  # the size the first emit measured, not a second walk
    assert large.retained_bytes == 2 * (size + EVENT_OVERHEAD_BYTES)
    assert large.all_events == [nested, nested]
    (cut,) = small.all_events
    assert TRUNCATED_KEY in cut.payload
    assert small.retained_bytes == payload_bytes(cut.payload, 2**40) + EVENT_OVERHEAD_BYTES
    for _ in range(2):  # evicted: the bus takes back what it added, no more, no less
        large.emit(HypervisorEvent(EventType.VFS_WRITE))
    assert large.retained_bytes == 2 * EVENT_OVERHEAD_BYTES


def test_payload_keys_that_are_not_strings_are_measured_not_raised() -> None:
    bus = HypervisorEventBus(max_events=1)
    odd = {1: "one", (2, 3): ["x"], "ok": 2}
    bus.emit(HypervisorEvent(EventType.VFS_WRITE, payload=odd))
    assert bus.retained_bytes == payload_bytes(odd, 2**40) + EVENT_OVERHEAD_BYTES > 0
    bus.emit(HypervisorEvent(EventType.VFS_WRITE, payload={7: "x" * 100_000}))
    (cut,) = bus.all_events
    assert cut.payload[7].startswith("<truncated: ")
    flat = {EventType.VFS_WRITE: 1}  # a str subclass: the event measures it, by its len()
    bus.emit(HypervisorEvent(EventType.VFS_WRITE, payload=flat))
    assert bus.retained_bytes == payload_bytes(flat, 2**40) + EVENT_OVERHEAD_BYTES


def test_a_payload_cap_beyond_any_estimate_is_no_cap() -> None:
    bus = HypervisorEventBus(max_payload_bytes=2**80)
    nested = HypervisorEvent(EventType.VFS_WRITE, payload={"blob": ["y" * 100_000]})
    bus.emit(nested)
    assert bus.all_events == [nested], "kept whole"
    assert bus.retained_bytes == payload_bytes(nested.payload, 2**40) + EVENT_OVERHEAD_BYTES
