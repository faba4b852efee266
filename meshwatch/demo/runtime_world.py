"""The demo fleet on the real agent-hypervisor runtime (``meshwatch demo --runtime agent-hypervisor``).

The simulated fleet (:mod:`meshwatch.demo.agents`) describes what its agents
do through :class:`~meshwatch.demo.world.World`'s verbs. :class:`RuntimeWorld`
keeps that fleet and those scenarios, and carries out the verbs that the
runtime owns on the real runtime, so their events come from
:func:`meshwatch.integrations.agent_hypervisor.instrument`'s hooks and not
from the demo:

* every agent process has a real ``Hypervisor`` session; the ring it gets is
  the one the ring enforcer computes from its trust score (so the tool agents
  and the orchestrator are at ring 2, the legacy crawler at ring 3);
* elevations are ``RingElevationManager`` grants with real TTLs. A ticker
  calls ``tick()`` every second, so an elevation held past its TTL really
  expires, and ``researcher-2`` (trust 0.82, under the 0.85 that ring 1
  needs) is really refused;
* privileged tool calls go through ``RingEnforcer.check`` and
  ``RingBreachDetector.record_call``: a breach is what the detector calls a
  breach (a stray call in the steady scenario is not one; the incident's
  rogue agent at 5 calls a second is critical). When the rogue agent's breaker
  trips, the security responder kills it with the ``KillSwitch`` (its process
  is restarted, and still misbehaves) and later resets the breaker;
* sagas run on the session's ``SagaOrchestrator`` in an asyncio loop of their
  own, with real step timeouts, a retry, and real compensation. A step in
  doubt hangs past its timeout on both attempts, and so does the undo of the
  step before it, so the saga escalates.

What stays simulated: the agents' work, messages and GenAI spans, the
governance policy backend's latency (the ring check itself is real), and trust
drift. The real runtime cannot backdate an elevation, so the incident's stuck
elevation starts when the incident does and ``ElevationTooLong`` waits for its
threshold in real time.

The runtime objects are :class:`AgentHypervisorRuntime`'s attributes; the
demo runner exposes it (``RuntimeDemo.runtime``), so a remediation hook can
kill, revoke or quarantine on the live runtime.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import math
import random
import threading
from collections.abc import Awaitable, Coroutine
from datetime import datetime
from typing import Any, Final, TypeVar

from hypervisor import (
    ExecutionRing,
    Hypervisor,
    KillSwitch,
    QuarantineManager,
    RingBreachDetector,
    RingElevationManager,
    SessionConfig,
)
from hypervisor.models import ActionDescriptor, ReversibilityLevel
from hypervisor.rings.elevation import RingElevation, RingElevationError
from hypervisor.saga.state_machine import SagaState, SagaStep
from hypervisor.security.kill_switch import KillReason

from meshwatch.demo.agents import Step, Steps
from meshwatch.demo.scenario import Scenario
from meshwatch.demo.sim import Process
from meshwatch.demo.world import (
    BLOCKED,
    FLEET,
    LEGACY,
    PUBLISHER,
    AgentSpec,
    Instruments,
    World,
    log,
)
from meshwatch.instrumentation.catalogue import RING_BREACHES, SPANS_DROPPED, MetricDef
from meshwatch.instrumentation.context import current_trace, use_trace
from meshwatch.instrumentation.events import EventType
from meshwatch.instrumentation.trace import CausalTraceId
from meshwatch.integrations.agent_hypervisor import Instrumentation, instrument

T = TypeVar("T")

RUNTIME: Final = "agent-hypervisor"
CALL_TIMEOUT: Final = 5.0
TICK_INTERVAL: Final = 1.0
POLL: Final = 0.25
# The breach detector: a 10 s window and half a call a second as the baseline,
# so one stray call is no anomaly and the rogue agent's 5/s is critical.
BREACH_WINDOW: Final = 10
BREACH_BASELINE: Final = 0.5
# Short elevations are granted for this long; a hold longer than it expires for real.
SHORT_TTL: Final = 30
# The publisher's release window: longer than its steady hold (240 s), so it is revoked.
RELEASE_TTL: Final = 300
EMERGENCY_TTL: Final = RingElevationManager.MAX_ELEVATION_TTL
STEP_TIMEOUT: Final = 3
STEP_RETRIES: Final = 1
HANG: Final = 3600.0
BREAKER_COOLDOWN: Final = 15.0
# The publisher is the fleet's trusted release agent: ring 1 needs trust 0.85.
RELEASE_AGENT_TRUST: Final = 900.0
# Catalogue metrics the fleet on the real runtime does not produce, and why.
# Incident: everything else is served within 60 s (tests/integration/test_demo_runtime.py).
CANNOT_PRODUCE: Final[dict[MetricDef, str]] = {
    SPANS_DROPPED: (
        "the span exporter's own losses: a real orchestrator ends every step it starts, so no "
        "span is left open to drop, and spans are only lost on export with a dead --otlp-endpoint"
    ),
}
# Only the incident produces these on the real runtime.
INCIDENT_ONLY: Final[dict[MetricDef, str]] = {
    RING_BREACHES: (
        "the breach detector judges rates, not single calls: the steady fleet's stray privileged "
        "calls are refused by the ring check but are no anomaly, so only the incident's rogue "
        "agent is a breach"
    ),
}
PRIVILEGED = ActionDescriptor(
    action_id="privileged_tool",
    name="privileged tool",
    execute_api="/tools/privileged",
    reversibility=ReversibilityLevel.NONE,
)


class AgentHypervisorRuntime:
    """The runtime objects the demo drives, instrumented onto ``bus``, and their asyncio loop."""

    def __init__(self, bus: Any) -> None:
        self.hypervisor = Hypervisor()
        self.elevations = RingElevationManager()
        self.breach_detector = RingBreachDetector(
            window_seconds=BREACH_WINDOW, baseline_rate=BREACH_BASELINE
        )
        self.kill_switch = KillSwitch(callback_timeout=1.0)
        self.quarantine = QuarantineManager()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="meshwatch-demo-runtime", daemon=True
        )
        self._thread.start()
        self.instrumentation: Instrumentation = instrument(
            self.hypervisor,
            self.elevations,
            self.breach_detector,
            self.kill_switch,
            self.quarantine,
            bus=bus,
        )

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the runtime's loop under the caller's causal trace."""
        return asyncio.run_coroutine_threadsafe(_traced(coro, current_trace()), self._loop)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the runtime's loop and wait (briefly) for its result."""
        return self.submit(coro).result(CALL_TIMEOUT)

    def close(self) -> None:
        """Remove the hooks, cancel what still runs on the loop, and stop it."""
        self.instrumentation.close()

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(cancel_all(), self._loop).result(CALL_TIMEOUT)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CALL_TIMEOUT)
        if not self._thread.is_alive():
            self._loop.close()


