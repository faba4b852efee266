"""Ring enforcement metrics, maintained from ring events on the bus.

Rings are privilege levels: 0 is root, 3 is the sandbox. An agent is
*assigned* a ring, may be *elevated* to a more privileged (lower) ring for a
while, and goes back when *demoted* or when the elevation *expires*. A
*breach* is an attempt to use a capability above the agent's ring.

What this collector adds to the tutorial's version:

* ``agent_hypervisor_ring_elevated`` (1 while the agent runs above its
  assigned ring, else 0), so an alert can ask "elevated right now" directly.
* The elevation duration gauge is computed when collected: it grows while the
  agent is still elevated (an elevation that never ends is exactly the one to
  alert on) and keeps the last elevation's length afterwards. Durations come
  from event timestamps, so they are right even when events are replayed.
  A second ELEVATED while already elevated does not restart the clock.
* Malformed payloads never raise into the emitter: the event is dropped,
  counted in ``meshwatch_events_dropped_total{component="ring_metrics"}`` and
  logged at DEBUG.
* :meth:`RingMetricsCollector.export_to_prometheus` passes counters as deltas
  since the previous export, because ``inc_counter`` adds; passing cumulative
  totals (as the upstream did) double-counts on every call after the first.

Payload keys: RING_ASSIGNED ``ring``; RING_ELEVATED ``to_ring`` (and optionally
``from_ring``, taken as the assigned ring if none was seen); RING_DEMOTED
``to_ring``; RING_ELEVATION_EXPIRED ``to_ring`` (optional: defaults to the
assigned ring). RING_BREACH_DETECTED needs no payload.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from meshwatch.instrumentation.bus import HypervisorEventBus
from meshwatch.instrumentation.catalogue import (
    RING_BREACHES,
    RING_CURRENT,
    RING_ELEVATED,
    RING_ELEVATION_DURATION,
    RING_TRANSITIONS,
    MetricType,
)
from meshwatch.instrumentation.drops import record_event_drop
from meshwatch.instrumentation.events import EventType, HypervisorEvent
from meshwatch.instrumentation.protocols import PrometheusExporterProtocol
from meshwatch.instrumentation.values import (
    OVERFLOW,
    CardinalityGuard,
    CounterStore,
    GaugeStore,
    MetricFamilySnapshot,
    default_guard,
)

COMPONENT = "ring_metrics"
MIN_RING, MAX_RING = 0, 3
EVENTS_PROCESSED = "events_processed"

_log = logging.getLogger(__name__)

TRANSITION_EVENTS = (
    EventType.RING_ASSIGNED,
    EventType.RING_ELEVATED,
    EventType.RING_DEMOTED,
    EventType.RING_ELEVATION_EXPIRED,
)
RING_EVENTS = (*TRANSITION_EVENTS, EventType.RING_BREACH_DETECTED)


class _Malformed(Exception):
    """A ring event this collector cannot use; ``reason`` becomes the drop label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _ring(payload: Mapping[str, Any], key: str, *, required: bool) -> int | None:
    value = payload.get(key)
    if value is None:
        if required:
            raise _Malformed("missing_ring")
        return None
    if type(value) is not int or not MIN_RING <= value <= MAX_RING:
        raise _Malformed("invalid_ring")
    return value


class _AgentRing:
    """One agent's ring state. Guarded by the collector's lock."""

    __slots__ = ("assigned", "current", "elevated_since", "last_elevation")

    def __init__(self) -> None:
        self.assigned: int | None = None
        self.current: int | None = None
        self.elevated_since: float | None = None
        self.last_elevation: float | None = None


