"""Remediation actions on the agent-hypervisor runtime: kill, revoke an elevation, quarantine.

The receiver (:mod:`meshwatch.remediation`) decides; these act through the
runtime's own public methods, exactly as an operator would, and say what they
did. Each needs the alert's ``agent_did``; a ``session_id`` label narrows it to
one session, otherwise the agent's active sessions are found through the
``Hypervisor`` (if one is given)::

    from meshwatch.integrations.agent_hypervisor.remediation import hypervisor_actions
    from meshwatch.remediation import start_remediation

    actions = hypervisor_actions(
        hypervisor=hv, kill_switch=kill_switch, elevations=hv_elevations, quarantine=quarantine
    )
    receiver = start_remediation(settings.remediation, actions, bus=bus)

``kill_agent`` calls ``KillSwitch.kill`` for each of the agent's sessions,
with its saga steps still executing as the in-flight steps, so the kill switch
hands them to the session's registered substitute (``register_substitute``)
or marks them for compensation. The policy's ``params.reason`` is a
``KillReason`` value (default ``manual``). A kill whose termination callback
failed or timed out is reported as a failure: the process state is unknown.

``revoke_elevation`` revokes every active elevation of the agent (in the
session, if the alert names one) through ``RingElevationManager.revoke_elevation``.

``quarantine_agent`` calls ``QuarantineManager.quarantine`` with
``params.reason`` (a ``QuarantineReason`` value, default ``manual``) and
``params.seconds``. agent-hypervisor 3.7.0 records the request but does not
enforce it (its Public Preview quarantine is a stub); the action says so in
what it returns.
"""

from __future__ import annotations

from typing import Any

from hypervisor import Hypervisor
from hypervisor.liability.quarantine import QuarantineManager, QuarantineReason
from hypervisor.rings.elevation import RingElevationManager
from hypervisor.saga.state_machine import StepState
from hypervisor.security.kill_switch import KillReason, KillSwitch

from meshwatch.remediation import Action, ActionError, ActionRequest


def _sessions(request: ActionRequest, hypervisor: Hypervisor | None) -> list[str]:
    """The sessions to act in: the alert's ``session_id``, else the agent's active ones."""
    named = request.labels.get("session_id")
    if named:
        return [named]
    if hypervisor is None:
        raise ActionError("the alert has no session_id and no Hypervisor was given to find one")
    did = request.labels["agent_did"]
    found = [
        managed.sso.session_id
        for managed in hypervisor.active_sessions
        if any(p.agent_did == did for p in managed.sso.participants)
    ]
    if not found:
        raise ActionError(f"{did} is in no active session")
    return sorted(found)


def _in_flight(hypervisor: Hypervisor | None, session_id: str, did: str) -> list[dict[str, Any]]:
    """The agent's saga steps still executing in ``session_id`` (what a kill hands off)."""
    if hypervisor is None:
        return []
    managed = hypervisor.get_session(session_id)
    if managed is None:
        return []
    return [
        {"saga_id": saga.saga_id, "step_id": step.step_id}
        for saga in managed.saga.active_sagas
        for step in saga.steps
        if step.agent_did == did and step.state is StepState.EXECUTING
    ]