def _process_stopped() -> None:
    """A killed agent's termination callback (see :meth:`RuntimeWorld.join`)."""


async def _traced(coro: Awaitable[T], trace: CausalTraceId | None) -> T:
    if trace is None:
        return await coro
    with use_trace(trace):
        return await coro


class RuntimeWorld(World):
    """The fleet's world, with sessions, rings, breaches, kills and sagas on the real runtime."""

    def __init__(
        self, scenario: Scenario, instruments: Instruments, runtime: AgentHypervisorRuntime
    ) -> None:
        super().__init__(scenario, instruments)
        self.runtime = runtime
        self._baseline[PUBLISHER.did] = self._trust[PUBLISHER.did] = RELEASE_AGENT_TRUST
        self._grants: dict[str, RingElevation] = {}
        self._rings: dict[str, int] = {}
        self._tripped_at: dict[str, float] = {}
        self.saga_runner = self._run_saga
        self.sim.spawn(self._ticker())

    # -- sessions ---------------------------------------------------------------------

    def join(self, agent: AgentSpec) -> None:
        """A real session: created, joined with the agent's trust as its score, activated."""
        hv = self.runtime.hypervisor
        managed = self.runtime.call(hv.create_session(SessionConfig(), creator_did=agent.did))
        sid = managed.sso.session_id
        sigma = self._trust[agent.did] / 1000.0
        ring = self.runtime.call(hv.join_session(sid, agent.did, sigma_raw=sigma))
        self.runtime.call(hv.activate_session(sid))
        self.sessions[agent.did] = sid
        self._rings[agent.did] = int(ring)
        self.emit(EventType.IDENTITY_VERIFIED, agent, {"method": "did-auth"})
        # The termination callback: the simulated process stops on its own once
        # kill() has marked it (World.was_killed), so there is nothing left to do.
        self.runtime.kill_switch.register_agent(agent.did, _process_stopped)

    def leave(self, agent: AgentSpec) -> None:
        sid = self.sessions.pop(agent.did, None)
        if sid is not None:
            self.runtime.call(self.runtime.hypervisor.terminate_session(sid))
        self.runtime.kill_switch.unregister_agent(agent.did)

    def ring_of(self, agent: AgentSpec) -> int:
        """The ring the enforcer assigned ``agent`` (its spec's ring before it joined)."""
        return self._rings.get(agent.did, agent.ring)

    # -- rings ------------------------------------------------------------------------

    def elevate(self, agent: AgentSpec, reason: str, *, started: datetime | None = None) -> None:
        """Request one ring up, attested by ``reason``; the runtime grants or refuses it.

        ``started`` (the simulated incident's backdating) cannot apply: a real
        grant starts when it is granted. The incident's grant gets the longest
        TTL instead, the publisher's release window its own, the rest
        :data:`SHORT_TTL`.
        """
        sid = self.sessions.get(agent.did)
        ring = self.ring_of(agent)
        if sid is None or ring <= ExecutionRing.RING_1_PRIVILEGED.value:
            return
        if started is not None:
            ttl = EMERGENCY_TTL
        elif agent is PUBLISHER:
            ttl = RELEASE_TTL
        else:
            ttl = SHORT_TTL
        try:
            grant = self.runtime.elevations.request_elevation(
                agent.did,
                sid,
                ExecutionRing(ring),
                ExecutionRing(ring - 1),
                ttl_seconds=ttl,
                attestation=reason,
                reason=reason,
                trust_score=self._trust[agent.did] / 1000.0,
            )
        except RingElevationError as refused:
            log.info("elevation of %s refused: %s", agent.did, refused.denial_reason)
            return
        self._grants[agent.did] = grant
        self.elevated.add(agent.did)

    def demote(self, agent: AgentSpec, reason: str, *, expired: bool = False) -> None:
        """Revoke the agent's grant if it is still active; an expired one was found by tick()."""
        self.elevated.discard(agent.did)
        grant = self._grants.pop(agent.did, None)
        if grant is not None and grant.is_active and not grant.is_expired:
            self.runtime.elevations.revoke_elevation(grant.elevation_id)

    def deny_elevation(self, agent: AgentSpec, reason: str) -> None:
        """A tool agent asks for ring 1 without an attestation; its trust is too low for it."""
        sid = self.sessions.get(agent.did)
        ring = self.ring_of(agent)
        if sid is None or ring <= ExecutionRing.RING_1_PRIVILEGED.value:
            return
        try:
            grant = self.runtime.elevations.request_elevation(
                agent.did,
                sid,
                ExecutionRing(ring),
                ExecutionRing.RING_1_PRIVILEGED,
                ttl_seconds=SHORT_TTL,
                trust_score=self._trust[agent.did] / 1000.0,
            )
        except RingElevationError:
            return  # the expected refusal, emitted by the integration
        self.runtime.elevations.revoke_elevation(grant.elevation_id)

    def _ticker(self) -> Process:
        """Expire elevations (and quarantines) as upstream intends: tick() every second."""
        while True:
            yield TICK_INTERVAL
            for grant in self.runtime.elevations.tick():
                if self._grants.get(grant.agent_did) is grant:
                    del self._grants[grant.agent_did]
                    self.elevated.discard(grant.agent_did)
            self.runtime.quarantine.tick()
            self._reset_cooled_breakers()

    # -- breaches and the kill switch -------------------------------------------------------

    def breach(self, rng: random.Random, agent: AgentSpec, tool: str) -> None:
        """``agent`` calls a privileged tool: the ring check refuses, the detector judges.

        When the call trips the agent's breaker, the security responder resets
        it after :data:`BREAKER_COOLDOWN` seconds (the ticker does). Killing is
        left to remediation (:meth:`kill`), as an alert decides it.
        """
        sid = self.sessions.get(agent.did)
        if sid is None:
            return
        ring = ExecutionRing(self.ring_of(agent))
        grant = self._grants.get(agent.did)
        effective = grant.elevated_ring if grant is not None and grant.is_active else ring
        check = self.runtime.hypervisor.ring_enforcer.check(
            effective, PRIVILEGED, self._trust[agent.did] / 1000.0
        )
        if check.allowed:
            self.decide(rng, agent, tool)
            return
        detector = self.runtime.breach_detector
        found = detector.record_call(agent.did, sid, effective, check.required_ring)
        self.decide(rng, agent, tool, outcome=BLOCKED)
        self.inst.governance.record_audit_event("ring_breach" if found else "ring_denied")
        self.adjust_trust(agent, -3.0)
        if found is not None and detector.is_breaker_tripped(agent.did, sid):
            self._tripped_at.setdefault(agent.did, self.sim.now)

    def kill(self, did: str, reason: str) -> bool:
        """Kill agent ``did`` with the real ``KillSwitch`` (remediation's ``kill_agent``).

        The kill switch runs the agent's termination callback and records the
        kill (the integration emits it, with its handoffs); the session is then
        terminated on the runtime. As in :meth:`World.kill`, what the agent was
        doing wrong stops and the fleet restarts it in a new session.
        """
        agent = next((a for a in (*FLEET, LEGACY) if a.did == did), None)
        with self._kill_lock:
            if agent is None or agent.did in self._killed:
                return False
            # Claim the session: a killed agent has none until it restarts. Leaving it
            # in place let a second kill, between restart()'s un-marking and its new
            # join, terminate the archived session again (upstream refuses that).
            sid = self.sessions.pop(agent.did, None)
            if sid is None:
                return False
            self._killed.add(agent.did)
        kind = KillReason.RING_BREACH if "breach" in reason.lower() else KillReason.MANUAL
        result = self.runtime.kill_switch.kill(did, sid, kind, details=reason)
        self.runtime.call(self.runtime.hypervisor.terminate_session(sid))
        log.warning("killed %s with the kill switch (terminated: %s)", did, result.terminated)
        return True

    def _reset_cooled_breakers(self) -> None:
        now = self.sim.now
        for did, since in list(self._tripped_at.items()):
            sid = self.sessions.get(did)
            if now - since >= BREAKER_COOLDOWN:
                del self._tripped_at[did]
                if sid is not None:
                    self.runtime.breach_detector.reset_breaker(did, sid)

    # -- sagas ------------------------------------------------------------------------

    def _run_saga(
        self, world: World, rng: random.Random, me: AgentSpec, saga_id: str, steps: Steps
    ) -> Step:
        """``steps`` as a real saga on ``me``'s session orchestrator; returns its outcome.

        The plan (which step fails, which one hangs) is drawn here with the
        scenario's odds, as the simulated saga draws it; everything after that
        is the orchestrator's: timeouts, the retry, compensation, escalation.
        """
        odds = self.scenario.odds
        plan: list[tuple[str, str, str | None, str, float]] = []
        for index, (_step_id, action, compensation) in enumerate(steps):
            kind = "ok"
            if index > 0 and self.dice.chance(rng, "step_in_doubt", odds.step_in_doubt):
                kind = "doubt"
            elif index > 0 and self.dice.chance(rng, "step_failure", odds.step_failure):
                kind = "fail"
            duration = min(STEP_TIMEOUT * 0.8, rng.lognormvariate(math.log(0.8), 0.6))
            plan.append((saga_id, action, compensation, kind, duration))
            if kind != "ok":
                break
        sid = self.sessions.get(me.did)
        managed = None if sid is None else self.runtime.hypervisor.get_session(sid)
        if managed is None:
            return "failed"
        future = self.runtime.submit(_saga(managed.saga, sid, me.did, plan, rng.uniform(0.2, 1.5)))  # type: ignore[arg-type]
        while not future.done():
            yield POLL
        try:
            return future.result()
        except Exception:
            log.exception("saga %s did not run", saga_id)
            return "failed"


