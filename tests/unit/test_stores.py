"""Value stores: exact under threads, histograms cumulative, the guard bounds series."""

from __future__ import annotations

import threading
from bisect import bisect_left

import pytest

from meshwatch.instrumentation import catalogue as c
from meshwatch.instrumentation.stores import (
    OVERFLOW,
    CardinalityGuard,
    CounterStore,
    Exemplar,
    GaugeStore,
    HistogramStore,
    overflow_snapshot,
)


def test_counter_counts_exactly_under_threads() -> None:
    store = CounterStore(c.RING_BREACHES)

    def work() -> None:
        for _ in range(20_000):
            store.inc(("did:a", "s1"))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get(("did:a", "s1")) == 160_000


def test_counter_refuses_to_go_down() -> None:
    with pytest.raises(ValueError, match="only go up"):
        CounterStore(c.RING_BREACHES).inc(("a", "b"), -1)


def test_wrong_label_count_names_the_labels() -> None:
    with pytest.raises(ValueError, match=r"agent_did', 'session_id"):
        CounterStore(c.RING_BREACHES).inc(("only-one",))


def test_histogram_buckets_are_cumulative_with_le_semantics() -> None:
    store = HistogramStore(c.GOVERNANCE_LATENCY)
    for value in (0.0005, 0.0006, 0.05, 10.0):
        store.observe(("allowed",), value)
    value = store.items()[("allowed",)]
    bounds = c.GOVERNANCE_LATENCY.buckets
    assert value.cumulative_counts[bounds.index(0.0005)] == 1  # le is inclusive
    assert value.cumulative_counts[bounds.index(0.001)] == 2
    assert value.cumulative_counts[bounds.index(0.05)] == 3
    assert value.cumulative_counts[-1] == value.count == 4
    assert value.sum == pytest.approx(10.0511)


def test_histogram_keeps_the_latest_exemplar_per_bucket() -> None:
    store = HistogramStore(c.GOVERNANCE_LATENCY)
    store.observe(("allowed",), 0.02, Exemplar({"trace_id": "a" * 32}, 0.02, 1.0))
    store.observe(("allowed",), 0.021, Exemplar({"trace_id": "b" * 32}, 0.021, 2.0))
    exemplars = store.items()[("allowed",)].exemplars
    bucket = c.GOVERNANCE_LATENCY.buckets.index(0.025)
    assert exemplars[bucket].labels == {"trace_id": "b" * 32}


def test_guard_folds_new_series_into_one_overflow_series_and_counts() -> None:
    before = overflow_snapshot().samples.get((c.TASKS_STARTED.name,), 0.0)
    store = CounterStore(c.TASKS_STARTED, guard=CardinalityGuard(max_series=3))
    for i in range(10):
        store.inc((f"agent-{i}", "summarize"))
    items = store.items()
    assert len(items) == 3 + 1
    assert items[(OVERFLOW, OVERFLOW)] == 7
    after = overflow_snapshot().samples[(c.TASKS_STARTED.name,)]
    assert after - before == 7
    store.inc(("agent-0", "summarize"))
    assert store.get(("agent-0", "summarize")) == 2, "admitted series keep counting"


def test_guard_can_drop_the_session_label() -> None:
    store = CounterStore(c.RING_BREACHES, guard=CardinalityGuard(drop_session_id=True))
    store.inc(("did:a", "s1"))
    store.inc(("did:a", "s2"))
    assert store.items() == {("did:a", ""): 2.0}


def test_gauge_set_inc_remove() -> None:
    store = GaugeStore(c.RING_CURRENT)
    store.set(("did:a",), 3)
    store.inc(("did:a",), -2)
    assert store.get(("did:a",)) == 1
    store.remove(("did:a",))
    assert store.get(("did:a",)) is None


def test_guard_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CardinalityGuard(max_series=0)


def test_label_values_may_be_any_sequence_and_are_read_back_as_strings() -> None:
    counter = CounterStore(c.RING_BREACHES)
    counter.inc(["did:a", "s1"])  # a list is not hashable: it must not reach the dict as is
    counter.inc(("did:a", "s1"))
    assert counter.items() == {("did:a", "s1"): 2.0}
    gauge = GaugeStore(c.RING_CURRENT)
    gauge.set([7], 2)
    assert gauge.get((7,)) == gauge.get(["7"]) == 2.0
    gauge.remove([7])
    assert gauge.get(("7",)) is None
    histogram = HistogramStore(c.GOVERNANCE_LATENCY)
    histogram.observe(["allowed"], 0.001)
    histogram.observe(("allowed",), 0.001)
    assert histogram.items()[("allowed",)].count == 2


def test_stores_sharing_a_lock_update_together_under_threads() -> None:
    """A fused update (counter and histogram under one lock) is never seen half done."""
    lock = threading.Lock()
    done = CounterStore(c.TASKS_COMPLETED, lock=lock)
    duration = HistogramStore(c.TASK_DURATION, lock=lock)
    assert done.lock is lock and duration.lock is lock
    key = ("did:a", "summarize")
    stop = threading.Event()
    torn: list[tuple[float, int]] = []

    def work() -> None:
        for i in range(5_000):
            with lock:
                done.inc_locked(key)
                duration.observe_locked(key, (i % 7) / 10, None)

    def read() -> None:
        while not stop.is_set():
            with lock:  # both stores' data at one instant
                count, observed = done._data.get(key, 0.0), duration._data.get(key)
                n = 0 if observed is None else sum(observed.counts)
            if count != n:
                torn.append((count, n))

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=work) for _ in range(4)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    reader.join()
    assert torn == []
    assert done.get(key) == 20_000
    assert duration.items()[key].count == 20_000
    assert duration.items()[key].sum == pytest.approx(4 * sum((i % 7) / 10 for i in range(5_000)))


def test_locked_updates_admit_new_series_through_the_guard() -> None:
    lock = threading.Lock()
    store = CounterStore(c.RING_BREACHES, guard=CardinalityGuard(max_series=1), lock=lock)
    histogram = HistogramStore(c.TASK_DURATION, guard=CardinalityGuard(max_series=1), lock=lock)
    with lock:
        store.inc_locked(("did:a", "s1"))
        store.inc_locked(("did:b", "s1"))
        histogram.observe_locked(("did:a", "t"), 0.2)
        histogram.observe_locked(("did:b", "t"), 0.3, Exemplar({"trace_id": "a" * 32}, 0.3, 1.0))
    assert store.items() == {("did:a", "s1"): 1.0, (OVERFLOW, OVERFLOW): 1.0}
    assert set(histogram.items()) == {("did:a", "t"), (OVERFLOW, OVERFLOW)}
    assert histogram.items()[(OVERFLOW, OVERFLOW)].exemplars[
        bisect_left(c.TASK_DURATION.buckets, 0.3)
    ] == Exemplar({"trace_id": "a" * 32}, 0.3, 1.0)


def test_a_key_holding_a_str_subclass_finds_the_series_of_its_str() -> None:
    """The collectors key by EventType members (a StrEnum): one series per value string."""
    from meshwatch.instrumentation import EventType

    store = CounterStore(c.RING_TRANSITIONS)
    store.inc((EventType.RING_ELEVATED, "did:a", "s1"))
    with store.lock:
        store.inc_locked((EventType.RING_ELEVATED, "did:a", "s1"))
    store.inc(("ring.elevated", "did:a", "s1"))
    ((key, value),) = store.items().items()
    assert value == 3.0
    assert [type(v) for v in key] == [str, str, str]
