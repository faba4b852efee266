"""meshwatch.integrations.agent_hypervisor against the real, installed agent-hypervisor."""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from hypervisor import (
    ExecutionRing,
    Hypervisor,
    KillSwitch,
    QuarantineManager,
    QuarantineReason,
    RingBreachDetector,
    RingElevationManager,
    SessionConfig,
)
from hypervisor.observability.event_bus import EventType as UpstreamType
from hypervisor.observability.event_bus import HypervisorEvent as UpstreamEvent
from hypervisor.observability.event_bus import HypervisorEventBus as UpstreamBus
from hypervisor.rings.elevation import RingElevationError
from hypervisor.saga.orchestrator import SagaOrchestrator
from hypervisor.saga.state_machine import Saga, SagaState, SagaStateError, SagaStep, StepState
from hypervisor.security.kill_switch import KillReason

from meshwatch.instrumentation.bus import HypervisorEventBus
from meshwatch.instrumentation.catalogue import (
    RING_BREACHES,
    RING_ELEVATED,
    RING_ELEVATIONS_DENIED,
    RING_TRANSITIONS,
    SAGA_STEPS,
    SAGAS,
)
from meshwatch.instrumentation.context import use_trace
from meshwatch.instrumentation.drops import event_drops
from meshwatch.instrumentation.events import EventType, HypervisorEvent
from meshwatch.instrumentation.ring_metrics import RingMetricsCollector
from meshwatch.instrumentation.saga_metrics import SagaMetricsCollector
from meshwatch.instrumentation.saga_spans import SagaSpanExporter
from meshwatch.instrumentation.trace import CausalTraceId
from meshwatch.integrations.agent_hypervisor import (
    BACKGROUND,
    SYNC,
    AlreadyInstrumentedError,
    IncompatibleRuntimeError,
    instrument,
    mirror,
)
from meshwatch.integrations.agent_hypervisor.hook_points import (
    HOOK_POINTS,
    check_hook_points,
    hook_point_problems,
    installed_version,
    is_tested_version,
)
from meshwatch.integrations.agent_hypervisor.hooks import Hooks
from meshwatch.integrations.agent_hypervisor.runtime import COMPENSATE_SUFFIX

AGENT = "did:mesh:analyst"
ROGUE = "did:mesh:rogue"
ADMIN = "did:mesh:admin"


@pytest.fixture
def bus() -> HypervisorEventBus:
    return HypervisorEventBus()


@pytest.fixture(params=[BACKGROUND, SYNC])
def delivery(request: pytest.FixtureRequest) -> str:
    """Each behaviour holds in both delivery modes (the handle's close() drains the queue)."""
    return str(request.param)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def types(bus: HypervisorEventBus) -> list[EventType]:
    return [e.event_type for e in bus.all_events]


async def _session(hv: Hypervisor, *agents: tuple[str, float]) -> str:
    managed = await hv.create_session(SessionConfig(), creator_did=ADMIN)
    sid = managed.sso.session_id
    for did, sigma in agents:
        await hv.join_session(sid, did, sigma_raw=sigma)
    await hv.activate_session(sid)
    return sid


# --- the hook points -------------------------------------------------------------------------


def test_the_installed_release_is_tested_and_has_every_hook_point() -> None:
    release = installed_version()
    assert release is not None and is_tested_version(release), release
    assert hook_point_problems() == []
    check_hook_points()


def test_a_moved_hook_point_fails_loudly_and_hooks_nothing(
    monkeypatch: pytest.MonkeyPatch, bus: HypervisorEventBus
) -> None:
    """What an upstream release that renames a parameter or drops a method looks like."""

    def record_call(self: Any, agent: str, session: str, ring: Any, called: Any) -> None: ...

    monkeypatch.setattr(RingBreachDetector, "record_call", record_call)
    monkeypatch.delattr(KillSwitch, "kill")
    problems = hook_point_problems()
    assert any("RingBreachDetector.record_call: parameters are" in p for p in problems), problems
    assert any("KillSwitch.kill: no such method" in p for p in problems), problems
    manager = RingElevationManager()
    with pytest.raises(IncompatibleRuntimeError, match="record_call"):
        instrument(manager, bus=bus)
    assert "request_elevation" not in vars(manager)


