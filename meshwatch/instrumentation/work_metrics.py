"""Agent work metrics: tasks, queue, decisions, messages, conflicts, dependency waits.

An agent records its own work in one line per fact::

    metrics = AgentMetrics("did:mesh:researcher")
    with metrics.task("summarize"):          # started, completed/failed, duration
        summary = summarize(doc)
    metrics.record_task_quality("summarize", 0.92)
    metrics.record_decision("route", confidence=0.8, options_considered=3)
    metrics.message_sent("handoff", size_bytes=2048)

The numbers live in thread-safe stores (:mod:`meshwatch.instrumentation.stores`)
and leave the process only when the Prometheus adapter scrapes them:
:class:`AgentMetrics` is a :class:`~meshwatch.instrumentation.stores.MetricSource`.

Why one object per agent, sharing stores: a process that hosts several agents
must expose each metric family once, so :meth:`AgentMetrics.for_agent` returns a
sibling bound to another agent identity that writes into the *same* stores.
Register any one of them with the adapter, once. The agent identity is one
label (``agent_did``) and the cardinality guard caps how many distinct values
(and other label values such as task types) a metric may hold.

Bad values never raise into the agent's code: a NaN duration, a negative size, a
confidence outside 0..1 is dropped, counted in
``meshwatch_events_dropped_total{component="agent_metrics"}`` and logged at debug
level, so a buggy caller cannot take the agent down or flood its logs. The drop
counter is the process-wide one in :mod:`meshwatch.instrumentation.drops`,
which the Prometheus adapter exposes by default.

Task durations carry the current trace id as an exemplar (the active
OpenTelemetry span when the OTel adapter is configured, else the causal trace
in :func:`~meshwatch.instrumentation.context.use_trace`), so a slow task on a
dashboard links to its trace.

This module is pure standard library (no prometheus_client, no opentelemetry).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from types import TracebackType

from meshwatch.instrumentation.catalogue import (
    CONFLICT_RESOLUTION_DURATION,
    CONFLICTS,
    DECISION_CONFIDENCE,
    DECISION_OPTIONS,
    DECISIONS,
    DEPENDENCY_WAIT_DURATION,
    MESSAGE_SIZE,
    MESSAGES_RECEIVED,
    MESSAGES_SENT,
    QUEUE_LENGTH,
    TASK_DURATION,
    TASK_QUALITY,
    TASKS_COMPLETED,
    TASKS_FAILED,
    TASKS_STARTED,
)
from meshwatch.instrumentation.context import trace_exemplar
from meshwatch.instrumentation.drops import record_event_drop
from meshwatch.instrumentation.stores import (
    CardinalityGuard,
    CounterStore,
    GaugeStore,
    HistogramStore,
    MetricFamilySnapshot,
    finite_number,
)
from meshwatch.instrumentation.text import safe_str

logger = logging.getLogger(__name__)

COMPONENT = "agent_metrics"

# Conflicts opened with conflict_started() but never resolved would otherwise grow
# the open-conflict table forever; past this many the oldest is forgotten (counted).
MAX_OPEN_CONFLICTS = 10_000

_perf_counter = time.perf_counter


class _WorkStores:
    """The stores every :class:`AgentMetrics` bound to one group writes into."""

    def __init__(self, guard: CardinalityGuard | None) -> None:
        # A task's outcome and duration are one update under this lock, which the
        # four task stores share (stores.py, "fused updates").
        self.task_lock = lock = threading.Lock()
        self.tasks_started = CounterStore(TASKS_STARTED, guard=guard, lock=lock)
        self.tasks_completed = CounterStore(TASKS_COMPLETED, guard=guard, lock=lock)
        self.tasks_failed = CounterStore(TASKS_FAILED, guard=guard, lock=lock)
        self.task_duration = HistogramStore(TASK_DURATION, guard=guard, lock=lock)
        self.task_quality = HistogramStore(TASK_QUALITY, guard=guard)
        self.queue_length = GaugeStore(QUEUE_LENGTH, guard=guard)
        self.decisions = CounterStore(DECISIONS, guard=guard)
        self.decision_confidence = HistogramStore(DECISION_CONFIDENCE, guard=guard)
        self.decision_options = HistogramStore(DECISION_OPTIONS, guard=guard)
        self.messages_sent = CounterStore(MESSAGES_SENT, guard=guard)
        self.messages_received = CounterStore(MESSAGES_RECEIVED, guard=guard)
        self.message_size = HistogramStore(MESSAGE_SIZE, guard=guard)
        self.conflicts = CounterStore(CONFLICTS, guard=guard)
        self.conflict_duration = HistogramStore(CONFLICT_RESOLUTION_DURATION, guard=guard)
        self.dependency_wait = HistogramStore(DEPENDENCY_WAIT_DURATION, guard=guard)
        self.all = (
            self.tasks_started,
            self.tasks_completed,
            self.tasks_failed,
            self.task_duration,
            self.task_quality,
            self.queue_length,
            self.decisions,
            self.decision_confidence,
            self.decision_options,
            self.messages_sent,
            self.messages_received,
            self.message_size,
            self.conflicts,
            self.conflict_duration,
            self.dependency_wait,
        )
        # (agent_did, conflict id) -> perf_counter at its start; oldest first, for eviction.
        self.open_conflicts: OrderedDict[tuple[str, str], float] = OrderedDict()
        self.conflicts_lock = threading.Lock()


class TaskTimer:
    """``with metrics.task(...)``: counts the start, the outcome and the duration.

    A plain class rather than ``@contextmanager`` because it sits on the agent's
    hot path: entering and leaving costs two attribute lookups and a clock read,
    not a generator. ``__exit__`` returns False, so an exception in the body is
    counted as a failure and propagates as the very same object, traceback intact.
    Works with ``async with`` too.
    """

    __slots__ = ("_key", "_start", "_stores")

    def __init__(self, stores: _WorkStores, key: tuple[str, str]) -> None:
        self._stores = stores
        self._key = key
        self._start = 0.0

    def __enter__(self) -> TaskTimer:
        stores = self._stores
        lock = stores.task_lock
        lock.acquire()  # not ``with``: acquire/release in try/finally is ~90 ns cheaper
        try:
            stores.tasks_started.inc_locked(self._key)
        finally:
            lock.release()
        self._start = _perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        elapsed = _perf_counter() - self._start
        stores = self._stores
        exemplar = trace_exemplar(elapsed)
        key = self._key
        lock = stores.task_lock
        lock.acquire()  # outcome and duration together: one lock, not two
        try:
            (stores.tasks_completed if exc_type is None else stores.tasks_failed).inc_locked(key)
            stores.task_duration.observe_locked(key, elapsed, exemplar)
        finally:
            lock.release()

    async def __aenter__(self) -> TaskTimer:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return self.__exit__(exc_type, exc, tb)


# Receives (elapsed seconds, whether the block succeeded).
_Recorder = Callable[[float, bool], None]


class _WaitTimer:
    """Times a block and hands the elapsed seconds to ``record`` (even on error)."""

    __slots__ = ("_record", "_start")

    def __init__(self, record: _Recorder) -> None:
        self._record = record
        self._start = 0.0

    def __enter__(self) -> _WaitTimer:
        self._start = _perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._record(_perf_counter() - self._start, exc_type is None)


class AgentMetrics:
    """Work metrics of one agent; a :class:`~meshwatch.instrumentation.stores.MetricSource`.

    ``guard`` caps the number of series per metric (agent identities, task
    types, message types...); without one the process-wide default applies.
    Use :meth:`for_agent` for other agents in the same process so the
    metrics are exposed once.
    """

    __slots__ = ("_stores", "agent_did")

    def __init__(self, agent_did: str, *, guard: CardinalityGuard | None = None) -> None:
        self.agent_did = str(agent_did)
        self._stores = _WorkStores(guard)

    def for_agent(self, agent_did: str) -> AgentMetrics:
        """A sibling for another agent identity, writing into the same stores."""
        sibling = object.__new__(AgentMetrics)
        sibling.agent_did = str(agent_did)
        sibling._stores = self._stores
        return sibling

    # --- tasks ------------------------------------------------------------------------
    def task(self, task_type: str) -> TaskTimer:
        """Context manager: one task of ``task_type`` (started, outcome, duration)."""
        if type(task_type) is not str:  # safe_str's own first test, without the call
            task_type = safe_str(task_type)
        return TaskTimer(self._stores, (self.agent_did, task_type))

    def task_started(self, task_type: str) -> None:
        """Count a task start, for callers that cannot wrap the task in ``with``."""
        self._stores.tasks_started.inc((self.agent_did, safe_str(task_type)))

    def task_finished(self, task_type: str, duration_seconds: float, *, ok: bool = True) -> None:
        """Record a task's outcome and duration measured by the caller."""
        key = (self.agent_did, safe_str(task_type))
        seconds = finite_number(duration_seconds)
        stores = self._stores
        if seconds is None or seconds < 0:
            (stores.tasks_completed if ok else stores.tasks_failed).inc(key)
            self._drop("invalid_duration", duration_seconds)
            return
        exemplar = trace_exemplar(seconds)
        with stores.task_lock:
            (stores.tasks_completed if ok else stores.tasks_failed).inc_locked(key)
            stores.task_duration.observe_locked(key, seconds, exemplar)

    def record_task_quality(self, task_type: str, score: float) -> None:
        """A finished task's quality score, 0 (worst) to 1 (best)."""
        value = finite_number(score)
        if value is None or not 0.0 <= value <= 1.0:
            self._drop("invalid_quality", score)
            return
        self._stores.task_quality.observe((safe_str(task_type),), value)

    def set_queue_length(self, length: int) -> None:
        """Tasks waiting in this agent's queue now."""
        value = finite_number(length)
        if value is None or value < 0:
            self._drop("invalid_queue_length", length)
            return
        self._stores.queue_length.set((self.agent_did,), value)

    # --- decisions --------------------------------------------------------------------
    def record_decision(
        self,
        decision_type: str,
        confidence: float | None = None,
        options_considered: int | None = None,
    ) -> None:
        """A decision of ``decision_type``; confidence (0..1) and options are optional.

        The decision is counted even when a measurement is bad: it happened; only
        the bad measurement is dropped.
        """
        stores = self._stores
        decision_type = safe_str(decision_type)
        stores.decisions.inc((self.agent_did, decision_type))
        if confidence is not None:
            value = finite_number(confidence)
            if value is None or not 0.0 <= value <= 1.0:
                self._drop("invalid_confidence", confidence)
            else:
                stores.decision_confidence.observe((decision_type,), value)
        if options_considered is not None:
            count = finite_number(options_considered)
            if count is None or count < 0:
                self._drop("invalid_options", options_considered)
            else:
                stores.decision_options.observe((decision_type,), count)

    # --- messages ---------------------------------------------------------------------
    def message_sent(
        self, message_type: str, size_bytes: int | None = None, outcome: str = "ok"
    ) -> None:
        """An inter-agent message sent (``outcome``: ok, timeout, rejected...)."""
        message_type = safe_str(message_type)
        self._stores.messages_sent.inc((self.agent_did, message_type, safe_str(outcome)))
        if size_bytes is not None:
            self._observe_size(message_type, size_bytes)

    def message_received(self, message_type: str, size_bytes: int | None = None) -> None:
        """An inter-agent message received."""
        message_type = safe_str(message_type)
        self._stores.messages_received.inc((self.agent_did, message_type))
        if size_bytes is not None:
            self._observe_size(message_type, size_bytes)

    def _observe_size(self, message_type: str, size_bytes: object) -> None:
        size = finite_number(size_bytes)
        if size is None or size < 0:
            self._drop("invalid_size", size_bytes)
            return
        self._stores.message_size.observe((message_type,), size)

    # --- conflicts --------------------------------------------------------------------
    def conflict_started(self, conflict_id: str) -> None:
        """A conflict with another agent began; resolve or fail it by the same id."""
        stores = self._stores
        stores.conflicts.inc((self.agent_did, "started"))
        evicted = False
        with stores.conflicts_lock:
            stores.open_conflicts[(self.agent_did, safe_str(conflict_id))] = _perf_counter()
            if len(stores.open_conflicts) > MAX_OPEN_CONFLICTS:
                stores.open_conflicts.popitem(last=False)
                evicted = True
        if evicted:
            self._drop("open_conflicts_overflow", conflict_id)

    def conflict_resolved(self, conflict_id: str) -> None:
        """The conflict ``conflict_id`` ended in agreement."""
        self._end_conflict(conflict_id, "resolved")

    def conflict_failed(self, conflict_id: str) -> None:
        """The conflict ``conflict_id`` ended without agreement."""
        self._end_conflict(conflict_id, "failed")

    def _end_conflict(self, conflict_id: str, state: str) -> None:
        stores = self._stores
        stores.conflicts.inc((self.agent_did, state))
        with stores.conflicts_lock:
            start = stores.open_conflicts.pop((self.agent_did, safe_str(conflict_id)), None)
        if start is None:
            self._drop("unknown_conflict", conflict_id)
            return
        stores.conflict_duration.observe((state,), _perf_counter() - start)

    def conflict(self) -> _WaitTimer:
        """Context manager around a conflict: resolved if the block succeeds, else failed."""
        stores = self._stores
        stores.conflicts.inc((self.agent_did, "started"))

        def record(elapsed: float, ok: bool) -> None:
            state = "resolved" if ok else "failed"
            stores.conflicts.inc((self.agent_did, state))
            stores.conflict_duration.observe((state,), elapsed)

        return _WaitTimer(record)

    # --- dependencies -----------------------------------------------------------------
    def dependency_wait(self, seconds: float) -> None:
        """Time this agent spent waiting on another agent's output."""
        value = finite_number(seconds)
        if value is None or value < 0:
            self._drop("invalid_duration", seconds)
            return
        self._stores.dependency_wait.observe((), value)

    def waiting_on_dependency(self) -> _WaitTimer:
        """Context manager timing a wait on another agent (recorded even on error)."""
        store = self._stores.dependency_wait
        return _WaitTimer(lambda elapsed, ok: store.observe((), elapsed))

    # --- plumbing ---------------------------------------------------------------------
    def _drop(self, reason: str, value: object) -> None:
        record_event_drop(COMPONENT, reason)
        logger.debug("agent %s: dropped %s value %r", self.agent_did, reason, value)

    def metric_families(self) -> Iterable[MetricFamilySnapshot]:
        """Every work metric of this agent group, copied for one scrape."""
        return [store.snapshot() for store in self._stores.all]


__all__ = ["MAX_OPEN_CONFLICTS", "AgentMetrics", "TaskTimer"]
