"""AgentMetrics: one line per fact, exact numbers, bad values dropped and counted, never raised."""

from __future__ import annotations

import asyncio
import math
import traceback

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from meshwatch.instrumentation import catalogue as c
from meshwatch.instrumentation.context import use_trace
from meshwatch.instrumentation.drops import event_drops
from meshwatch.instrumentation.prometheus import ScrapeExporter
from meshwatch.instrumentation.stores import (
    OVERFLOW,
    CardinalityGuard,
    HistogramValue,
    MetricFamilySnapshot,
    MetricSource,
)
from meshwatch.instrumentation.trace import CausalTraceId
from meshwatch.instrumentation.work_metrics import MAX_OPEN_CONFLICTS, AgentMetrics

DID = "did:mesh:researcher"


def families(metrics: AgentMetrics) -> dict[str, MetricFamilySnapshot]:
    return {f.metric.name: f for f in metrics.metric_families()}


def sample(metrics: AgentMetrics, metric: c.MetricDef, labels: tuple[str, ...]) -> object:
    return families(metrics)[metric.name].samples.get(labels)


def hist(metrics: AgentMetrics, metric: c.MetricDef, labels: tuple[str, ...]) -> HistogramValue:
    value = sample(metrics, metric, labels)
    assert isinstance(value, HistogramValue)
    return value


class Boom(Exception):
    pass


def test_a_task_records_start_completion_and_duration() -> None:
    metrics = AgentMetrics(DID)
    with metrics.task("summarize"):
        pass
    key = (DID, "summarize")
    assert sample(metrics, c.TASKS_STARTED, key) == 1
    assert sample(metrics, c.TASKS_COMPLETED, key) == 1
    assert sample(metrics, c.TASKS_FAILED, key) is None
    duration = hist(metrics, c.TASK_DURATION, key)
    assert duration.count == 1
    assert 0 <= duration.sum < 1


def test_a_failing_task_is_counted_and_its_exception_propagates_untouched() -> None:
    metrics = AgentMetrics(DID)
    raised = Boom("disk full")

    def work() -> None:
        raise raised

    with pytest.raises(Boom) as info, metrics.task("write"):
        work()
    assert info.value is raised
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert frames[-1] == "work", "the traceback still ends where the error was raised"
    assert info.value.__context__ is None and info.value.__cause__ is None
    key = (DID, "write")
    assert sample(metrics, c.TASKS_STARTED, key) == 1
    assert sample(metrics, c.TASKS_FAILED, key) == 1
    assert sample(metrics, c.TASKS_COMPLETED, key) is None
    assert hist(metrics, c.TASK_DURATION, key).count == 1


def test_a_task_works_with_async_with() -> None:
    metrics = AgentMetrics(DID)

    async def main() -> None:
        async with metrics.task("plan"):
            await asyncio.sleep(0)
        with pytest.raises(Boom):
            async with metrics.task("plan"):
                raise Boom

    asyncio.run(main())
    assert sample(metrics, c.TASKS_COMPLETED, (DID, "plan")) == 1
    assert sample(metrics, c.TASKS_FAILED, (DID, "plan")) == 1


def test_task_finished_records_a_duration_measured_by_the_caller() -> None:
    metrics = AgentMetrics(DID)
    metrics.task_started("index")
    metrics.task_finished("index", 3.0)
    metrics.task_finished("index", 7.0, ok=False)
    duration = hist(metrics, c.TASK_DURATION, (DID, "index"))
    assert (duration.count, duration.sum) == (2, 10.0)
    assert sample(metrics, c.TASKS_FAILED, (DID, "index")) == 1


def test_task_duration_carries_the_current_trace_as_an_exemplar() -> None:
    metrics = AgentMetrics(DID)
    trace = CausalTraceId()
    with use_trace(trace), metrics.task("summarize"):
        pass
    exemplars = [e for e in hist(metrics, c.TASK_DURATION, (DID, "summarize")).exemplars if e]
    assert [e.labels["trace_id"] for e in exemplars] == [trace.trace_id_hex32]