def test_every_hook_point_names_a_real_method() -> None:
    for point in HOOK_POINTS:
        module = __import__(point.module, fromlist=[point.cls])
        method = getattr(getattr(module, point.cls), point.method)
        assert inspect.iscoroutinefunction(method) == point.coroutine, point


# --- sessions and rings --------------------------------------------------------------------


def test_sessions_created_before_and_after_instrumenting_are_observed(
    bus: HypervisorEventBus, delivery: str
) -> None:
    hv = Hypervisor()
    earlier = run(hv.create_session(SessionConfig(), creator_did=ADMIN)).sso.session_id
    with instrument(hv, bus=bus, delivery=delivery):

        async def scenario() -> str:
            await hv.join_session(earlier, AGENT, sigma_raw=0.8)
            later = await _session(hv, (AGENT, 0.7), (ROGUE, 0.1))
            await hv.terminate_session(later)
            return later

        later = run(scenario())
    joined_early = bus.query(event_type=EventType.SESSION_JOINED, session_id=earlier)
    assert [e.payload["ring"] for e in joined_early] == [2]
    assert [e.event_type for e in bus.query(session_id=later)] == [
        EventType.SESSION_CREATED,
        EventType.SESSION_JOINED,
        EventType.RING_ASSIGNED,
        EventType.SESSION_JOINED,
        EventType.RING_ASSIGNED,
        EventType.SESSION_ACTIVATED,
        EventType.SESSION_TERMINATED,
        EventType.AUDIT_GC_COLLECTED,
        EventType.SESSION_ARCHIVED,
    ]
    rings = {
        e.agent_did: e.payload["ring"]
        for e in bus.query(event_type=EventType.RING_ASSIGNED, session_id=later)
    }
    assert rings == {AGENT: 2, ROGUE: 3}, "the ring the enforcer computed from the score"
    traces = {e.causal_trace_id for e in bus.query(session_id=later)}
    assert len(traces) == 1 and None not in traces, "one causal trace per session"


def test_elevations_granted_denied_revoked_and_expired_by_tick(
    bus: HypervisorEventBus, delivery: str
) -> None:
    hv = Hypervisor()
    manager = RingElevationManager()
    collector = RingMetricsCollector(bus)
    with instrument(hv, manager, bus=bus, delivery=delivery) as handle:
        sid = run(_session(hv, (AGENT, 0.8)))
        granted = manager.request_elevation(
            AGENT,
            sid,
            ExecutionRing.RING_2_STANDARD,
            ExecutionRing.RING_1_PRIVILEGED,
            ttl_seconds=60,
            attestation="sre-ticket-7",
            trust_score=0.9,
        )
        with pytest.raises(RingElevationError) as denied:
            manager.request_elevation(
                ROGUE,
                sid,
                ExecutionRing.RING_3_SANDBOX,
                ExecutionRing.RING_2_STANDARD,
                trust_score=0.1,
            )
        assert denied.value.denial_reason == "insufficient_trust", "upstream's exception, unchanged"
        assert handle.flush()
        assert collector.collect()[RING_ELEVATED.name] == {AGENT: 1}
        manager.revoke_elevation(granted.elevation_id)
        manager.revoke_elevation(granted.elevation_id)  # already revoked: no second event
        short = manager.request_elevation(
            AGENT,
            sid,
            ExecutionRing.RING_2_STANDARD,
            ExecutionRing.RING_1_PRIVILEGED,
            ttl_seconds=1,
            attestation="sre-ticket-8",
            trust_score=0.9,
        )
        short.expires_at = short.granted_at  # what a second's wait would do, without the wait
        assert manager.tick() == [short]
    ring_events = [e for e in bus.all_events if e.event_type.category.value == "ring"]
    assert [e.event_type for e in ring_events] == [
        EventType.RING_ASSIGNED,
        EventType.RING_ELEVATED,
        EventType.RING_ELEVATION_DENIED,
        EventType.RING_DEMOTED,
        EventType.RING_ELEVATED,
        EventType.RING_ELEVATION_EXPIRED,
    ]
    expired = ring_events[-1]
    assert expired.timestamp == short.expires_at, "an expiry is dated when it happened"
    assert expired.payload["to_ring"] == 2
    snapshot = collector.collect()
    assert snapshot[RING_ELEVATIONS_DENIED.name] == {(ROGUE, "insufficient_trust"): 1}
    assert snapshot[RING_ELEVATED.name] == {AGENT: 0}
    assert snapshot[RING_TRANSITIONS.name][("ring.elevation_expired", AGENT, sid)] == 1