async def _saga(
    orchestrator: Any,
    session_id: str,
    agent_did: str,
    plan: list[tuple[str, str, str | None, str, float]],
    undo_seconds: float,
) -> str:
    """One saga on the orchestrator, as ``plan`` says; returns completed, failed or escalated."""
    saga = orchestrator.create_saga(session_id)
    steps: list[tuple[SagaStep, str, float]] = []
    for _name, action, compensation, kind, duration in plan:
        step = orchestrator.add_step(
            saga.saga_id,
            action,
            agent_did,
            f"/actions/{action}",
            undo_api=None if compensation is None else f"/actions/{compensation}",
            timeout_seconds=STEP_TIMEOUT,
            max_retries=STEP_RETRIES,
        )
        steps.append((step, kind, duration))
    in_doubt = any(kind == "doubt" for _, kind, _ in steps)
    for step, kind, duration in steps:

        async def execute(
            kind: str = kind, duration: float = duration, action: str = step.action_id
        ) -> str:
            if kind == "doubt":
                await asyncio.sleep(HANG)  # never answers: the orchestrator's timeout ends it
            await asyncio.sleep(duration)
            if kind == "fail":
                raise ConnectionError(f"{action} failed: connection_timeout")
            return "ok"

        try:
            await orchestrator.execute_step(saga.saga_id, step.step_id, execute)
        except Exception:
            break
    else:
        saga.transition(SagaState.COMPLETED)
        return "completed"

    async def undo(step: SagaStep) -> str:
        if in_doubt:
            await asyncio.sleep(HANG)  # the backend that swallowed the step swallows its undo
        await asyncio.sleep(undo_seconds)
        return "undone"

    failures = await orchestrator.compensate(saga.saga_id, undo)
    return "escalated" if failures else "failed"


__all__ = ["CANNOT_PRODUCE", "INCIDENT_ONLY", "RUNTIME", "AgentHypervisorRuntime", "RuntimeWorld"]