def test_quality_queue_decisions_messages_and_waits() -> None:
    metrics = AgentMetrics(DID)
    metrics.record_task_quality("summarize", 0.9)
    metrics.set_queue_length(4)
    metrics.set_queue_length(2)
    metrics.record_decision("route", confidence=0.75, options_considered=3)
    metrics.record_decision("route")
    metrics.message_sent("handoff", size_bytes=2048)
    metrics.message_sent("handoff", outcome="timeout")
    metrics.message_received("result", size_bytes=100)
    metrics.dependency_wait(1.5)
    with metrics.waiting_on_dependency():
        pass

    assert hist(metrics, c.TASK_QUALITY, ("summarize",)).sum == 0.9
    assert sample(metrics, c.QUEUE_LENGTH, (DID,)) == 2
    assert sample(metrics, c.DECISIONS, (DID, "route")) == 2
    assert hist(metrics, c.DECISION_CONFIDENCE, ("route",)).count == 1
    assert hist(metrics, c.DECISION_OPTIONS, ("route",)).sum == 3
    assert sample(metrics, c.MESSAGES_SENT, (DID, "handoff", "ok")) == 1
    assert sample(metrics, c.MESSAGES_SENT, (DID, "handoff", "timeout")) == 1
    assert sample(metrics, c.MESSAGES_RECEIVED, (DID, "result")) == 1
    assert hist(metrics, c.MESSAGE_SIZE, ("handoff",)).sum == 2048
    assert hist(metrics, c.MESSAGE_SIZE, ("result",)).sum == 100
    waits = hist(metrics, c.DEPENDENCY_WAIT_DURATION, ())
    assert waits.count == 2 and waits.sum >= 1.5


def test_conflicts_by_id_record_their_resolution_time() -> None:
    metrics = AgentMetrics(DID)
    metrics.conflict_started("c1")
    metrics.conflict_started("c2")
    metrics.conflict_resolved("c1")
    metrics.conflict_failed("c2")
    assert sample(metrics, c.CONFLICTS, (DID, "started")) == 2
    assert sample(metrics, c.CONFLICTS, (DID, "resolved")) == 1
    assert sample(metrics, c.CONFLICTS, (DID, "failed")) == 1
    assert hist(metrics, c.CONFLICT_RESOLUTION_DURATION, ("resolved",)).count == 1
    assert hist(metrics, c.CONFLICT_RESOLUTION_DURATION, ("failed",)).count == 1


def test_a_conflict_block_resolves_on_success_and_fails_on_error() -> None:
    metrics = AgentMetrics(DID)
    with metrics.conflict():
        pass
    with pytest.raises(Boom), metrics.conflict():
        raise Boom
    assert sample(metrics, c.CONFLICTS, (DID, "started")) == 2
    assert hist(metrics, c.CONFLICT_RESOLUTION_DURATION, ("resolved",)).count == 1
    assert hist(metrics, c.CONFLICT_RESOLUTION_DURATION, ("failed",)).count == 1


def test_ending_an_unknown_conflict_counts_the_state_but_drops_the_duration() -> None:
    metrics = AgentMetrics(DID)
    before = event_drops("agent_metrics", "unknown_conflict")
    metrics.conflict_resolved("never-started")
    assert sample(metrics, c.CONFLICTS, (DID, "resolved")) == 1
    assert sample(metrics, c.CONFLICT_RESOLUTION_DURATION, ("resolved",)) is None
    assert event_drops("agent_metrics", "unknown_conflict") == before + 1


def test_open_conflicts_are_bounded() -> None:
    metrics = AgentMetrics(DID)
    before = event_drops("agent_metrics", "open_conflicts_overflow")
    for i in range(MAX_OPEN_CONFLICTS + 3):
        metrics.conflict_started(f"c{i}")
    assert event_drops("agent_metrics", "open_conflicts_overflow") == before + 3
    metrics.conflict_resolved("c0")  # evicted: the oldest went first
    assert sample(metrics, c.CONFLICT_RESOLUTION_DURATION, ("resolved",)) is None
    metrics.conflict_resolved(f"c{MAX_OPEN_CONFLICTS + 2}")
    assert hist(metrics, c.CONFLICT_RESOLUTION_DURATION, ("resolved",)).count == 1


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (lambda m: m.record_task_quality("t", 1.5), "invalid_quality"),
        (lambda m: m.record_task_quality("t", math.nan), "invalid_quality"),
        (lambda m: m.record_task_quality("t", "good"), "invalid_quality"),
        (lambda m: m.set_queue_length(-1), "invalid_queue_length"),
        (lambda m: m.set_queue_length(math.inf), "invalid_queue_length"),
        (lambda m: m.record_decision("d", confidence=-0.1), "invalid_confidence"),
        (lambda m: m.record_decision("d", confidence=True), "invalid_confidence"),
        (lambda m: m.record_decision("d", options_considered=-2), "invalid_options"),
        (lambda m: m.message_sent("m", size_bytes=-1), "invalid_size"),
        (lambda m: m.message_received("m", size_bytes=math.nan), "invalid_size"),
        (lambda m: m.dependency_wait(-0.5), "invalid_duration"),
        (lambda m: m.task_finished("t", math.nan), "invalid_duration"),
    ],
    ids=[
        "quality-above-1",
        "quality-nan",
        "quality-str",
        "queue-negative",
        "queue-inf",
        "confidence-negative",
        "confidence-bool",
        "options-negative",
        "size-negative",
        "size-nan",
        "wait-negative",
        "duration-nan",
    ],
)
def test_a_bad_value_is_dropped_and_counted_not_raised(record, reason: str) -> None:
    metrics = AgentMetrics(DID)
    before = event_drops("agent_metrics", reason)
    record(metrics)
    assert event_drops("agent_metrics", reason) == before + 1
    for family in metrics.metric_families():
        if family.metric.type is c.MetricType.HISTOGRAM:
            assert family.samples == {}, f"{family.metric.name} observed a bad value"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")


junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.just(Unprintable()),
)


@settings(deadline=None)  # no per-example time limit: speed belongs in benchmarks/
@given(label=junk, value=junk)
def test_no_input_raises_into_the_agent(label: object, value: object) -> None:
    metrics = AgentMetrics(DID)
    metrics.record_task_quality(label, value)  # type: ignore[arg-type]
    metrics.set_queue_length(value)  # type: ignore[arg-type]
    metrics.record_decision(label, value, value)  # type: ignore[arg-type]
    metrics.message_sent(label, value, label)  # type: ignore[arg-type]
    metrics.message_received(label, value)  # type: ignore[arg-type]
    metrics.dependency_wait(value)  # type: ignore[arg-type]
    metrics.task_finished(label, value)  # type: ignore[arg-type]
    metrics.conflict_started(label)  # type: ignore[arg-type]
    metrics.conflict_resolved(label)  # type: ignore[arg-type]
    with metrics.task(label):  # type: ignore[arg-type]
        pass
    for family in metrics.metric_families():
        for labels in family.samples:
            assert all(type(v) is str for v in labels)


def test_sibling_agents_share_one_set_of_families() -> None:
    researcher = AgentMetrics(DID)
    writer = researcher.for_agent("did:mesh:writer")
    with researcher.task("t"):
        pass
    with writer.task("t"):
        pass
    started = families(writer)[c.TASKS_STARTED.name].samples
    assert started == {(DID, "t"): 1.0, ("did:mesh:writer", "t"): 1.0}
    assert families(researcher)[c.TASKS_STARTED.name].samples == started


def test_the_guard_caps_agent_identities() -> None:
    metrics = AgentMetrics("did:mesh:a0", guard=CardinalityGuard(max_series=3))
    for i in range(10):
        metrics.for_agent(f"did:mesh:a{i}").set_queue_length(i)
    samples = families(metrics)[c.QUEUE_LENGTH.name].samples
    assert len(samples) == 4
    assert (OVERFLOW,) in samples


def test_it_is_a_metric_source_of_catalogue_metrics_only() -> None:
    metrics = AgentMetrics(DID)
    assert isinstance(metrics, MetricSource)
    names = [f.metric.name for f in metrics.metric_families()]
    assert len(names) == len(set(names))
    assert all(name in c.CATALOGUE for name in names)
    assert c.TASKS_STARTED.name in names and c.DEPENDENCY_WAIT_DURATION.name in names


def test_exposed_through_the_prometheus_adapter() -> None:
    metrics = AgentMetrics(DID)
    writer = metrics.for_agent("did:mesh:writer")
    with metrics.task("summarize"):
        pass
    writer.message_sent("handoff", size_bytes=300)
    registry = CollectorRegistry()
    registry.register(ScrapeExporter([metrics], include_self_metrics=False))
    labels = {"agent_did": DID, "task_type": "summarize"}
    assert registry.get_sample_value(c.TASKS_STARTED.name, labels) == 1
    assert registry.get_sample_value(f"{c.TASK_DURATION.name}_count", labels) == 1
    sent = {"agent_did": "did:mesh:writer", "message_type": "handoff", "outcome": "ok"}
    assert registry.get_sample_value(c.MESSAGES_SENT.name, sent) == 1
    assert (
        registry.get_sample_value(f"{c.MESSAGE_SIZE.name}_sum", {"message_type": "handoff"}) == 300
    )


def test_tasks_on_many_threads_are_counted_exactly() -> None:
    """Outcome and duration are one fused update: the totals always agree."""
    import threading

    metrics = AgentMetrics(DID)

    def work(n: int) -> None:
        mine = metrics.for_agent(f"did:mesh:{n % 2}")
        for i in range(3_000):
            try:
                with mine.task("summarize"):
                    if i % 3 == 0:
                        raise Boom
            except Boom:
                pass

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for agent in ("did:mesh:0", "did:mesh:1"):
        key = (agent, "summarize")
        assert sample(metrics, c.TASKS_STARTED, key) == 6_000
        assert sample(metrics, c.TASKS_COMPLETED, key) == 4_000
        assert sample(metrics, c.TASKS_FAILED, key) == 2_000
        assert hist(metrics, c.TASK_DURATION, key).count == 6_000