def test_breaches_carry_their_severity_and_the_breaker_trips_and_resets_once(
    bus: HypervisorEventBus, delivery: str
) -> None:
    detector = RingBreachDetector(window_seconds=60, baseline_rate=0.5)
    collector = RingMetricsCollector(bus)
    with instrument(detector, bus=bus, delivery=delivery):
        quiet = detector.record_call(
            AGENT, "s1", ExecutionRing.RING_2_STANDARD, ExecutionRing.RING_2_STANDARD
        )
        assert quiet is None
        results = [
            detector.record_call(
                ROGUE, "s1", ExecutionRing.RING_3_SANDBOX, ExecutionRing.RING_1_PRIVILEGED
            )
            for _ in range(4)
        ]
        detector.reset_breaker(ROGUE, "s1")
        detector.reset_breaker(ROGUE, "s1")  # not tripped any more: nothing to report
    breaches = bus.query(event_type=EventType.RING_BREACH_DETECTED)
    assert [e.payload["severity"] for e in breaches] == [r.severity.value for r in results if r]
    assert breaches[-1].payload["called_ring"] == 1
    (trip,) = bus.query(event_type=EventType.RING_BREAKER_TRIPPED)
    assert trip.parent_event_id in {e.event_id for e in breaches}
    assert len(bus.query(event_type=EventType.RING_BREAKER_RESET)) == 1
    assert collector.collect()[RING_BREACHES.name] == {(ROGUE, "s1"): len(breaches)}


# --- sagas ---------------------------------------------------------------------------------


