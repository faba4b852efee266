"""Saga outcome metrics, beside the spans: rates and durations an alert can use.

Spans answer "what happened in this saga"; these counters answer "how often
do sagas fail or escalate, and for which agent", which is what alerts and
dashboards need. Step durations are timed between the step's SAGA_STEP_STARTED
and its end event, using the events' timestamps.

* ``agent_hypervisor_sagas_total{agent_did,outcome}``: completed | escalated | failed
* ``agent_hypervisor_saga_steps_total{agent_did,outcome}``: committed | failed | compensated
* ``agent_hypervisor_saga_compensations_total{agent_did}``
* ``agent_hypervisor_saga_escalations_total{agent_did}``
* ``agent_hypervisor_saga_step_duration_seconds{outcome}``: committed | failed

A missing agent DID is the empty label value. Open steps are capped (oldest
evicted and counted as dropped, ``reason="open_step_evicted"``) so a step that
never ends cannot leak memory. A saga event without a ``saga_id`` belongs to
the saga named by its causal trace id (as upstream reads it); events with
neither (and step events without a ``step_id``) are dropped and counted under
``component="saga_metrics"``.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator

from meshwatch.instrumentation.bus import HypervisorEventBus
from meshwatch.instrumentation.catalogue import (
    SAGA_COMPENSATIONS,
    SAGA_ESCALATIONS,
    SAGA_STEP_DURATION,
    SAGA_STEPS,
    SAGAS,
)
from meshwatch.instrumentation.drops import record_event_drop
from meshwatch.instrumentation.events import (
    EventType,
    HypervisorEvent,
    event_seconds,
    payload_id,
    saga_id_of,
)
from meshwatch.instrumentation.stores import (
    CardinalityGuard,
    CounterStore,
    HistogramStore,
    MetricFamilySnapshot,
)

COMPONENT = "saga_metrics"

OUTCOME_COMPLETED = "completed"
OUTCOME_ESCALATED = "escalated"
OUTCOME_FAILED = "failed"
OUTCOME_COMMITTED = "committed"
OUTCOME_COMPENSATED = "compensated"

_SAGA_OUTCOME = {
    EventType.SAGA_COMPLETED: OUTCOME_COMPLETED,
    EventType.SAGA_ESCALATED: OUTCOME_ESCALATED,
    EventType.SAGA_FAILED: OUTCOME_FAILED,
}
_STEP_OUTCOME = {
    EventType.SAGA_STEP_COMMITTED: OUTCOME_COMMITTED,
    EventType.SAGA_STEP_FAILED: OUTCOME_FAILED,
}
_log = logging.getLogger(__name__)


class SagaMetricsCollector:
    """Counts saga and step outcomes and times steps, from saga events on ``bus``."""

    def __init__(
        self,
        bus: HypervisorEventBus,
        *,
        guard: CardinalityGuard | None = None,
        max_open_steps: int = 10_000,
    ) -> None:
        if isinstance(max_open_steps, bool) or not isinstance(max_open_steps, int):
            raise TypeError(f"max_open_steps must be an int, got {max_open_steps!r}")
        if max_open_steps < 1:
            raise ValueError(f"max_open_steps must be at least 1, got {max_open_steps}")
        self._sagas = CounterStore(SAGAS, guard=guard)
        self._steps = CounterStore(SAGA_STEPS, guard=guard)
        self._compensations = CounterStore(SAGA_COMPENSATIONS, guard=guard)
        self._escalations = CounterStore(SAGA_ESCALATIONS, guard=guard)
        self._step_duration = HistogramStore(SAGA_STEP_DURATION, guard=guard)
        self._lock = threading.Lock()
        self._open: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._open_by_saga: dict[str, set[str]] = {}
        self._max_open_steps = max_open_steps
        self._subscriptions = [
            bus.subscribe(EventType.SAGA_STEP_STARTED, self._on_step_started),
            bus.subscribe(EventType.SAGA_STEP_COMMITTED, self._on_step_ended),
            bus.subscribe(EventType.SAGA_STEP_FAILED, self._on_step_ended),
            bus.subscribe(EventType.SAGA_COMPENSATING, self._on_compensating),
            *(bus.subscribe(t, self._on_saga_ended) for t in _SAGA_OUTCOME),
        ]

    def close(self) -> None:
        """Stop listening to the bus; the counts so far stay readable."""
        for subscription in self._subscriptions:
            subscription.cancel()
        self._subscriptions.clear()

    def _ids(self, event: HypervisorEvent, *, need_step: bool) -> tuple[str, str | None] | None:
        saga_id = saga_id_of(event)
        if saga_id is None:
            self._drop(event, "missing_saga_id")
            return None
        step_id = payload_id(event.payload, "step_id")
        if need_step and step_id is None:
            self._drop(event, "missing_step_id")
            return None
        return saga_id, step_id

    def _on_step_started(self, event: HypervisorEvent) -> None:
        ids = self._ids(event, need_step=True)
        if ids is None:
            return
        saga_id, step_id = ids[0], ids[1]
        assert step_id is not None
        with self._lock:
            evicted = (saga_id, step_id) not in self._open and len(
                self._open
            ) >= self._max_open_steps
            if evicted:
                (old_saga, old_step), _ = self._open.popitem(last=False)
                self._forget(old_saga, old_step)
            self._open[(saga_id, step_id)] = event_seconds(event)
            self._open_by_saga.setdefault(saga_id, set()).add(step_id)
        if evicted:
            record_event_drop(COMPONENT, "open_step_evicted")

    def _on_step_ended(self, event: HypervisorEvent) -> None:
        ids = self._ids(event, need_step=True)
        if ids is None:
            return
        outcome = _STEP_OUTCOME[event.event_type]
        with self._lock:
            started = self._open.pop(ids, None)  # type: ignore[arg-type]
            self._forget(*ids)  # type: ignore[arg-type]
        agent = event.agent_did or ""
        self._steps.inc((agent, outcome))
        if started is not None:
            duration = max(0.0, event_seconds(event) - started)
            self._step_duration.observe((outcome,), duration)

    def _on_compensating(self, event: HypervisorEvent) -> None:
        ids = self._ids(event, need_step=False)
        if ids is None:
            return
        if ids[1] is not None:
            with self._lock:
                self._open.pop(ids, None)  # type: ignore[arg-type]
                self._forget(*ids)  # type: ignore[arg-type]
        agent = event.agent_did or ""
        self._compensations.inc((agent,))
        self._steps.inc((agent, OUTCOME_COMPENSATED))

    def _on_saga_ended(self, event: HypervisorEvent) -> None:
        ids = self._ids(event, need_step=False)
        if ids is None:
            return
        saga_id = ids[0]
        with self._lock:  # steps left open by an ended saga will never end
            for step_id in self._open_by_saga.pop(saga_id, ()):
                self._open.pop((saga_id, step_id), None)
        outcome = _SAGA_OUTCOME[event.event_type]
        agent = event.agent_did or ""
        self._sagas.inc((agent, outcome))
        if outcome == OUTCOME_ESCALATED:
            self._escalations.inc((agent,))

    def _forget(self, saga_id: str, step_id: str) -> None:
        """Remove a step from the per-saga index. Call under the lock."""
        steps = self._open_by_saga.get(saga_id)
        if steps is not None:
            steps.discard(step_id)
            if not steps:
                del self._open_by_saga[saga_id]

    def _drop(self, event: HypervisorEvent, reason: str) -> None:
        record_event_drop(COMPONENT, reason)
        _log.debug(
            "saga_metrics dropped %s event %s: %s", event.event_type.value, event.event_id, reason
        )

    @property
    def open_steps(self) -> int:
        """Steps started and not yet ended."""
        return len(self._open)

    def metric_families(self) -> Iterator[MetricFamilySnapshot]:
        """The saga metrics for the Prometheus adapter (MetricSource)."""
        yield self._sagas.snapshot()
        yield self._steps.snapshot()
        yield self._compensations.snapshot()
        yield self._escalations.snapshot()
        yield self._step_duration.snapshot()


__all__ = ["SagaMetricsCollector"]
