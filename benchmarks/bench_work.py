"""Agent work metrics: what one ``with metrics.task(...)`` costs the agent.

(a) ``with metrics.task("summarize"): pass`` (start counter, clock, outcome
    counter, duration histogram, exemplar lookup) against one bare
    prometheus_client ``Histogram`` ``observe()`` on a pre-bound child, the
    cheapest thing an agent could do instead. Target: <= 2x (the task records
    three series and reads the clock twice; one observe records one).
(b) The same task against the equivalent hand-written prometheus_client code
    (started.inc(), two perf_counter reads, completed.inc(), observe()), so the
    price of the one-line API over doing it by hand is visible. Target: <= 1.5x.
(c) (a) inside a causal trace, so every duration carries a trace-id exemplar.
    Target: <= 6x the bare observe.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram

from benchmarks.common import Result, interleaved_seconds_per_call
from meshwatch.instrumentation.catalogue import TASK_DURATION, TASKS_COMPLETED, TASKS_STARTED
from meshwatch.instrumentation.context import use_trace
from meshwatch.instrumentation.trace import CausalTraceId
from meshwatch.instrumentation.work_metrics import AgentMetrics

DID = "did:mesh:researcher"
TASK = "summarize"


def _prometheus_client_metrics() -> tuple[Counter, Counter, Histogram]:
    registry = CollectorRegistry()
    labels = ("agent_did", "task_type")
    return (
        Counter(TASKS_STARTED.family, TASKS_STARTED.help, labels, registry=registry),
        Counter(TASKS_COMPLETED.family, TASKS_COMPLETED.help, labels, registry=registry),
        Histogram(
            TASK_DURATION.name,
            TASK_DURATION.help,
            labels,
            buckets=TASK_DURATION.buckets,
            registry=registry,
        ),
    )


def run() -> list[Result]:
    metrics = AgentMetrics(DID)
    task = metrics.task

    def one_task() -> None:
        with task(TASK):
            pass

    started, completed, duration = _prometheus_client_metrics()
    started_child = started.labels(DID, TASK)
    completed_child = completed.labels(DID, TASK)
    duration_child = duration.labels(DID, TASK)
    perf_counter = time.perf_counter

    def bare_observe() -> None:
        duration_child.observe(0.1)

    def by_hand() -> None:
        started_child.inc()
        start = perf_counter()
        completed_child.inc()
        duration_child.observe(perf_counter() - start)

    # Each figure is timed in turn with its baseline (a drift in speed moves both alike).
    seconds = interleaved_seconds_per_call(
        {"task": one_task, "observe": bare_observe, "by_hand": by_hand}
    )
    task_cost, observe_cost, by_hand_cost = (seconds[k] for k in ("task", "observe", "by_hand"))
    with use_trace(CausalTraceId()):
        traced = interleaved_seconds_per_call({"task": one_task, "observe": bare_observe})
    ns = 1e9
    return [
        Result(
            "with metrics.task(): empty body",
            task_cost * ns,
            "ns",
            target=2.0,
            baseline=observe_cost * ns,
            baseline_name="prometheus_client Histogram.observe",
        ),
        Result(
            "with metrics.task(): vs the same by hand",
            task_cost * ns,
            "ns",
            target=1.5,
            baseline=by_hand_cost * ns,
            baseline_name="prometheus_client inc+inc+observe",
        ),
        Result(
            "with metrics.task(): in a trace (exemplar)",
            traced["task"] * ns,
            "ns",
            target=6.0,
            baseline=traced["observe"] * ns,
            baseline_name="prometheus_client Histogram.observe",
        ),
    ]
