"""The demo's remediation action: killing a simulated agent, as a runtime's kill switch would.

It is a user-defined action like any team would write for its own runtime
(:class:`meshwatch.remediation.Action`): the receiver decides, this acts. With
``--remediation-port``, the demo serves the receiver beside ``/metrics``, so
the incident's ``HighRingBreachRate`` can end the way it would in production:
Alertmanager posts the alert, the policy maps it to ``kill_agent``, the rogue
agent's session ends, its breaches stop and the alert resolves.
"""

from __future__ import annotations

from meshwatch.demo.world import World
from meshwatch.remediation import ActionError, ActionRequest


class KillSimulatedAgent:
    """``kill_agent``: end the named agent's session; the fleet restarts it clean."""

    name = "kill_agent"
    required_labels = ("agent_did",)

    def __init__(self, world: World) -> None:
        self._world = world

    def plan(self, request: ActionRequest) -> str:
        did = request.labels["agent_did"]
        session = self._world.sessions.get(did, "(no session)")
        return f"kill {did} in session {session}"

    def __call__(self, request: ActionRequest) -> str:
        did = request.labels["agent_did"]
        reason = request.params.get("reason", request.alert.name)
        if not self._world.kill(did, reason):
            raise ActionError(f"no running agent {did} to kill")
        return f"killed {did}"
