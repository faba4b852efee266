"""The demo workload in-process: deterministic scheduling, realistic latencies, the scenarios.

The live `meshwatch demo` process is tested in tests/integration/test_demo_process.py.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from meshwatch.cli import main
from meshwatch.demo import latency
from meshwatch.demo.agents import bootstrap
from meshwatch.demo.scenario import SCENARIOS, Scenario, ScenarioName, build_scenario
from meshwatch.demo.sim import Process, Simulation
from meshwatch.demo.world import LEGACY, ORCHESTRATOR, PUBLISHER, TOOL_CODE, Instruments, World
from meshwatch.instrumentation.bus import HypervisorEventBus
from meshwatch.instrumentation.catalogue import (
    CONFLICTS,
    GOVERNANCE_DECISIONS,
    GOVERNANCE_LATENCY,
    RING_BREACHES,
    RING_ELEVATED,
    RING_ELEVATION_DURATION,
    RING_TRANSITIONS,
    SAGA_STEPS,
    SAGAS,
    TASKS_FAILED,
    TASKS_STARTED,
)
from meshwatch.instrumentation.genai import GenAIMetrics
from meshwatch.instrumentation.governance import GovernanceMetrics
from meshwatch.instrumentation.ring_metrics import RingMetricsCollector
from meshwatch.instrumentation.saga_metrics import SagaMetricsCollector
from meshwatch.instrumentation.stores import CardinalityGuard, HistogramValue, MetricSource
from meshwatch.instrumentation.work_metrics import AgentMetrics

# --- the scheduler -----------------------------------------------------------------


def test_processes_run_in_virtual_time_order_with_ties_in_scheduling_order() -> None:
    sim = Simulation()
    seen: list[tuple[float, str]] = []

    def proc(name: str, delays: list[float]):
        for delay in delays:
            yield delay
            seen.append((sim.now, name))

    sim.spawn(proc("a", [1.0, 1.0]))
    sim.spawn(proc("b", [2.0]))
    sim.spawn(proc("c", [0.5]), delay=0.5)
    sim.run_until(1.5)
    assert seen == [(1.0, "a"), (1.0, "c")]
    sim.run_until(10)
    # b asked for t=2 at t=0, a only at t=1: b goes first.
    assert seen == [(1.0, "a"), (1.0, "c"), (2.0, "b"), (2.0, "a")]
    assert sim.next_time() is None


def test_an_inbox_wakes_its_waiter_with_the_message_in_send_order() -> None:
    sim = Simulation()
    inbox = sim.inbox()
    got: list[tuple[float, str]] = []

    def receiver():
        for _ in range(2):
            message = yield inbox
            got.append((sim.now, message))

    def sender():
        yield 1.0
        inbox.put("first")
        inbox.put("second")

    sim.spawn(receiver())
    sim.spawn(sender())
    sim.run_until(5)
    assert got == [(1.0, "first"), (1.0, "second")]


def test_each_process_has_its_own_context() -> None:
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")
    sim = Simulation()
    seen: list[str] = []

    def proc(name: str):
        var.set(name)
        yield 1.0
        seen.append(var.get())

    sim.spawn(proc("a"))
    sim.spawn(proc("b"))
    sim.run_until(2)
    assert seen == ["a", "b"]
    assert var.get() == "nobody"


def test_close_ends_every_live_process_inside_its_own_context() -> None:
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")
    sim = Simulation()
    inbox = sim.inbox()
    ended: list[str] = []

    def proc(name: str, wait_on_inbox: bool):
        var.set(name)
        try:
            yield inbox if wait_on_inbox else 100.0
        finally:
            ended.append(var.get())

    sim.spawn(proc("sleeper", False))
    sim.spawn(proc("waiter", True))
    sim.run_until(1)
    assert sim.live == 2
    sim.close()
    assert sorted(ended) == ["sleeper", "waiter"]
    assert sim.live == 0
    assert sim.next_time() is None


def test_a_negative_delay_is_a_bug_that_surfaces() -> None:
    sim = Simulation()

    def proc():
        yield -1.0

    sim.spawn(proc())
    with pytest.raises(ValueError, match="invalid delay"):
        sim.run_until(1)


# --- governance latency ----------------------------------------------------------------


def _quantile(model: latency.LatencyModel, q: float, n: int = 20_000) -> float:
    rng = random.Random(7)
    values = sorted(model.sample(rng) for _ in range(n))
    return values[int(q * n)]


def test_healthy_governance_is_sub_millisecond_with_a_tail_far_below_the_alert() -> None:
    assert _quantile(latency.HEALTHY, 0.5) < 1.0
    assert 2.0 < _quantile(latency.HEALTHY, 0.99) < 20.0


def test_degraded_governance_puts_p99_far_above_50ms() -> None:
    assert _quantile(latency.DEGRADED, 0.5) > 50.0
    assert _quantile(latency.DEGRADED, 0.99) > 500.0


def test_samples_stay_within_physical_bounds() -> None:
    model = latency.LatencyModel("wild", (latency.LogNormal(1.0, 10.0, 5.0),))
    rng = random.Random(1)
    values = [model.sample(rng) for _ in range(5_000)]
    assert min(values) >= latency.MIN_MS
    assert max(values) <= latency.MAX_MS


def test_invalid_components_are_rejected() -> None:
    with pytest.raises(ValueError):
        latency.LogNormal(0.0, 1.0, 1.0)
    with pytest.raises(ValueError):
        latency.LatencyModel("empty", ())


# --- the simulated fleet, in virtual time ------------------------------------------------


@dataclass
class Fleet:
    """A simulated fleet on a fresh bus, with the standard collectors attached."""

    world: World
    ring: RingMetricsCollector
    sagas: SagaMetricsCollector

    def close(self) -> None:
        self.world.close()
        self.ring.close()
        self.sagas.close()


@contextmanager
def _fleet(scenario: Scenario) -> Iterator[Fleet]:
    bus = HypervisorEventBus(max_events=1_000_000)
    fleet = Fleet(
        World(
            scenario,
            Instruments(
                bus,
                GovernanceMetrics(),
                AgentMetrics(ORCHESTRATOR.did),
                AgentMetrics(LEGACY.did, guard=CardinalityGuard(max_series=5)),
                genai=GenAIMetrics(),
            ),
        ),
        RingMetricsCollector(bus),
        SagaMetricsCollector(bus),
    )
    fleet.world.sim.spawn(bootstrap(fleet.world))
    try:
        yield fleet
    finally:
        fleet.close()


def _event_sequence(scenario: Scenario, until: float) -> list[tuple[object, ...]]:
    with _fleet(scenario) as fleet:
        fleet.world.sim.run_until(until)
        return [
            (e.event_type, e.agent_did, e.session_id, sorted(e.payload.items(), key=repr))
            for e in fleet.world.inst.bus.all_events
        ]


def _families(source: MetricSource) -> dict[str, dict[tuple[str, ...], object]]:
    return {family.metric.name: dict(family.samples) for family in source.metric_families()}


def _fraction_at_most(histograms: Iterable[object], bound: float) -> tuple[float, int]:
    """Fraction of observations <= ``bound`` (a bucket bound) over histograms, and their count."""
    below = total = 0
    for histogram in histograms:
        assert isinstance(histogram, HistogramValue)
        below += histogram.cumulative_counts[histogram.bounds.index(bound)]
        total += histogram.count
    return (below / total if total else 0.0), total


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_same_seed_replays_the_same_event_sequence(name: ScenarioName) -> None:
    first = _event_sequence(build_scenario(name, seed=7), until=90)
    again = _event_sequence(build_scenario(name, seed=7), until=90)
    other = _event_sequence(build_scenario(name, seed=8), until=90)
    assert len(first) > 300
    assert first == again
    assert first != other


def test_steady_state_stays_under_the_alert_thresholds() -> None:
    seconds = 600
    with _fleet(build_scenario("steady", seed=11)) as fleet:
        fleet.world.sim.run_until(seconds)
        breaches = fleet.ring.collect()[RING_BREACHES.name]
        assert breaches, "steady state has occasional breaches"
        assert max(breaches.values()) / seconds < 0.05

        latency = _families(fleet.world.inst.governance)[GOVERNANCE_LATENCY.name]
        fast, decisions = _fraction_at_most(latency.values(), 0.05)
        assert decisions > 200
        assert fast > 0.995, "governance p99 must stay far below 50 ms"

        work = _families(fleet.world.inst.work)
        for key, started in work[TASKS_STARTED.name].items():
            failed = work[TASKS_FAILED.name].get(key, 0.0)
            if started >= 30:  # type: ignore[operator]
                assert failed / started < 0.10, key  # type: ignore[operator]

        sagas = _families(fleet.sagas)[SAGAS.name]
        outcomes = Counter[str]()
        for (_, outcome), count in sagas.items():
            outcomes[outcome] += int(count)  # type: ignore[call-overload]
        assert outcomes["completed"] > 50
        assert outcomes["failed"] + outcomes["escalated"] < 0.2 * sum(outcomes.values())


def test_every_rare_outcome_happens_within_the_first_half_minute() -> None:
    with _fleet(build_scenario("steady", seed=5)) as fleet:
        fleet.world.sim.run_until(25)
        sagas = _families(fleet.sagas)
        assert {k[1] for k in sagas[SAGAS.name]} >= {"escalated", "failed"}
        assert {k[1] for k in sagas[SAGA_STEPS.name]} == {"committed", "failed", "compensated"}
        governance = _families(fleet.world.inst.governance)
        assert {k[0] for k in governance[GOVERNANCE_DECISIONS.name]} == {
            "allowed",
            "blocked",
            "rate_limited",
        }
        work = _families(fleet.world.inst.work)
        assert work[TASKS_FAILED.name]
        assert {k[1] for k in work[CONFLICTS.name]} >= {"started", "failed"}
        ring = fleet.ring.collect()
        assert ring[RING_BREACHES.name]
        transitions = {k[0] for k in ring[RING_TRANSITIONS.name]}
        assert transitions >= {"ring.assigned", "ring.elevated", "ring.elevation_expired"}


def test_the_incident_drives_the_three_alert_conditions_then_recovers() -> None:
    scenario = build_scenario("incident", seed=3, incident_duration=60)
    with _fleet(scenario) as fleet:
        world = fleet.world
        world.sim.run_until(59)
        during = fleet.ring.collect()
        rogue = sum(
            v for (agent, _), v in during[RING_BREACHES.name].items() if agent == TOOL_CODE.did
        )
        assert rogue / 59 > 2.0, "above HighRingBreachRate's critical tier"
        assert during[RING_ELEVATED.name][PUBLISHER.did] == 1
        # Backdated: the gauge reads from the event's timestamp, over 300 s from the start.
        assert during[RING_ELEVATION_DURATION.name][PUBLISHER.did] > 300
        latency = _families(world.inst.governance)[GOVERNANCE_LATENCY.name]
        fast, _ = _fraction_at_most(latency.values(), 0.05)
        assert fast < 0.5, "p99 far above 50 ms"
        trust = world.trust_scores()
        assert trust[TOOL_CODE.did] < 300

        world.sim.run_until(85)  # the incident ended at 60 s
        ended = fleet.ring.collect()
        assert ended[RING_ELEVATED.name][PUBLISHER.did] == 0
        rogue = sum(
            v for (agent, _), v in ended[RING_BREACHES.name].items() if agent == TOOL_CODE.did
        )
        latency = _families(world.inst.governance)[GOVERNANCE_LATENCY.name]
        world.sim.run_until(180)  # the routine release window is back, as a fresh elevation
        after = fleet.ring.collect()
        rogue_after = sum(
            v for (agent, _), v in after[RING_BREACHES.name].items() if agent == TOOL_CODE.did
        )
        assert (rogue_after - rogue) / 95 < 0.05
        assert after[RING_ELEVATION_DURATION.name][PUBLISHER.did] < 300
        latency_after = _families(world.inst.governance)[GOVERNANCE_LATENCY.name]
        fast_before, n_before = _fraction_at_most(latency.values(), 0.05)
        fast_total, n_total = _fraction_at_most(latency_after.values(), 0.05)
        fast_since = (fast_total * n_total - fast_before * n_before) / (n_total - n_before)
        assert fast_since > 0.99


def test_scenario_knobs_are_validated() -> None:
    with pytest.raises(ValueError, match="not for the steady scenario: breach_rate"):
        build_scenario("steady", breach_rate=3.0)
    with pytest.raises(ValueError, match="unknown scenario"):
        build_scenario("chaos")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        build_scenario("incident", incident_duration=0)


def test_run_until_returns_after_max_steps_however_much_is_due() -> None:
    sim = Simulation()

    def busy() -> Process:
        while True:
            yield 0.0

    sim.spawn(busy())
    assert sim.run_until(10.0, max_steps=500) == 500
    assert sim.now == 0.0, "virtual time stays at the last step run"
    sim.close()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--scenario", "incident", "--breach-rate", "1e12"], "argument --breach-rate: must be"),
        (["--scenario", "incident", "--breach-rate", "nan"], "argument --breach-rate: must be"),
        (["--duration", "inf"], "argument --duration: must be more than 0 and at most"),
        (["--duration", "1e400"], "argument --duration"),
        (["--scenario", "incident", "--incident-duration", "-1"], "--incident-duration"),
        (["--scenario", "incident", "--elevation-backdate", "1e300"], "--elevation-backdate"),
        (["--metrics-port", "70000"], "argument --metrics-port: must be 0 to 65535"),
        (["--metrics-port", "http"], "argument --metrics-port: not a port number"),
        (["--seed", "1.5"], "argument --seed: not an integer"),
        (["--otlp-endpoint", "localhost:4318"], "is not an http(s) URL"),
        (["--otlp-endpoint", "http://"], "is not an http(s) URL"),
    ],
)
def test_absurd_flags_are_one_line_errors_before_anything_starts(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--audit-dir", str(tmp_path / "audit"), *flags])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "audit").exists(), "nothing was created"
