"""RuntimeWorld.kill against the real agent-hypervisor runtime, in process (no sim running).

The fleet's incident restarts a killed agent with ``World.restart``: it un-marks
the agent, then joins it in a new session. A second kill in that window used to
find the old, archived session and ask the runtime to terminate it again, which
agent-hypervisor refuses (``SessionLifecycleError``), so remediation's kill
raised. A kill now claims the session it ends.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meshwatch.alerts.catalogue import HIGH_RING_BREACH_RATE
from meshwatch.demo.runtime_world import AgentHypervisorRuntime, RuntimeWorld
from meshwatch.demo.scenario import build_scenario
from meshwatch.demo.world import TOOL_CODE
from meshwatch.instrumentation.bus import HypervisorEventBus
from tests.unit.demo_instruments import demo_instruments

BREACHES = HIGH_RING_BREACH_RATE.name


@pytest.fixture
def world() -> Iterator[RuntimeWorld]:
    bus = HypervisorEventBus()
    runtime = AgentHypervisorRuntime(bus)
    instruments = demo_instruments(bus)
    world = RuntimeWorld(build_scenario("steady", seed=1), instruments, runtime)
    try:
        yield world
    finally:
        world.close()
        runtime.close()


def test_a_kill_claims_the_session_so_restarts_window_finds_none(world: RuntimeWorld) -> None:
    world.join(TOOL_CODE)
    first = world.sessions[TOOL_CODE.did]
    assert world.kill(TOOL_CODE.did, BREACHES)
    assert TOOL_CODE.did not in world.sessions, "a killed agent has no session"
    assert not world.kill(TOOL_CODE.did, BREACHES), "already killed"
    # restart()'s first half: the agent is no longer marked, and has not joined yet.
    with world._kill_lock:
        world._killed.discard(TOOL_CODE.did)
    assert not world.kill(TOOL_CODE.did, BREACHES), "no session to end: nothing to kill"
    world.restart(TOOL_CODE)
    second = world.sessions[TOOL_CODE.did]
    assert second != first
    assert world.kill(TOOL_CODE.did, BREACHES), "the restarted agent can be killed again"
    kills = world.runtime.kill_switch.kill_history
    assert [(k.agent_did, k.session_id) for k in kills] == [
        (TOOL_CODE.did, first),
        (TOOL_CODE.did, second),
    ]