def test_a_saga_with_a_retried_timeout_is_compensated_and_counted(
    bus: HypervisorEventBus, delivery: str
) -> None:
    hv = Hypervisor()
    metrics = SagaMetricsCollector(bus)
    spans = SagaSpanExporter(bus)

    async def ok() -> str:
        return "ok"

    async def hangs() -> None:
        await asyncio.sleep(30)

    async def undo(step: SagaStep) -> str:
        return "undone"

    async def scenario() -> tuple[str, str, str]:
        sid = await _session(hv, (AGENT, 0.8))
        orchestrator = hv.get_session(sid).saga  # type: ignore[union-attr]
        orchestrator.DEFAULT_RETRY_DELAY_SECONDS = 0.0
        saga = orchestrator.create_saga(sid)
        reserve = orchestrator.add_step(
            saga.saga_id, "reserve", AGENT, "/reserve", undo_api="/release"
        )
        pay = orchestrator.add_step(
            saga.saga_id, "pay", AGENT, "/pay", timeout_seconds=0, max_retries=1
        )
        pay.timeout_seconds = 0.05  # type: ignore[assignment]
        await orchestrator.execute_step(saga.saga_id, reserve.step_id, ok)
        with pytest.raises(Exception, match="timed out"):
            await orchestrator.execute_step(saga.saga_id, pay.step_id, hangs)
        assert await orchestrator.compensate(saga.saga_id, undo) == []
        assert saga.state is SagaState.COMPLETED
        return saga.saga_id, reserve.step_id, pay.step_id

    with instrument(hv, bus=bus, delivery=delivery):
        saga_id, reserve, pay = run(scenario())
    saga_events = bus.query(event_type=None)
    steps = [
        (e.event_type, e.payload.get("step_id"), e.payload.get("attempt"))
        for e in saga_events
        if e.category.value == "saga"
    ]
    assert steps == [
        (EventType.SAGA_CREATED, None, None),
        (EventType.SAGA_STEP_STARTED, reserve, 1),
        (EventType.SAGA_STEP_COMMITTED, reserve, 1),
        (EventType.SAGA_STEP_STARTED, pay, 1),
        (EventType.SAGA_STEP_FAILED, pay, 1),
        (EventType.SAGA_STEP_STARTED, pay, 2),
        (EventType.SAGA_STEP_FAILED, pay, 2),
        (EventType.SAGA_STEP_STARTED, reserve + COMPENSATE_SUFFIX, None),
        (EventType.SAGA_COMPENSATING, reserve + COMPENSATE_SUFFIX, None),
        (EventType.SAGA_FAILED, None, None),
    ]
    failures = bus.query(event_type=EventType.SAGA_STEP_FAILED)
    assert all(e.payload["timed_out"] for e in failures)
    retried = bus.query(event_type=EventType.SAGA_STEP_STARTED)[2]
    assert retried.payload["retry"] is True
    assert {e.payload["saga_id"] for e in bus.all_events if "saga_id" in e.payload} == {saga_id}
    saga_traces = {e.causal_trace_id for e in bus.all_events if e.category.value == "saga"}
    assert len(saga_traces) == 1, "a saga is one causal trace, a child of its session's"
    trace = CausalTraceId.from_string(saga_traces.pop())  # type: ignore[arg-type]
    session_trace = CausalTraceId.from_string(
        bus.query(event_type=EventType.SESSION_CREATED)[0].causal_trace_id
    )  # type: ignore[arg-type]
    assert session_trace.is_ancestor_of(trace)
    sagas = metrics.metric_families()
    counted = {f.metric.name: f.samples for f in sagas}
    assert counted[SAGAS.name] == {(AGENT, "failed"): 1.0}
    assert counted[SAGA_STEPS.name] == {
        (AGENT, "committed"): 1.0,
        (AGENT, "failed"): 2.0,
        (AGENT, "compensated"): 1.0,
    }
    assert [s.name for s in spans.completed_spans] == [
        "saga.step.reserve",
        "saga.step.pay",
        "saga.step.pay",
        "saga.compensate.reserve",
        f"saga.failed.{saga_id}",
    ]


def test_a_step_without_undo_escalates_with_its_compensation_failure(
    bus: HypervisorEventBus, delivery: str
) -> None:
    hv = Hypervisor()

    async def ok() -> str:
        return "ok"

    async def undo(step: SagaStep) -> None:
        return None

    async def scenario() -> str:
        sid = await _session(hv, (AGENT, 0.8))
        orchestrator = hv.get_session(sid).saga  # type: ignore[union-attr]
        saga = orchestrator.create_saga(sid)
        notify = orchestrator.add_step(saga.saga_id, "notify", AGENT, "/notify")
        await orchestrator.execute_step(saga.saga_id, notify.step_id, ok)
        assert len(await orchestrator.compensate(saga.saga_id, undo)) == 1
        return notify.step_id

    with instrument(hv, bus=bus, delivery=delivery):
        step_id = run(scenario())
    assert types(bus)[-2:] == [EventType.SAGA_STEP_FAILED, EventType.SAGA_ESCALATED]
    failed = bus.query(event_type=EventType.SAGA_STEP_FAILED)[-1]
    assert failed.payload["step_id"] == step_id + COMPENSATE_SUFFIX
    assert failed.payload["error"] == "No Undo_API available"


def test_a_saga_completed_by_its_owner_is_completed(bus: HypervisorEventBus, delivery: str) -> None:
    hv = Hypervisor()
    with instrument(hv, bus=bus, delivery=delivery):
        sid = run(_session(hv, (AGENT, 0.8)))
        orchestrator = hv.get_session(sid).saga  # type: ignore[union-attr]
        saga = orchestrator.create_saga(sid)
        saga.transition(SagaState.COMPLETED)
    assert types(bus)[-1] is EventType.SAGA_COMPLETED


async def _ok() -> str:
    return "ok"


async def _undo(step: SagaStep) -> str:
    return "undone"