class RingMetricsCollector:
    """Counters and gauges for ring transitions, breaches and elevations.

    Subscribes to the ring events of ``bus`` on construction (call
    :meth:`close` to unsubscribe). ``guard`` caps series per metric (default:
    the process-wide guard); ``clock`` is the epoch-seconds clock used for
    live elevation durations.
    """

    def __init__(
        self,
        bus: HypervisorEventBus,
        *,
        guard: CardinalityGuard | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._guard = guard
        self._clock = clock
        self._lock = threading.Lock()
        self._export_lock = threading.Lock()
        self._transitions = CounterStore(RING_TRANSITIONS, guard=guard)
        self._breaches = CounterStore(RING_BREACHES, guard=guard)
        self._ring_current = GaugeStore(RING_CURRENT, guard=guard)
        self._ring_elevated = GaugeStore(RING_ELEVATED, guard=guard)
        self._agents: dict[str, _AgentRing] = {}
        self._events_processed = 0
        self._events_dropped = 0
        self._exported: dict[tuple[str, tuple[str, ...]], float] = {}
        self._bus = bus
        self._subscriptions = [
            bus.subscribe(EventType.RING_BREACH_DETECTED, self._on_breach),
            *(bus.subscribe(t, self._on_transition) for t in TRANSITION_EVENTS),
        ]

    def close(self) -> None:
        """Stop listening to the bus; the metrics collected so far stay readable."""
        for subscription in self._subscriptions:
            subscription.cancel()
        self._subscriptions.clear()

    # -- event handlers (the emit hot path) --------------------------------------

    def _on_breach(self, event: HypervisorEvent) -> None:
        agent = event.agent_did
        if agent is None:
            self._drop(event, "missing_agent_did")
            return
        session = event.session_id
        self._breaches.inc((agent, "" if session is None else session))
        with self._lock:
            self._events_processed += 1

    def _on_transition(self, event: HypervisorEvent) -> None:
        agent = event.agent_did
        if agent is None:
            self._drop(event, "missing_agent_did")
            return
        event_type = event.event_type
        payload = event.payload
        try:
            if event_type is EventType.RING_ASSIGNED:
                ring = _ring(payload, "ring", required=False)
                if ring is None:
                    ring = _ring(payload, "to_ring", required=True)
                from_ring = None
            else:
                ring = _ring(
                    payload, "to_ring", required=event_type is not EventType.RING_ELEVATION_EXPIRED
                )
                from_ring = _ring(payload, "from_ring", required=False)
        except _Malformed as bad:
            self._drop(event, bad.reason)
            return
        session = event.session_id
        self._transitions.inc((event_type.value, agent, "" if session is None else session))
        with self._lock:
            state = self._agent(agent)
            if event_type is EventType.RING_ASSIGNED:
                state.assigned = ring
            elif from_ring is not None and state.assigned is None:
                state.assigned = from_ring
            if ring is None:  # an expiry that did not say where to: back to the assignment
                ring = state.assigned if state.assigned is not None else state.current
            state.current = ring
            if state.assigned is not None and ring is not None:
                elevated = ring < state.assigned
            else:  # no assignment seen: trust the event's own meaning
                elevated = event_type is EventType.RING_ELEVATED
            if elevated and state.elevated_since is None:
                state.elevated_since = event.timestamp.timestamp()
            elif not elevated and state.elevated_since is not None:
                ended = event.timestamp.timestamp()
                state.last_elevation = max(0.0, ended - state.elevated_since)
                state.elevated_since = None
            self._events_processed += 1
        key = (agent,)
        if ring is not None:
            self._ring_current.set(key, ring)
        self._ring_elevated.set(key, 1 if elevated else 0)

    def _agent(self, agent: str) -> _AgentRing:
        """The state of ``agent``; past the series cap, the shared overflow state."""
        state = self._agents.get(agent)
        if state is None:
            guard = self._guard if self._guard is not None else default_guard()
            if len(self._agents) >= guard.max_series:
                agent = OVERFLOW
                state = self._agents.get(agent)
            if state is None:
                state = self._agents[agent] = _AgentRing()
        return state

    def _drop(self, event: HypervisorEvent, reason: str) -> None:
        record_event_drop(COMPONENT, reason)
        with self._lock:
            self._events_dropped += 1
        _log.debug(
            "ring_metrics dropped %s event %s: %s", event.event_type.value, event.event_id, reason
        )

    # -- reading -------------------------------------------------------------------

    @property
    def events_processed(self) -> int:
        """Ring events that updated the metrics."""
        return self._events_processed

    @property
    def events_dropped(self) -> int:
        """Ring events ignored because they were malformed."""
        return self._events_dropped

    def _elevation_samples(self) -> dict[tuple[str, ...], float]:
        now = self._clock()
        with self._lock:
            rows = [
                (agent, s.elevated_since, s.last_elevation)
                for agent, s in self._agents.items()
                if s.elevated_since is not None or s.last_elevation is not None
            ]
        return {
            (agent,): max(0.0, now - since) if since is not None else last  # type: ignore[misc]
            for agent, since, last in rows
        }

    def collect(self) -> dict[str, Any]:
        """A snapshot keyed by metric name, in the tutorial's shape.

        Counters are keyed by label tuples (``(event_type, agent_did,
        session_id)`` and ``(agent_did, session_id)``), per-agent gauges by the
        agent DID; ``"events_processed"`` is the number of ring events used.
        A missing session id is the empty string.
        """
        return {
            RING_TRANSITIONS.name: {k: int(v) for k, v in self._transitions.items().items()},
            RING_BREACHES.name: {k: int(v) for k, v in self._breaches.items().items()},
            RING_CURRENT.name: {k[0]: int(v) for k, v in self._ring_current.items().items()},
            RING_ELEVATION_DURATION.name: {k[0]: v for k, v in self._elevation_samples().items()},
            RING_ELEVATED.name: {k[0]: int(v) for k, v in self._ring_elevated.items().items()},
            EVENTS_PROCESSED: self._events_processed,
        }

    def metric_families(self) -> Iterator[MetricFamilySnapshot]:
        """The ring metrics for the Prometheus adapter (MetricSource)."""
        yield self._transitions.snapshot()
        yield self._breaches.snapshot()
        yield self._ring_current.snapshot()
        yield MetricFamilySnapshot(
            RING_ELEVATION_DURATION, RING_ELEVATION_DURATION.labels, self._elevation_samples()
        )
        yield self._ring_elevated.snapshot()

    def export_to_prometheus(self, exporter: PrometheusExporterProtocol) -> None:
        """Push the current values through ``exporter`` (tutorial section 6).

        Gauges are set to their current values. Counters are passed as the
        increase since the previous export through this collector, so calling
        this every few seconds keeps the exporter's counters exact. If the
        exporter raises, the series not yet passed are passed next time.
        """
        if not isinstance(exporter, PrometheusExporterProtocol):
            raise TypeError(
                f"exporter needs set_gauge() and inc_counter(), got {type(exporter).__name__}"
            )
        with self._export_lock:
            for family in self.metric_families():
                metric = family.metric
                for key, value in family.samples.items():
                    labels = dict(zip(family.label_names, key, strict=True))
                    if metric.type is MetricType.COUNTER:
                        previous = self._exported.get((metric.name, key), 0.0)
                        delta = float(value) - previous  # type: ignore[arg-type]
                        if delta > 0:
                            exporter.inc_counter(metric.name, delta, labels, metric.help)
                            self._exported[(metric.name, key)] = float(value)  # type: ignore[arg-type]
                    else:
                        exporter.set_gauge(metric.name, value, labels, metric.help)  # type: ignore[arg-type]


__all__ = ["RING_EVENTS", "RingMetricsCollector"]
