"""What each agent-hypervisor state change becomes on the meshwatch bus.

One :class:`RuntimeObserver` per instrumentation handle. Its ``observe_*``
methods hook one kind of runtime object each (see :mod:`.hook_points` for the
exact methods and fields); the hooks read what the runtime did from its own
return values and state and emit the matching event:

================================  ===============================================
runtime                           meshwatch event
================================  ===============================================
``Hypervisor.create_session``     SESSION_CREATED; the session and its saga
                                  orchestrator are hooked from then on
``sso.join``                      SESSION_JOINED and RING_ASSIGNED (the ring the
                                  enforcer computed)
``sso.activate/terminate/archive`` SESSION_ACTIVATED / _TERMINATED / _ARCHIVED
``sso.update_ring``               RING_ELEVATED or RING_DEMOTED
``request_elevation``             RING_ELEVATED; a refusal RING_ELEVATION_DENIED
                                  with upstream's ``denial_reason``
``revoke_elevation``              RING_DEMOTED (reason ``revoked``)
``tick``                          RING_ELEVATION_EXPIRED per expired elevation,
                                  stamped with its ``expires_at``
``record_call``                   RING_BREACH_DETECTED with its severity;
                                  RING_BREAKER_TRIPPED when it tripped the breaker
``reset_breaker``                 RING_BREAKER_RESET (when it was tripped)
``create_saga``                   SAGA_CREATED
step PENDING→EXECUTING            SAGA_STEP_STARTED (``attempt``, ``retry``)
step EXECUTING→COMMITTED/FAILED   SAGA_STEP_COMMITTED / SAGA_STEP_FAILED
                                  (``timed_out`` when a timeout failed it)
step COMMITTED→COMPENSATING       SAGA_STEP_STARTED of the compensation
                                  (step id ``<step>:compensate``)
step →COMPENSATED                 SAGA_COMPENSATING (the compensation done)
step →COMPENSATION_FAILED         SAGA_STEP_FAILED of the compensation
saga RUNNING→COMPLETED            SAGA_COMPLETED
saga COMPENSATING→COMPLETED       SAGA_FAILED (``outcome="compensated"``)
saga →FAILED / →ESCALATED         SAGA_FAILED / SAGA_ESCALATED
``FanOutOrchestrator.execute``    SAGA_FANOUT_STARTED, SAGA_FANOUT_RESOLVED
``KillSwitch.kill``               AGENT_KILLED (``terminated``: did the
                                  termination callback succeed) and one
                                  SAGA_HANDOFF per in-flight step, each with the
                                  kill as ``parent_event_id``
vouch / release(s) / slash        VOUCH_CREATED / VOUCH_RELEASED / SLASH_EXECUTED
quarantine / release / tick       QUARANTINE_ENTERED / QUARANTINE_RELEASED
``EphemeralGC.collect``           AUDIT_GC_COLLECTED
``CommitmentEngine.commit``       AUDIT_COMMITTED
================================  ===============================================

Causal trace ids: an event carries the caller's current trace
(:func:`~meshwatch.instrumentation.context.use_trace`) when there is one;
otherwise each session has a root trace, each saga a child of it, and every
event of a session or saga carries that. Both tables are bounded (entries leave
when the session is archived or the saga ends, and the oldest is evicted past
:data:`MAX_TRACKED`).
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final

from hypervisor.audit.commitment import CommitmentEngine
from hypervisor.audit.gc import EphemeralGC
from hypervisor.core import Hypervisor, ManagedSession
from hypervisor.liability.quarantine import QuarantineManager
from hypervisor.liability.slashing import SlashingEngine
from hypervisor.liability.vouching import VouchingEngine
from hypervisor.rings.breach_detector import BreachSeverity, RingBreachDetector
from hypervisor.rings.elevation import RingElevationError, RingElevationManager
from hypervisor.saga.fan_out import FanOutOrchestrator
from hypervisor.saga.orchestrator import SagaOrchestrator
from hypervisor.saga.state_machine import (
    SAGA_TRANSITIONS,
    STEP_TRANSITIONS,
    Saga,
    SagaState,
    SagaStep,
    StepState,
)
from hypervisor.security.kill_switch import KillResult, KillSwitch
from hypervisor.session import SharedSessionObject

from meshwatch.instrumentation.bus import HypervisorEventBus
from meshwatch.instrumentation.context import current_trace
from meshwatch.instrumentation.events import EventType, HypervisorEvent
from meshwatch.instrumentation.trace import CausalTraceId
from meshwatch.integrations.agent_hypervisor.delivery import Delivery, moment
from meshwatch.integrations.agent_hypervisor.hooks import After, Changed, Hooks, argument

MAX_TRACKED: Final = 10_000
COMPENSATE_SUFFIX: Final = ":compensate"
_TRIPS = (BreachSeverity.HIGH, BreachSeverity.CRITICAL)
_FAILURES = (StepState.FAILED, StepState.COMPENSATION_FAILED)
# Upstream's end states, read from its own transition tables (the states they allow no move
# out of: a saga COMPLETED, FAILED or ESCALATED, a step COMPENSATED or COMPENSATION_FAILED
# in 3.7), as tuples: ``in`` on a tuple tries identity first, where a set would call
# Enum.__hash__.
_SAGA_ENDS = tuple(state for state, moves in SAGA_TRANSITIONS.items() if not moves)
_STEP_ENDS = tuple(state for state, moves in STEP_TRANSITIONS.items() if not moves)
# A step of an ended saga in these states can still be moved by the orchestrator itself:
# ``execute_step`` checks only the step's state (PENDING), and a step in flight (EXECUTING)
# is moved by the ``execute_step`` running it.
_STEP_LIVE = (StepState.PENDING, StepState.EXECUTING)
# What a saga's and a step's hook hands on, read once when the object is hooked:
# (saga_id, session_id) and (saga_id, session_id, step_id, action_id, agent_did).
_SagaIds = tuple[str, str]
_StepIds = tuple[str, str, str, str, str]


def _value(enum_or_value: Any) -> Any:
    """An enum's value (rings, reasons, states), anything else as it is.

    Reads ``_value_`` rather than ``.value``: the latter is a descriptor
    lookup that costs several times more, on the runtime's call path.
    """
    return enum_or_value._value_ if isinstance(enum_or_value, Enum) else enum_or_value


def _now(build: Callable[..., None], *args: Any) -> None:
    """Synchronous delivery: build and emit the events inside the runtime's call."""
    build(*args)