ENDINGS: dict[str, list[EventType]] = {
    "completed": [EventType.SAGA_COMPLETED],
    "failed": [EventType.SAGA_FAILED],
    # the committed step's undo, then the saga reported failed (outcome "compensated")
    "compensated": [
        EventType.SAGA_STEP_STARTED,
        EventType.SAGA_COMPENSATING,
        EventType.SAGA_FAILED,
    ],
    # a second step without an undo: upstream sets its state directly, the saga escalates
    "escalated": [
        EventType.SAGA_STEP_STARTED,
        EventType.SAGA_COMPENSATING,
        EventType.SAGA_STEP_FAILED,
        EventType.SAGA_ESCALATED,
    ],
}


async def _end(orchestrator: SagaOrchestrator, saga: Saga, ending: str) -> list[SagaStep]:
    """Run ``saga`` to ``ending`` through upstream's own calls; its steps."""
    steps = [orchestrator.add_step(saga.saga_id, "reserve", AGENT, "/reserve", undo_api="/free")]
    if ending == "escalated":
        steps.append(orchestrator.add_step(saga.saga_id, "notify", AGENT, "/notify"))
    for step in steps:
        await orchestrator.execute_step(saga.saga_id, step.step_id, _ok)
    if ending == "completed":
        saga.transition(SagaState.COMPLETED)
    elif ending == "failed":
        saga.transition(SagaState.FAILED)
    else:
        await orchestrator.compensate(saga.saga_id, _undo)
    return steps


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_an_ended_saga_and_its_steps_are_unhooked_and_freed_by_reference_count(
    bus: HypervisorEventBus, delivery: str, ending: str
) -> None:
    """A hooked object is in a cycle with its hook; at the saga's end the hooks come off."""
    orchestrator = SagaOrchestrator()
    handle = instrument(orchestrator, bus=bus, delivery=delivery)

    def scenario() -> list[weakref.ref[Any]]:
        saga = orchestrator.create_saga("s1")
        steps = run(_end(orchestrator, saga, ending))
        assert saga.state in (SagaState.COMPLETED, SagaState.FAILED, SagaState.ESCALATED)
        for obj in (saga, *steps):
            assert "transition" not in vars(obj), f"{type(obj).__name__} still hooked"
        for obj in (saga, *steps):  # upstream's own bound method again
            method = obj.transition
            assert inspect.ismethod(method) and method.__self__ is obj
            assert method.__func__ is type(obj).transition
        handle.flush()  # an escalation hands its failed steps to the queue as they are
        return [weakref.ref(obj) for obj in (saga, *steps)]

    gc.collect()
    gc.disable()
    try:
        refs = scenario()
        assert all(ref() is not None for ref in refs), "the orchestrator still holds them"
        orchestrator._sagas.clear()
        assert [ref() for ref in refs] == [None] * len(refs), "freed without the collector"
    finally:
        gc.enable()
    handle.close()
    committed = [EventType.SAGA_STEP_STARTED, EventType.SAGA_STEP_COMMITTED] * (
        2 if ending == "escalated" else 1
    )
    assert types(bus) == [EventType.SAGA_CREATED, *committed, *ENDINGS[ending]]
    assert handle.hook_errors == {}


def test_a_step_still_pending_when_its_saga_ends_stays_hooked_and_observed(
    bus: HypervisorEventBus, delivery: str
) -> None:
    """Upstream's execute_step checks only the step's state, so it can still run this one."""
    orchestrator = SagaOrchestrator()
    with instrument(orchestrator, bus=bus, delivery=delivery) as handle:
        saga = orchestrator.create_saga("s1")
        first = orchestrator.add_step(saga.saga_id, "a", AGENT, "/a")
        second = orchestrator.add_step(saga.saga_id, "b", AGENT, "/b")
        run(orchestrator.execute_step(saga.saga_id, first.step_id, _ok))
        saga.transition(SagaState.FAILED)
        assert "transition" not in vars(saga) and "transition" not in vars(first)
        assert "transition" in vars(second), "a pending step stays hooked"
        run(orchestrator.execute_step(saga.saga_id, second.step_id, _ok))
        handle.flush()
        assert types(bus)[-3:] == [
            EventType.SAGA_FAILED,
            EventType.SAGA_STEP_STARTED,
            EventType.SAGA_STEP_COMMITTED,
        ]
        assert bus.all_events[-1].payload["step_id"] == second.step_id
    assert "transition" not in vars(second), "close() removed it"


