"""World.restart against a kill that arrives while the killed agent joins again.

Remediation kills from the receiver's thread while the fleet restarts the agent
on its own; the kill must find either the old agent still killed or the new
session, never the ended one.
"""

from __future__ import annotations

from meshwatch.alerts.catalogue import HIGH_RING_BREACH_RATE
from meshwatch.demo.scenario import build_scenario
from meshwatch.demo.world import TOOL_CODE, AgentSpec, World
from meshwatch.instrumentation.bus import HypervisorEventBus
from meshwatch.instrumentation.events import EventType
from tests.unit.demo_instruments import demo_instruments

BREACHES = HIGH_RING_BREACH_RATE.name


class KilledWhileJoining(World):
    """A world whose joins are interrupted by a kill of the joining agent, as a thread would."""

    kills_during_join: list[bool]

    def join(self, agent: AgentSpec) -> None:
        self.kills_during_join.append(self.kill(agent.did, BREACHES))
        super().join(agent)


def test_a_kill_during_the_restarts_join_finds_the_agent_still_killed() -> None:
    bus = HypervisorEventBus()
    instruments = demo_instruments(bus)
    world = KilledWhileJoining(build_scenario("steady", seed=1), instruments)
    world.kills_during_join = []
    try:
        World.join(world, TOOL_CODE)
        old = world.sessions[TOOL_CODE.did]
        assert world.kill(TOOL_CODE.did, BREACHES)
        world.restart(TOOL_CODE)
        assert world.kills_during_join == [False], "the restarting agent is not killed again"
        assert world.sessions[TOOL_CODE.did] != old
        assert not world.was_killed(TOOL_CODE)
        kills = [e.session_id for e in bus.query(event_type=EventType.AGENT_KILLED)]
        assert kills == [old], "one kill, of the old session"
        assert world.kill(TOOL_CODE.did, BREACHES), "the restarted agent can be killed"
    finally:
        world.close()