def _itself(build: After) -> After:
    """Synchronous delivery's handover: the builder is the ``after`` hook."""
    return build


class _Bounded(OrderedDict[str, Any]):
    """An insertion-ordered dict that evicts its oldest entry past ``MAX_TRACKED``."""

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        if len(self) > MAX_TRACKED:
            self.popitem(last=False)


class RuntimeObserver:
    """Hooks runtime objects and emits their state changes on ``bus``."""

    def __init__(
        self, bus: HypervisorEventBus, hooks: Hooks, delivery: Delivery | None = None
    ) -> None:
        self.bus = bus
        self.hooks = hooks
        # Where a hook's events are built: in the runtime's call, or on the delivery's worker.
        # Hooks copy what can still change (states, counters) and pass records as they are.
        self._report: Callable[..., None] = delivery.put if delivery is not None else _now
        # An ``after`` hook that hands the call over to ``builder(result, args, kwargs, look)``:
        # queued in one call with background delivery, the builder itself with sync. For hooks
        # whose arguments and result the runtime never changes again (a grant, a revoke, a kill,
        # a vouch, a slash, a GC or commitment record).
        self._handover: Callable[[After], After] = (
            delivery.handover if delivery is not None else _itself
        )
        self._lock = threading.Lock()
        # elevation_id -> grant seen while observed: revoke's O(1) "was it active?" lookup,
        # kept by the event builders (so in the calls' order). Plain dict operations,
        # atomic under the GIL, so it takes no lock.
        self._grants = _Bounded()
        self._session_traces = _Bounded()
        self._saga_traces = _Bounded()
        self._vouches = _Bounded()  # vouch_id -> (voucher, vouchee, session)
        self._reported = _Bounded()  # saga_id -> step ids whose compensation failure was emitted
        self._observed: set[int] = set()
        # Made once: the saga hooks run for every saga and step the runtime creates.
        self._hook_saga = hooks.state_hooker(Saga, "transition")
        self._hook_step = hooks.state_hooker(SagaStep, "transition")
        self._unhook_saga = hooks.state_unhooker(Saga, "transition")
        self._unhook_step = hooks.state_unhooker(SagaStep, "transition")
        self._on_saga: Changed = self._saga_changed
        self._on_step: Changed = self._step_changed
        # The saga events' builders, bound once: each report queues its builder, and a bound
        # method made per report is one more object the collector counts until the drain.
        self._build_saga_created = self._emit_saga_created
        self._build_saga_moved = self._saga_moved
        self._build_step_moved = self._step_moved

    # -- emitting -----------------------------------------------------------------

    def emit(
        self,
        event_type: EventType,
        session_id: str | None,
        agent_did: str | None,
        payload: dict[str, Any],
        timestamp: datetime | None = None,
        *,
        trace: CausalTraceId | None = None,
        parent: str | None = None,
    ) -> HypervisorEvent:
        ambient = current_trace()
        if ambient is not None:
            trace_id: str | None = ambient.full_id
        elif trace is not None:
            trace_id = trace.full_id
        elif session_id:
            trace_id = self._session_trace_id(session_id)
        else:
            trace_id = None
        event = HypervisorEvent(
            event_type,
            session_id=session_id or None,
            agent_did=agent_did or None,
            causal_trace_id=trace_id,
            payload=payload,
            timestamp=timestamp or moment(),
            parent_event_id=parent,
        )
        self.bus.emit(event)
        return event

    def _session_trace(self, session_id: str) -> CausalTraceId:
        return self._session_entry(session_id)[0]

    def _session_trace_id(self, session_id: str) -> str:
        """The session's trace as text: the emit path's lookup (``full_id`` is built once)."""
        entry = self._session_traces.get(session_id)  # a plain dict read needs no lock
        return entry[1] if entry is not None else self._session_entry(session_id)[1]

    def _session_entry(self, session_id: str) -> tuple[CausalTraceId, str]:
        with self._lock:
            entry = self._session_traces.get(session_id)
            if entry is None:
                trace = CausalTraceId()
                entry = (trace, trace.full_id)
                self._session_traces.put(session_id, entry)
            return entry

    def _first_time(self, obj: object) -> bool:
        """True the first time ``obj`` is observed (a Hypervisor and its session share engines)."""
        with self._lock:
            if id(obj) in self._observed:
                return False
            self._observed.add(id(obj))
            return True

    # -- the top-level runtime ----------------------------------------------------

    def observe_hypervisor(self, hv: Hypervisor) -> None:
        """The hypervisor's sessions (present and future) and the engines it owns."""
        self.hooks.wrap_async(hv, "create_session", after=self._session_created)
        for managed in hv.sessions:
            self.observe_managed_session(managed)
        self.observe_vouching(hv.vouching)
        self.observe_slashing(hv.slashing)
        self.observe_gc(hv.gc)
        self.observe_commitment(hv.commitment)

    def _session_created(self, managed: ManagedSession, args: Any, kwargs: Any, _: Any) -> None:
        sso = managed.sso
        self.observe_managed_session(managed)
        self._report(
            self.emit,
            EventType.SESSION_CREATED,
            sso.session_id,
            sso.creator_did,
            {"consistency_mode": _value(sso.consistency_mode), "state": _value(sso.state)},
            sso.created_at,
        )

    def observe_managed_session(self, managed: ManagedSession) -> None:
        self.observe_session(managed.sso)
        self.observe_sagas(managed.saga)

    # -- sessions -----------------------------------------------------------------

    def observe_session(self, sso: SharedSessionObject) -> None:
        wrap = self.hooks.wrap
        wrap(sso, "join", after=lambda participant, a, k, _: self._joined(sso, participant))
        wrap(
            sso,
            "activate",
            after=lambda r, a, k, _: self._lifecycle(sso, EventType.SESSION_ACTIVATED),
        )
        wrap(
            sso,
            "terminate",
            after=lambda r, a, k, _: self._lifecycle(sso, EventType.SESSION_TERMINATED),
        )
        wrap(sso, "archive", after=lambda r, a, k, _: self._archived(sso))
        wrap(
            sso,
            "update_ring",
            before=lambda a, k: self._ring_of(sso, a, k),
            after=self._ring_updated(sso),
        )

    def _joined(self, sso: SharedSessionObject, participant: Any) -> None:
        ring = int(participant.ring)
        self._report(
            self._emit_joined, sso.session_id, participant.agent_did, ring, participant.eff_score
        )

    def _emit_joined(self, session_id: str, agent: str, ring: int, eff_score: float) -> None:
        payload = {"ring": ring, "eff_score": eff_score}
        self.emit(EventType.SESSION_JOINED, session_id, agent, payload)
        self.emit(EventType.RING_ASSIGNED, session_id, agent, {"ring": ring, "reason": "joined"})

    def _lifecycle(self, sso: SharedSessionObject, event_type: EventType) -> None:
        payload = {"state": _value(sso.state)}
        self._report(self.emit, event_type, sso.session_id, sso.creator_did, payload)

    def _archived(self, sso: SharedSessionObject) -> None:
        self._lifecycle(sso, EventType.SESSION_ARCHIVED)
        self._report(self._forget_session, sso.session_id)

    def _forget_session(self, session_id: str) -> None:
        with self._lock:
            self._session_traces.pop(session_id, None)

    @staticmethod
    def _ring_of(sso: SharedSessionObject, args: Any, kwargs: Any) -> int:
        agent = argument(args, kwargs, 0, "agent_did")
        return int(sso.get_participant(agent).ring)

    def _ring_updated(self, sso: SharedSessionObject) -> Any:
        def after(result: Any, args: Any, kwargs: Any, old: int) -> None:
            agent = argument(args, kwargs, 0, "agent_did")
            new = int(_value(argument(args, kwargs, 1, "new_ring")))
            if new == old:
                return
            event_type = EventType.RING_ELEVATED if new < old else EventType.RING_DEMOTED
            payload = {"from_ring": old, "to_ring": new, "reason": "ring updated"}
            self._report(self.emit, event_type, sso.session_id, agent, payload)

        return after

    # -- rings --------------------------------------------------------------------

    def observe_elevations(self, manager: RingElevationManager) -> None:
        """Grants, refusals, revokes and expiries of ``manager``.

        The observer keeps the active elevations it knows of (the manager's
        active ones when it is hooked, then every grant), so a revoke finds
        what it revoked in O(1) and needs no look before the call: an
        elevation in that table is active, since only a revoke or a
        ``tick()`` ends one and both take it out. (Whether it had passed its
        TTL unnoticed is judged when the event is built, against the time of
        the revoke.) The table is bounded by :data:`MAX_TRACKED`.

        The table is kept where the events are built (on the delivery's
        worker, in the order of the calls, or in the call with sync delivery),
        so a grant's and a revoke's hook on the runtime's thread is only the
        hand-over: the wrapper's ``after`` is :meth:`Delivery.handover`'s hook,
        which queues the call in one Python call.
        """
        for elevation in manager.active_elevations:
            self._grants.put(elevation.elevation_id, elevation)
        handover = self._handover
        wrap = self.hooks.wrap
        wrap(
            manager,
            "request_elevation",
            after=handover(self._emit_elevated),
            on_error=self._denied,
        )
        wrap(manager, "revoke_elevation", after=handover(self._emit_revoked))
        wrap(manager, "tick", after=self._expired)

    def _emit_elevated(self, elevation: Any, args: Any, kwargs: Any, _: Any) -> None:
        # A grant's fields never change after it is made (only is_active, not read here).
        self._grants.put(elevation.elevation_id, elevation)
        ttl = (elevation.expires_at - elevation.granted_at).total_seconds()
        payload = {
            "from_ring": int(elevation.original_ring),
            "to_ring": int(elevation.elevated_ring),
            "elevation_id": elevation.elevation_id,
            "ttl_seconds": ttl,
            "reason": elevation.reason,
        }
        self.emit(
            EventType.RING_ELEVATED,
            elevation.session_id,
            elevation.agent_did,
            payload,
            timestamp=elevation.granted_at,
        )

    def _denied(self, exc: BaseException, args: Any, kwargs: Any) -> None:
        if isinstance(exc, RingElevationError):  # else a bug of the caller, not ours to report
            self._report(self._emit_denied, exc, args, kwargs)

    def _emit_denied(self, exc: RingElevationError, args: Any, kwargs: Any) -> None:
        agent = exc.agent_did or argument(args, kwargs, 0, "agent_did")
        payload = {
            "reason": exc.denial_reason or "unspecified",
            "from_ring": _value(exc.current_ring),
            "to_ring": _value(exc.target_ring),
        }
        self.emit(
            EventType.RING_ELEVATION_DENIED, argument(args, kwargs, 1, "session_id"), agent, payload
        )

    def _emit_revoked(self, result: Any, args: Any, kwargs: Any, _: Any) -> None:
        elevation = self._grants.pop(args[0] if args else kwargs.get("elevation_id"), None)
        if elevation is None:  # already inactive: revoking it changed nothing
            return
        if elevation.expires_at > (moment() or datetime.now(UTC)):  # else it had expired already
            self._back_down(EventType.RING_DEMOTED, elevation, "revoked", None)

    def _expired(self, expired: list[Any], args: Any, kwargs: Any, _: Any) -> None:
        if expired:
            self._report(self._emit_expired, expired)

    def _emit_expired(self, expired: list[Any]) -> None:
        grants = self._grants
        for elevation in expired:
            grants.pop(elevation.elevation_id, None)
        for elevation in expired:
            self._back_down(
                EventType.RING_ELEVATION_EXPIRED, elevation, "ttl expired", elevation.expires_at
            )

    def _back_down(
        self, event_type: EventType, elevation: Any, reason: str, at: datetime | None
    ) -> None:
        payload = {
            "from_ring": int(elevation.elevated_ring),
            "to_ring": int(elevation.original_ring),
            "elevation_id": elevation.elevation_id,
            "reason": reason,
        }
        self.emit(event_type, elevation.session_id, elevation.agent_did, payload, at)

    def observe_breaches(self, detector: RingBreachDetector) -> None:
        """Breaches as they are found; the breaker's trips and resets.

        Whether a severe breach tripped the breaker or found it tripped
        already is tracked from what the hooks saw (severe breaches, resets),
        so an ordinary call pays for no look before it. A breaker tripped
        before ``instrument()`` is reported as tripped at its next severe breach.
        """
        tripped: set[tuple[str, str]] = set()

        def after(breach: Any, args: Any, kwargs: Any, _: Any) -> None:
            if breach is None:
                return
            trips = False
            if breach.severity in _TRIPS:
                key = (breach.agent_did, breach.session_id)
                trips = key not in tripped
                tripped.add(key)
            # a breach record is never changed after it is made
            self._report(emit_breach, breach, args, kwargs, trips)

        def emit_breach(breach: Any, args: Any, kwargs: Any, trips: bool) -> None:
            payload = {
                "severity": _value(breach.severity),
                "anomaly_score": breach.anomaly_score,
                "actual_rate": breach.actual_rate,
                "agent_ring": _value(argument(args, kwargs, 2, "agent_ring")),
                "called_ring": _value(argument(args, kwargs, 3, "called_ring")),
            }
            event = self.emit(
                EventType.RING_BREACH_DETECTED,
                breach.session_id,
                breach.agent_did,
                payload,
                breach.timestamp,
            )
            if trips:
                self.emit(
                    EventType.RING_BREAKER_TRIPPED,
                    breach.session_id,
                    breach.agent_did,
                    {"severity": _value(breach.severity)},
                    breach.timestamp,
                    parent=event.event_id,
                )

        def tripped_before(args: Any, kwargs: Any) -> bool:
            agent = argument(args, kwargs, 0, "agent_did")
            session = argument(args, kwargs, 1, "session_id")
            tripped.discard((agent, session))
            return detector.is_breaker_tripped(agent, session)

        def reset(result: Any, args: Any, kwargs: Any, was_tripped: bool) -> None:
            if was_tripped:
                self._report(
                    self.emit,
                    EventType.RING_BREAKER_RESET,
                    argument(args, kwargs, 1, "session_id"),
                    argument(args, kwargs, 0, "agent_did"),
                    {},
                )

        self.hooks.wrap(detector, "record_call", after=after)
        self.hooks.wrap(detector, "reset_breaker", before=tripped_before, after=reset)

    # -- sagas --------------------------------------------------------------------

    def observe_sagas(self, orchestrator: SagaOrchestrator) -> None:
        if not self._first_time(orchestrator):
            return
        self.hooks.wrap(orchestrator, "create_saga", after=self._saga_created)
        self.hooks.wrap(orchestrator, "add_step", after=self._step_added(orchestrator))
        for saga in orchestrator.active_sagas:
            self._observe_saga(saga)
            for step in saga.steps:
                self._observe_step(saga, step)

    # The saga hooks queue the ids and values an event needs, never the saga or the step
    # themselves: a hooked saga or step is in a reference cycle with its hook, so one the
    # queue kept alive until the worker's drain has aged past the collector's young
    # generation by then, and only the rarer, costlier collections of the older ones free
    # it (measured: the hooked saga step's cost grew with the burst, 25 to 60 us a step).

    def _saga_created(self, saga: Saga, args: Any, kwargs: Any, _: Any) -> None:
        ids: _SagaIds = (saga.saga_id, saga.session_id)
        self._hook_saga(saga, self._on_saga, ids)  # _observe_saga's, a call less: every saga
        self._report(self._build_saga_created, *ids, saga.created_at)

    def _emit_saga_created(self, saga_id: str, session_id: str, at: datetime) -> None:
        self.emit(
            EventType.SAGA_CREATED,
            session_id,
            None,
            {"saga_id": saga_id},
            at,
            trace=self._saga_trace(saga_id, session_id),
        )

    def _step_added(self, orchestrator: SagaOrchestrator) -> After:
        get_saga, hook, on_step = orchestrator.get_saga, self._hook_step, self._on_step

        def after(step: SagaStep, args: Any, kwargs: Any, _: Any) -> None:
            # argument() and _observe_step() written out, two calls less: every step
            saga = get_saga(args[0] if args else kwargs.get("saga_id"))
            if saga is not None:
                ids = (saga.saga_id, saga.session_id, step.step_id, step.action_id, step.agent_did)
                hook(step, on_step, ids)

        return after

    def _saga_trace(self, saga_id: str, session_id: str) -> CausalTraceId:
        trace = self._saga_traces.get(saga_id)  # a plain dict read needs no lock
        if trace is None:
            parent = current_trace() or self._session_trace(session_id)
            trace = parent.child()
            with self._lock:
                self._saga_traces.put(saga_id, trace)
        return trace

    def _reported_failures(self, saga_id: str) -> set[str]:
        with self._lock:
            reported = self._reported.get(saga_id)
            if reported is None:
                reported = set()
                self._reported.put(saga_id, reported)
            return reported

    def _observe_saga(self, saga: Saga) -> None:
        ids: _SagaIds = (saga.saga_id, saga.session_id)
        self._hook_saga(saga, self._on_saga, ids)

    def _saga_changed(self, ids: _SagaIds, saga: Saga, old: SagaState, new: SagaState) -> None:
        """A saga's transition, on the runtime's thread: copy what can still change."""
        failed: tuple[SagaStep, ...] = ()
        if new is SagaState.ESCALATED:  # rare: these steps are passed as they are
            failed = tuple(s for s in saga.steps if s.state is StepState.COMPENSATION_FAILED)
        steps = saga.steps
        agent = steps[0].agent_did if steps else None
        try:
            self._report(
                self._build_saga_moved, ids, agent, old, new, saga.completed_at, saga.error, failed
            )
        finally:
            # Ended: take the hooks off the saga and off its steps that nothing can move any
            # more, even when the report failed. An ended saga makes no further transition,
            # and a hooked saga or step is in a reference cycle with its hook: only the cyclic
            # garbage collector would free it, on the runtime's thread (most of a hooked saga
            # step's slowest rounds in the bench). Unhooked, both are freed by their reference
            # count the moment the orchestrator drops them, as upstream's are. A pending or
            # executing step stays hooked: the orchestrator's execute_step checks only the
            # step's own state, so it can still run or finish one of an ended saga. Any other
            # step of an ended saga moves only if the user calls its transition() by hand,
            # which is then not observed (the guide says so).
            if new in _SAGA_ENDS:
                self._unhook_saga(saga)
                unhook = self._unhook_step
                for step in steps:
                    if step.state not in _STEP_LIVE:
                        unhook(step)

    def _saga_moved(
        self,
        ids: _SagaIds,
        agent: str | None,
        old: SagaState,
        new: SagaState,
        at: datetime | None,
        error: str | None,
        failed: tuple[SagaStep, ...],
    ) -> None:
        """The events of one saga transition, from what the hook copied at the time."""
        saga_id, session = ids
        trace = self._saga_trace(saga_id, session)
        payload_ids = {"saga_id": saga_id}
        if new is SagaState.COMPLETED and old is SagaState.RUNNING:
            self.emit(EventType.SAGA_COMPLETED, session, agent, payload_ids, at, trace=trace)
        elif new is SagaState.COMPLETED:  # compensated: every committed step undone
            payload = {**payload_ids, "outcome": "compensated", "reason": "rolled back"}
            self.emit(EventType.SAGA_FAILED, session, agent, payload, at, trace=trace)
        elif new is SagaState.FAILED:
            payload = {**payload_ids, "reason": error or "failed"}
            self.emit(EventType.SAGA_FAILED, session, agent, payload, at, trace=trace)
        elif new is SagaState.ESCALATED:
            reported = self._reported_failures(saga_id)
            for step in failed:  # steps without an undo API never pass through transition()
                if step.step_id not in reported:
                    self._compensation_failed(ids, step, trace)
            payload = {**payload_ids, "reason": f"{len(failed)} step(s) failed compensation"}
            self.emit(EventType.SAGA_ESCALATED, session, agent, payload, at, trace=trace)
        if new in _SAGA_ENDS:
            with self._lock:
                self._saga_traces.pop(saga_id, None)
                self._reported.pop(saga_id, None)

    def _compensation_failed(self, ids: _SagaIds, step: SagaStep, trace: CausalTraceId) -> None:
        saga_id, session = ids
        self._reported_failures(saga_id).add(step.step_id)
        payload = {
            "saga_id": saga_id,
            "step_id": step.step_id + COMPENSATE_SUFFIX,
            "step_action": step.action_id,
            "compensation": True,
            "error": step.error,
        }
        self.emit(
            EventType.SAGA_STEP_FAILED,
            session,
            step.agent_did,
            payload,
            step.completed_at,
            trace=trace,
        )

    def _observe_step(self, saga: Saga, step: SagaStep) -> None:
        ids: _StepIds = (
            saga.saga_id,
            saga.session_id,
            step.step_id,
            step.action_id,
            step.agent_did,
        )
        self._hook_step(step, self._on_step, ids)

    def _step_changed(self, ids: _StepIds, step: SagaStep, old: StepState, new: StepState) -> None:
        """A step's transition, on the runtime's thread: copy what can still change."""
        if new is StepState.PENDING:
            # FAILED -> PENDING is reset_for_retry(): the next start says retry=True
            return
        timed_out = new in _FAILURES and _timing_out()
        try:
            self._report(
                self._build_step_moved,
                ids,
                new,
                step.retry_count,
                step.started_at,
                step.completed_at,
                step.error,
                timed_out,
            )
        finally:
            if new in _STEP_ENDS:  # compensated or not: no move out of it (see _saga_changed)
                self._unhook_step(step)

    def _step_moved(
        self,
        ids: _StepIds,
        new: StepState,
        retries: int,
        started_at: datetime | None,
        completed_at: datetime | None,
        error: str | None,
        timed_out: bool,
    ) -> None:
        """The event of one step transition, from what the hook copied at the time."""
        saga_id, session, step_id, action, agent = ids
        payload_ids = {"saga_id": saga_id, "step_id": step_id, "step_action": action}
        trace = self._saga_trace(saga_id, session)
        attempt = retries + 1
        compensation = step_id + COMPENSATE_SUFFIX
        if new is StepState.EXECUTING:
            payload: dict[str, Any] = {**payload_ids, "attempt": attempt, "retry": attempt > 1}
            self.emit(EventType.SAGA_STEP_STARTED, session, agent, payload, started_at, trace=trace)
        elif new is StepState.COMMITTED:
            payload = {**payload_ids, "attempt": attempt}
            self.emit(
                EventType.SAGA_STEP_COMMITTED, session, agent, payload, completed_at, trace=trace
            )
        elif new is StepState.FAILED:
            payload = {**payload_ids, "error": error, "attempt": attempt, "timed_out": timed_out}
            self.emit(
                EventType.SAGA_STEP_FAILED, session, agent, payload, completed_at, trace=trace
            )
        elif new is StepState.COMPENSATING:
            payload = {**payload_ids, "step_id": compensation, "compensation": True}
            self.emit(EventType.SAGA_STEP_STARTED, session, agent, payload, None, trace=trace)
        elif new is StepState.COMPENSATED:
            payload = {**payload_ids, "step_id": compensation, "reason": "compensated"}
            self.emit(
                EventType.SAGA_COMPENSATING, session, agent, payload, completed_at, trace=trace
            )
        elif new is StepState.COMPENSATION_FAILED:
            payload = {
                **payload_ids,
                "step_id": compensation,
                "compensation": True,
                "error": error,
                "timed_out": timed_out,
            }
            self._reported_failures(saga_id).add(step_id)
            self.emit(
                EventType.SAGA_STEP_FAILED, session, agent, payload, completed_at, trace=trace
            )

    def observe_fan_out(self, fan_out: FanOutOrchestrator) -> None:
        def before(args: Any, kwargs: Any) -> None:
            group = fan_out.get_group(argument(args, kwargs, 0, "group_id"))
            if group is not None:
                payload = {
                    "saga_id": group.saga_id,
                    "group_id": group.group_id,
                    "branches": len(group.branches),
                }
                self._report(self.emit, EventType.SAGA_FANOUT_STARTED, None, None, payload)

        def after(group: Any, args: Any, kwargs: Any, _: Any) -> None:
            payload = {
                "saga_id": group.saga_id,
                "group_id": group.group_id,
                "policy_satisfied": group.policy_satisfied,
                "succeeded": group.success_count,
                "failed": group.failure_count,
            }
            self._report(self.emit, EventType.SAGA_FANOUT_RESOLVED, None, None, payload)

        self.hooks.wrap_async(fan_out, "execute", before=before, after=after)

    # -- security -----------------------------------------------------------------

    def observe_kill_switch(self, switch: KillSwitch) -> None:
        self.hooks.wrap(switch, "kill", after=self._handover(self._killed))

    def _killed(self, result: KillResult, args: Any, kwargs: Any, _: Any) -> None:
        payload = {
            "kill_id": result.kill_id,
            "reason": _value(result.reason),
            "terminated": result.terminated,
            "handoffs": len(result.handoffs),
            "handed_off": result.handoff_success_count,
            "compensation_triggered": result.compensation_triggered,
            "details": result.details,
        }
        kill = self.emit(
            EventType.AGENT_KILLED,
            result.session_id,
            result.agent_did,
            payload,
            timestamp=result.timestamp,
        )
        for handoff in result.handoffs:
            self.emit(
                EventType.SAGA_HANDOFF,
                result.session_id,
                handoff.from_agent,
                {
                    "saga_id": handoff.saga_id,
                    "step_id": handoff.step_id,
                    "to_agent": handoff.to_agent,
                    "status": _value(handoff.status),
                },
                timestamp=result.timestamp,
                parent=kill.event_id,
            )

    # -- liability ----------------------------------------------------------------

    def observe_vouching(self, engine: VouchingEngine) -> None:
        if not self._first_time(engine):
            return
        handover = self._handover
        self.hooks.wrap(engine, "vouch", after=handover(self._vouched))
        self.hooks.wrap(engine, "release_bond", after=handover(self._bond_released))
        self.hooks.wrap(
            engine, "release_session_bonds", after=handover(self._session_bonds_released)
        )

    def _vouched(self, record: Any, args: Any, kwargs: Any, _: Any) -> None:
        with self._lock:
            self._vouches.put(
                record.vouch_id, (record.voucher_did, record.vouchee_did, record.session_id)
            )
        payload = {
            "vouch_id": record.vouch_id,
            "vouchee_did": record.vouchee_did,
            "bonded_amount": record.bonded_amount,
        }
        self.emit(
            EventType.VOUCH_CREATED,
            record.session_id,
            record.voucher_did,
            payload,
            timestamp=record.created_at,
        )

    def _bond_released(self, result: Any, args: Any, kwargs: Any, _: Any) -> None:
        vouch_id = argument(args, kwargs, 0, "vouch_id")
        with self._lock:
            known = self._vouches.pop(vouch_id, None)
        voucher, vouchee, session = known if known is not None else (None, None, None)
        self.emit(
            EventType.VOUCH_RELEASED,
            session,
            voucher,
            {"vouch_id": vouch_id, "vouchee_did": vouchee},
        )

    def _session_bonds_released(self, count: int, args: Any, kwargs: Any, _: Any) -> None:
        session = argument(args, kwargs, 0, "session_id")
        with self._lock:
            released = [(k, v) for k, v in self._vouches.items() if v[2] == session]
            for vouch_id, _known in released:
                del self._vouches[vouch_id]
        for vouch_id, (voucher, vouchee, _s) in released:
            self.emit(
                EventType.VOUCH_RELEASED,
                session,
                voucher,
                {"vouch_id": vouch_id, "vouchee_did": vouchee},
            )

    def observe_slashing(self, engine: SlashingEngine) -> None:
        if not self._first_time(engine):
            return

        def after(result: Any, args: Any, kwargs: Any, _: Any) -> None:
            payload = {
                "slash_id": result.slash_id,
                "reason": result.reason,
                "sigma_before": result.vouchee_sigma_before,
                "sigma_after": result.vouchee_sigma_after,
            }
            self.emit(
                EventType.SLASH_EXECUTED,
                result.session_id,
                result.vouchee_did,
                payload,
                timestamp=result.timestamp,
            )

        self.hooks.wrap(engine, "slash", after=self._handover(after))

    def observe_quarantine(self, manager: QuarantineManager) -> None:
        def entered(record: Any, args: Any, kwargs: Any, _: Any) -> None:
            payload = {
                "quarantine_id": record.quarantine_id,
                "reason": _value(record.reason),
                "details": record.details,
                "enforced": record.is_active,  # copied now: a release changes it
            }
            self._report(
                self.emit,
                EventType.QUARANTINE_ENTERED,
                record.session_id,
                record.agent_did,
                payload,
                record.entered_at,
            )

        def left(record: Any, expired: bool) -> None:
            payload = {
                "quarantine_id": record.quarantine_id,
                "reason": _value(record.reason),
                "expired": expired,
            }
            self._report(
                self.emit,
                EventType.QUARANTINE_RELEASED,
                record.session_id,
                record.agent_did,
                payload,
            )

        def released(record: Any, args: Any, kwargs: Any, _: Any) -> None:
            if record is not None:
                left(record, False)

        def ticked(records: list[Any], args: Any, kwargs: Any, _: Any) -> None:
            for record in records:
                left(record, True)

        self.hooks.wrap(manager, "quarantine", after=entered)
        self.hooks.wrap(manager, "release", after=released)
        self.hooks.wrap(manager, "tick", after=ticked)

    # -- audit --------------------------------------------------------------------

    def observe_gc(self, gc: EphemeralGC) -> None:
        if not self._first_time(gc):
            return

        def after(result: Any, args: Any, kwargs: Any, _: Any) -> None:
            payload = {
                "purged_vfs_files": result.purged_vfs_files,
                "retained_deltas": result.retained_deltas,
                "storage_saved_bytes": result.storage_saved_bytes,
            }
            self.emit(
                EventType.AUDIT_GC_COLLECTED,
                result.session_id,
                None,
                payload,
                timestamp=result.gc_at,
            )

        self.hooks.wrap(gc, "collect", after=self._handover(after))

    def observe_commitment(self, engine: CommitmentEngine) -> None:
        if not self._first_time(engine):
            return

        def after(record: Any, args: Any, kwargs: Any, _: Any) -> None:
            payload = {"hash_chain_root": record.hash_chain_root, "delta_count": record.delta_count}
            self.emit(EventType.AUDIT_COMMITTED, record.session_id, None, payload)

        self.hooks.wrap(engine, "commit", after=self._handover(after))


def _timing_out() -> bool:
    """Whether the step is being failed from inside an ``except TimeoutError`` block.

    The orchestrator transitions a step to FAILED (or COMPENSATION_FAILED)
    while handling the ``asyncio.wait_for`` timeout, so the exception being
    handled says why, without parsing upstream's error text.
    """
    return isinstance(sys.exc_info()[1], TimeoutError)


__all__ = ["COMPENSATE_SUFFIX", "MAX_TRACKED", "RuntimeObserver"]