# --- kill switch and liability ---------------------------------------------------------------


def test_a_kill_reports_the_callback_outcome_and_each_handoff(
    bus: HypervisorEventBus, delivery: str
) -> None:
    switch = KillSwitch(callback_timeout=1.0)
    stopped: list[str] = []
    switch.register_agent(AGENT, lambda: stopped.append(AGENT))
    switch.register_substitute("s1", "did:mesh:backup")

    def broken() -> None:
        raise RuntimeError("process already gone")

    switch.register_agent(ROGUE, broken)
    steps = [{"saga_id": "saga:1", "step_id": "step:1"}, {"saga_id": "saga:1", "step_id": "step:2"}]
    with instrument(switch, bus=bus, delivery=delivery):
        first = switch.kill(AGENT, "s1", KillReason.RING_BREACH, in_flight_steps=steps)
        second = switch.kill(ROGUE, "s2", KillReason.MANUAL, in_flight_steps=steps[:1])
    assert stopped == [AGENT] and first.terminated and not second.terminated
    kills = bus.query(event_type=EventType.AGENT_KILLED)
    assert [(k.agent_did, k.payload["terminated"], k.payload["reason"]) for k in kills] == [
        (AGENT, True, "ring_breach"),
        (ROGUE, False, "manual"),
    ]
    handoffs = bus.query(event_type=EventType.SAGA_HANDOFF)
    assert [(h.parent_event_id, h.payload["status"], h.payload["to_agent"]) for h in handoffs] == [
        (kills[0].event_id, "handed_off", "did:mesh:backup"),
        (kills[0].event_id, "handed_off", "did:mesh:backup"),
        (kills[1].event_id, "compensated", None),
    ]


def test_vouch_slash_and_quarantine(bus: HypervisorEventBus, delivery: str) -> None:
    hv = Hypervisor()
    quarantine = QuarantineManager()
    with instrument(hv, quarantine, bus=bus, delivery=delivery):
        sid = run(_session(hv, (AGENT, 0.8), (ROGUE, 0.7)))
        hv.vouching.vouch(AGENT, ROGUE, sid, voucher_sigma=0.8)
        hv.slashing.slash(ROGUE, sid, 0.7, 0.5, "drift", {ROGUE: 0.7})
        quarantine.quarantine(ROGUE, sid, QuarantineReason.BEHAVIORAL_DRIFT, details="drift 0.8")
        assert (
            quarantine.release(ROGUE, sid) is None
        )  # 3.7.0 enforces no quarantine: nothing to leave
        run(hv.terminate_session(sid))
    liability = [
        (e.event_type, e.agent_did) for e in bus.all_events if e.category.value == "liability"
    ]
    assert liability == [
        (EventType.VOUCH_CREATED, AGENT),
        (EventType.SLASH_EXECUTED, ROGUE),
        (EventType.QUARANTINE_ENTERED, ROGUE),
        (EventType.VOUCH_RELEASED, AGENT),
    ]
    assert (
        bus.query(event_type=EventType.QUARANTINE_ENTERED)[0].payload["reason"]
        == "behavioral_drift"
    )


# --- never interfering -----------------------------------------------------------------------


