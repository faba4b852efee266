"""The built-in agent-hypervisor actions, on the real runtime (agent-hypervisor installed, never faked).

Each test builds real runtime objects (a Hypervisor with a session, a
KillSwitch with a termination callback and a substitute, a
RingElevationManager with a live grant, a QuarantineManager), hands a firing
alert to a Remediator whose policy maps it to the action, and reads the
runtime's own state afterwards.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypervisor import Hypervisor, KillSwitch, QuarantineManager, RingElevationManager
from hypervisor.models import ExecutionRing, SessionConfig
from hypervisor.saga.state_machine import StepState
from hypervisor.security.kill_switch import KillReason

from meshwatch.integrations.agent_hypervisor.remediation import (
    KillAgent,
    QuarantineAgent,
    RevokeElevation,
    hypervisor_actions,
)
from meshwatch.remediation import Action, Remediator, parse
from meshwatch.settings import RemediationPolicy, RemediationSettings
from tests.unit.test_remediation import alert, body

AGENT = "did:mesh:rogue"
BUDDY = "did:mesh:buddy"


def _remediator(action: Action, **params: str) -> Remediator:
    policy = RemediationPolicy(
        alert="HighRingBreachRate", action=action.name, agents=("did:mesh:*",), params=params
    )
    return Remediator(RemediationSettings(dry_run=False, policies=(policy,)), [action])


def _hypervisor() -> tuple[Hypervisor, str]:
    async def build() -> tuple[Hypervisor, str]:
        hv = Hypervisor()
        managed = await hv.create_session(SessionConfig(), creator_did="did:mesh:admin")
        sid = managed.sso.session_id
        await hv.join_session(sid, AGENT, sigma_raw=0.7)
        await hv.join_session(sid, BUDDY, sigma_raw=0.7)
        return hv, sid

    return asyncio.run(build())


def test_kill_agent_kills_through_the_kill_switch_and_hands_in_flight_steps_to_the_substitute() -> (
    None
):
    hv, sid = _hypervisor()
    saga = hv.get_session(sid).saga  # type: ignore[union-attr]
    running = saga.create_saga(sid)
    step = saga.add_step(running.saga_id, "deploy", AGENT, "/deploy", undo_api="/undo")
    step.transition(StepState.EXECUTING)  # a step the agent is executing right now
    switch = KillSwitch(callback_timeout=1.0)
    stopped: list[str] = []
    switch.register_agent(AGENT, lambda: stopped.append(AGENT))
    switch.register_substitute(sid, BUDDY)

    [decision] = _remediator(KillAgent(switch, hypervisor=hv), reason="ring_breach").handle(
        parse(body(alert(agent=AGENT)))
    )
    assert decision.result == "acted", decision
    assert stopped == [AGENT]
    [result] = switch.kill_history
    assert (result.agent_did, result.session_id, result.reason) == (
        AGENT,
        sid,
        KillReason.RING_BREACH,
    )
    assert [(h.step_id, h.to_agent) for h in result.handoffs] == [(step.step_id, BUDDY)]
    assert "1 of 1 step(s) handed off" in decision.detail


def test_kill_agent_without_a_termination_callback_fails_and_says_so() -> None:
    hv, _ = _hypervisor()
    [decision] = _remediator(KillAgent(KillSwitch(), hypervisor=hv)).handle(
        parse(body(alert(agent=AGENT)))
    )
    assert decision.result == "failed"
    assert "did not complete" in decision.detail


def test_kill_agent_refuses_an_unknown_kill_reason_before_killing() -> None:
    hv, _ = _hypervisor()
    switch = KillSwitch()
    [decision] = _remediator(KillAgent(switch, hypervisor=hv), reason="bored").handle(
        parse(body(alert(agent=AGENT)))
    )
    assert decision.result == "failed" and "KillReason" in decision.detail
    assert switch.kill_history == []


def test_a_dry_run_plans_the_kill_and_touches_nothing() -> None:
    hv, sid = _hypervisor()
    switch = KillSwitch()
    switch.register_agent(AGENT, lambda: None)
    policy = RemediationPolicy(alert="HighRingBreachRate", action="kill_agent", agents=("*",))
    remediator = Remediator(
        RemediationSettings(policies=(policy,)), [KillAgent(switch, hypervisor=hv)]
    )
    [decision] = remediator.handle(parse(body(alert(agent=AGENT))))
    assert (decision.result, decision.detail) == (
        "dry_run",
        f"kill {AGENT} in {sid} (0 step(s) in flight)",
    )
    assert switch.kill_history == []


def test_revoke_elevation_ends_the_agents_live_grant() -> None:
    elevations = RingElevationManager()
    grant = elevations.request_elevation(
        AGENT,
        "s1",
        ExecutionRing.RING_3_SANDBOX,
        ExecutionRing.RING_2_STANDARD,
        ttl_seconds=600,
        trust_score=0.99,
    )
    assert elevations.active_elevations == [grant]
    [decision] = _remediator(RevokeElevation(elevations)).handle(parse(body(alert(agent=AGENT))))
    assert decision.result == "acted", decision
    assert elevations.active_elevations == []
    assert grant.elevation_id in decision.detail


def test_revoke_elevation_of_an_agent_that_has_none_fails() -> None:
    [decision] = _remediator(RevokeElevation(RingElevationManager())).handle(
        parse(body(alert(agent=AGENT)))
    )
    assert decision.result == "failed" and "no active elevation" in decision.detail


def test_quarantine_agent_records_the_request_and_says_it_is_not_enforced() -> None:
    hv, sid = _hypervisor()
    quarantine = QuarantineManager()
    [decision] = _remediator(
        QuarantineAgent(quarantine, hypervisor=hv), reason="ring_breach", seconds="60"
    ).handle(parse(body(alert(agent=AGENT))))
    assert decision.result == "acted", decision
    [record] = quarantine.get_history(AGENT)
    assert record.session_id == sid
    # agent-hypervisor 3.7.0's Public Preview quarantine records but does not enforce.
    assert "does not enforce" in decision.detail


def test_the_alerts_session_label_narrows_the_action_to_that_session() -> None:
    hv, _ = _hypervisor()
    quarantine = QuarantineManager()
    labelled: dict[str, Any] = alert(agent=AGENT)
    labelled["labels"] = {**labelled["labels"], "session_id": "sess-x"}
    _remediator(QuarantineAgent(quarantine, hypervisor=hv)).handle(parse(body(labelled)))
    assert [r.session_id for r in quarantine.get_history(AGENT)] == ["sess-x"]


def test_hypervisor_actions_builds_one_action_per_runtime_object() -> None:
    hv, _ = _hypervisor()
    actions = hypervisor_actions(
        hypervisor=hv,
        kill_switch=KillSwitch(),
        elevations=RingElevationManager(),
        quarantine=QuarantineManager(),
    )
    assert [a.name for a in actions] == ["kill_agent", "revoke_elevation", "quarantine_agent"]
    with pytest.raises(ValueError, match="at least one"):
        hypervisor_actions(hypervisor=hv)
