"""The demo workload: deterministic scheduling, realistic latencies, and the live process."""

from __future__ import annotations

import random

import pytest

from meshwatch.demo import latency
from meshwatch.demo.sim import Simulation

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