def test_results_and_exceptions_are_upstreams_and_close_removes_every_hook(
    bus: HypervisorEventBus, delivery: str
) -> None:
    hv = Hypervisor()
    manager = RingElevationManager()
    handle = instrument(hv, manager, bus=bus, delivery=delivery)
    sid = run(_session(hv, (AGENT, 0.8)))
    managed = hv.get_session(sid)
    assert managed is not None
    saga = managed.saga.create_saga(sid)
    step = managed.saga.add_step(saga.saga_id, "a", AGENT, "/a")
    hooked = [
        (hv, "create_session"),
        (manager, "request_elevation"),
        (managed.sso, "join"),
        (saga, "transition"),
        (step, "transition"),
    ]
    assert all(name in vars(obj) for obj, name in hooked)
    with pytest.raises(RingElevationError):
        manager.request_elevation(
            AGENT, sid, ExecutionRing.RING_2_STANDARD, ExecutionRing.RING_0_ROOT
        )
    handle.close()
    assert not any(name in vars(obj) for obj, name in hooked), "every hook removed"
    before = bus.emitted_count
    run(hv.create_session(SessionConfig(), creator_did=ADMIN))
    step.transition(step.state.EXECUTING)
    assert bus.emitted_count == before, "a closed handle emits nothing"
    assert vars(RingElevationManager).get("request_elevation") is not None
    assert "request_elevation" not in vars(RingElevationManager()), "the class was never patched"