def _enum(kind: Any, value: str, what: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise ActionError(f"params.reason {value!r} is not a {what} ({allowed})") from None


class KillAgent:
    """``kill_agent``: the runtime's kill switch, with step handoff, in each of the agent's sessions."""

    name = "kill_agent"
    required_labels = ("agent_did",)

    def __init__(self, kill_switch: KillSwitch, *, hypervisor: Hypervisor | None = None) -> None:
        self._kill_switch = kill_switch
        self._hypervisor = hypervisor

    def plan(self, request: ActionRequest) -> str:
        did = request.labels["agent_did"]
        sessions = _sessions(request, self._hypervisor)
        steps = sum(len(_in_flight(self._hypervisor, s, did)) for s in sessions)
        return f"kill {did} in {', '.join(sessions)} ({steps} step(s) in flight)"

    def __call__(self, request: ActionRequest) -> str:
        did = request.labels["agent_did"]
        reason = _enum(KillReason, request.params.get("reason", "manual"), "KillReason")
        details = f"meshwatch remediation of {request.alert.name} ({request.alert.fingerprint})"
        done: list[str] = []
        for session_id in _sessions(request, self._hypervisor):
            result = self._kill_switch.kill(
                did,
                session_id,
                reason,
                in_flight_steps=_in_flight(self._hypervisor, session_id, did),
                details=details,
            )
            if not result.terminated:
                raise ActionError(
                    f"{result.kill_id}: {did}'s termination callback in {session_id} did not "
                    "complete (none registered, it raised, or it timed out)"
                )
            done.append(
                f"{result.kill_id} in {session_id}: {result.handoff_success_count} of "
                f"{len(result.handoffs)} step(s) handed off"
            )
        return f"killed {did}: " + "; ".join(done)


class RevokeElevation:
    """``revoke_elevation``: end the agent's active ring elevations now, not at their TTL."""

    name = "revoke_elevation"
    required_labels = ("agent_did",)

    def __init__(self, elevations: RingElevationManager) -> None:
        self._elevations = elevations

    def _active(self, request: ActionRequest) -> list[Any]:
        did = request.labels["agent_did"]
        session = request.labels.get("session_id")
        return [
            e
            for e in self._elevations.active_elevations
            if e.agent_did == did and (not session or e.session_id == session)
        ]

    def plan(self, request: ActionRequest) -> str:
        active = self._active(request)
        return f"revoke {len(active)} elevation(s) of {request.labels['agent_did']}"

    def __call__(self, request: ActionRequest) -> str:
        active = self._active(request)
        if not active:
            raise ActionError(f"{request.labels['agent_did']} has no active elevation")
        for elevation in active:
            self._elevations.revoke_elevation(elevation.elevation_id)
        rings = ", ".join(f"{e.elevation_id} (ring {e.elevated_ring.value})" for e in active)
        return f"revoked {rings}"


class QuarantineAgent:
    """``quarantine_agent``: ask the runtime to quarantine the agent in each of its sessions."""

    name = "quarantine_agent"
    required_labels = ("agent_did",)

    def __init__(
        self, quarantine: QuarantineManager, *, hypervisor: Hypervisor | None = None
    ) -> None:
        self._quarantine = quarantine
        self._hypervisor = hypervisor

    def plan(self, request: ActionRequest) -> str:
        sessions = _sessions(request, self._hypervisor)
        return f"quarantine {request.labels['agent_did']} in {', '.join(sessions)}"

    def __call__(self, request: ActionRequest) -> str:
        did = request.labels["agent_did"]
        reason = _enum(QuarantineReason, request.params.get("reason", "manual"), "QuarantineReason")
        seconds_text = request.params.get("seconds")
        try:
            seconds = int(seconds_text) if seconds_text is not None else None
        except ValueError:
            raise ActionError(f"params.seconds {seconds_text!r} is not a whole number") from None
        records = [
            self._quarantine.quarantine(
                did,
                session_id,
                reason,
                details=f"meshwatch remediation of {request.alert.name}",
                duration_seconds=seconds,
            )
            for session_id in _sessions(request, self._hypervisor)
        ]
        enforced = all(r.is_active for r in records)
        note = "" if enforced else " (recorded; this runtime version does not enforce quarantine)"
        return f"quarantined {did}: " + ", ".join(r.quarantine_id for r in records) + note


def hypervisor_actions(
    *,
    hypervisor: Hypervisor | None = None,
    kill_switch: KillSwitch | None = None,
    elevations: RingElevationManager | None = None,
    quarantine: QuarantineManager | None = None,
) -> list[Action]:
    """The built-in actions for the runtime objects given (each needs its own object)."""
    actions: list[Action] = []
    if kill_switch is not None:
        actions.append(KillAgent(kill_switch, hypervisor=hypervisor))
    if elevations is not None:
        actions.append(RevokeElevation(elevations))
    if quarantine is not None:
        actions.append(QuarantineAgent(quarantine, hypervisor=hypervisor))
    if not actions:
        raise ValueError("give at least one of kill_switch, elevations, quarantine")
    return actions


__all__ = ["KillAgent", "QuarantineAgent", "RevokeElevation", "hypervisor_actions"]