def test_an_error_inside_a_hook_is_counted_logged_and_never_raised(
    bus: HypervisorEventBus,
    delivery: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = RingElevationManager()
    handle = instrument(manager, bus=bus, delivery=delivery)

    def broken(*args: Any, **kwargs: Any) -> HypervisorEvent:
        raise ValueError("meshwatch bug")

    monkeypatch.setattr(handle.observer, "emit", broken)
    before = event_drops("agent_hypervisor", "hook_error")
    with caplog.at_level(logging.DEBUG, logger="meshwatch.integrations.agent_hypervisor"):
        for _ in range(3):
            granted = manager.request_elevation(
                AGENT,
                "s1",
                ExecutionRing.RING_3_SANDBOX,
                ExecutionRing.RING_2_STANDARD,
                trust_score=0.9,
            )
            manager.revoke_elevation(granted.elevation_id)
    assert granted.is_active is False, "the runtime did its work"
    assert handle.flush()
    # Where it failed: in the hook (sync), or where the worker built the event (background).
    expected = (
        {"RingElevationManager.request_elevation": 3, "RingElevationManager.revoke_elevation": 3}
        if delivery == SYNC
        else {"deliver:_emit_elevated": 3, "deliver:_emit_revoked": 3}
    )
    assert handle.hook_errors == expected
    assert event_drops("agent_hypervisor", "hook_error") == before + 6
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, "one warning per hook, the repeats at DEBUG"
    handle.close()


def test_objects_are_hooked_once_and_only_runtime_objects_are_accepted(
    bus: HypervisorEventBus,
) -> None:
    manager = RingElevationManager()
    with instrument(manager, bus=bus):
        with pytest.raises(AlreadyInstrumentedError):
            instrument(manager, bus=bus)
        assert "request_elevation" in vars(manager), "the failed second call left the first's hooks"
    with pytest.raises(TypeError, match="cannot hook a str"):
        instrument("hv", bus=bus)
    with pytest.raises(TypeError, match="meshwatch HypervisorEventBus"):
        instrument(manager, bus=UpstreamBus())  # type: ignore[arg-type]
    assert "request_elevation" not in vars(manager)


def test_the_callers_causal_trace_wins(bus: HypervisorEventBus, delivery: str) -> None:
    detector = RingBreachDetector(baseline_rate=0.01)
    trace = CausalTraceId()
    with instrument(detector, bus=bus, delivery=delivery), use_trace(trace):
        detector.record_call(ROGUE, "s1", ExecutionRing.RING_3_SANDBOX, ExecutionRing.RING_0_ROOT)
    assert {e.causal_trace_id for e in bus.all_events} == {trace.full_id}


# --- mirroring upstream's own bus -------------------------------------------------------------


@pytest.fixture
def upstream() -> Iterator[UpstreamBus]:
    yield UpstreamBus()


def test_mirror_translates_every_upstream_event_type(
    upstream: UpstreamBus, bus: HypervisorEventBus
) -> None:
    with mirror(upstream, bus) as handle:
        for event_type in UpstreamType:
            upstream.emit(
                UpstreamEvent(
                    event_type=event_type,
                    session_id="s1",
                    agent_did=AGENT,
                    causal_trace_id="a1b2c3d4e5f6/89abcdef",
                    parent_event_id="feedfacefeedface",
                    payload={"saga_id": "deploy"},
                )
            )
    assert handle.mirrored == len(UpstreamType) and handle.errors == {}
    assert [e.event_type.value for e in bus.all_events] == [t.value for t in UpstreamType]
    for new in ("saga.fanout_resolved", "security.saga_handoff", "audit.gc_collected"):
        (event,) = bus.query(event_type=EventType(new))
        assert event.parent_event_id == "feedfacefeedface"
    upstream.emit(UpstreamEvent(event_type=UpstreamType.RING_ASSIGNED))
    assert bus.emitted_count == len(UpstreamType), "closed: nothing more is mirrored"


def test_mirror_never_breaks_upstreams_emit(upstream: UpstreamBus, bus: HypervisorEventBus) -> None:
    handle = mirror(upstream, bus)
    upstream.emit(UpstreamEvent(event_type=UpstreamType.RING_ASSIGNED, agent_did=123))  # type: ignore[arg-type]
    assert handle.errors == {"mirror": 1}
    assert upstream.event_count == 1
    handle.close()


def test_state_machine_hooks_pass_upstreams_errors_and_count_their_own(
    bus: HypervisorEventBus, delivery: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The saga and step hooks (one wrapper each, state read before and after) behave as wrap()."""
    orchestrator = SagaOrchestrator()
    handle = instrument(orchestrator, bus=bus, delivery=delivery)
    saga = orchestrator.create_saga("s1")
    step = orchestrator.add_step(saga.saga_id, "a", AGENT, "/a")
    assert inspect.signature(step.transition) == inspect.signature(
        SagaStep(step_id="x", action_id="a", agent_did=AGENT, execute_api="/a").transition
    ), "the wrapper shows the original's signature"
    with pytest.raises(SagaStateError, match="Invalid step transition"):
        step.transition(StepState.COMMITTED)  # PENDING -> COMMITTED: upstream refuses
    assert step.state is StepState.PENDING

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ValueError("meshwatch bug")

    monkeypatch.setattr(handle.observer, "_report", broken)
    assert step.transition(StepState.EXECUTING) is None, "upstream's return value"
    assert step.state is StepState.EXECUTING and step.started_at is not None
    saga.transition(SagaState.COMPLETED)
    assert saga.state is SagaState.COMPLETED
    assert handle.hook_errors == {"SagaStep.transition": 1, "Saga.transition": 1}
    handle.close()


def test_state_hooks_share_one_wrapper_per_class_and_come_off_cleanly(
    bus: HypervisorEventBus,
) -> None:
    """Each saga and step gets a bound method of one shared function, never a class patch."""
    orchestrator = SagaOrchestrator()
    class_attributes = (dict(vars(Saga)), dict(vars(SagaStep)))
    handle = instrument(orchestrator, bus=bus, delivery=SYNC)
    saga = orchestrator.create_saga("s1")
    first = orchestrator.add_step(saga.saga_id, "a", AGENT, "/a")
    second = orchestrator.add_step(saga.saga_id, "b", AGENT, "/b")
    hooked = vars(first)["transition"], vars(second)["transition"]
    assert hooked[0].__func__ is hooked[1].__func__, "one wrapper function for every step"
    assert vars(saga)["transition"].__func__ is not hooked[0].__func__, "one per class"
    assert inspect.unwrap(first.transition) is SagaStep.transition
    other = Hooks()
    with pytest.raises(AlreadyInstrumentedError):
        other.wrap_state(first, "transition", lambda *args: None, None)
    first.transition(StepState.EXECUTING)
    assert [e.event_type for e in bus.all_events][-1] is EventType.SAGA_STEP_STARTED
    handle.close()
    for obj in (saga, first, second):
        assert "transition" not in vars(obj), "close() restores the class's method"
    assert (dict(vars(Saga)), dict(vars(SagaStep))) == class_attributes, "no class was patched"
    emitted = bus.emitted_count
    second.transition(StepState.EXECUTING)
    assert bus.emitted_count == emitted
