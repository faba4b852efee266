"""agent-hypervisor's own operations, with meshwatch's instrumentation attached vs without.

The target (at most 1.3x) is what a team pays for observing the runtime: each
operation is measured on an uninstrumented runtime object and on one hooked by
``instrument()`` onto a bus with the standard collectors, in the same run.

* an elevation: ``request_elevation`` then ``revoke_elevation`` (two events);
* a saga step: create a saga, add a step, ``execute_step`` it, complete the
  saga (four events), inside a running event loop;
* a breach check: ``record_call`` for an ordinary call (no event: the
  detector finds nothing) and for a call the detector calls a breach.

Each is measured twice with the hooks: onto a bus with the standard collectors
(what a team pays end to end) and onto a bus without subscribers (the hooks and
the events alone), so a figure over target says which side costs it.

Upstream keeps every elevation and saga it ever granted, so each repetition
clears those tables first (the same on both sides): otherwise the later
repetitions would measure upstream's growing scans, not the hooks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from hypervisor import ExecutionRing, RingBreachDetector, RingElevationManager
from hypervisor.saga.orchestrator import SagaOrchestrator
from hypervisor.saga.state_machine import SagaState

from benchmarks.common import Result, seconds_per_call
from meshwatch.instrumentation.bus import HypervisorEventBus
from meshwatch.instrumentation.wiring import instrument as standard_collectors
from meshwatch.integrations.agent_hypervisor import instrument

TARGET = 1.3
REPEATS = 9
AGENT = "did:mesh:bench"
SESSION = "session:bench"


def _elevation(manager: RingElevationManager) -> Callable[[], None]:
    def op() -> None:
        manager._elevations.clear()  # see the module docstring
        grant = manager.request_elevation(
            AGENT,
            SESSION,
            ExecutionRing.RING_3_SANDBOX,
            ExecutionRing.RING_2_STANDARD,
            trust_score=0.9,
        )
        manager.revoke_elevation(grant.elevation_id)

    return op


def _saga_step(
    orchestrator: SagaOrchestrator, loop: asyncio.AbstractEventLoop
) -> Callable[[], None]:
    async def ok() -> str:
        return "ok"

    async def one() -> None:
        orchestrator._sagas.clear()  # see the module docstring
        saga = orchestrator.create_saga(SESSION)
        step = orchestrator.add_step(saga.saga_id, "bench", AGENT, "/bench")
        await orchestrator.execute_step(saga.saga_id, step.step_id, ok)
        saga.transition(SagaState.COMPLETED)

    return lambda: loop.run_until_complete(one())


def _breach_check(detector: RingBreachDetector) -> Callable[[], None]:
    def op() -> None:
        detector.record_call(
            AGENT, SESSION, ExecutionRing.RING_3_SANDBOX, ExecutionRing.RING_1_PRIVILEGED
        )

    return op


def run() -> list[Result]:
    bus = HypervisorEventBus(max_events=10_000)
    collectors = standard_collectors(bus)
    bare = HypervisorEventBus(max_events=10_000)
    loop = asyncio.new_event_loop()
    ns = 1e9
    cases: list[tuple[str, Callable[[], object], Callable[[object], Callable[[], None]]]] = [
        ("an elevation (request + revoke)", RingElevationManager, _elevation),  # type: ignore[list-item]
        (
            "a saga step (create, add, execute, complete)",
            SagaOrchestrator,
            lambda o: _saga_step(o, loop),  # type: ignore[arg-type]
        ),
        (
            "a breach check, ordinary call",
            lambda: RingBreachDetector(baseline_rate=1e12),
            _breach_check,
        ),  # type: ignore[list-item]
        (
            "a breach check, breach found",
            lambda: RingBreachDetector(baseline_rate=1e-6),
            _breach_check,
        ),  # type: ignore[list-item]
    ]
    results: list[Result] = []
    try:
        for name, make, operation in cases:
            plain = operation(make())
            for target_bus, note in (
                (bus, "bus with the standard collectors"),
                (bare, "bus without subscribers"),
            ):
                hooked = make()
                hooked_op = operation(hooked)
                with instrument(hooked, bus=target_bus):
                    without, with_hooks = _interleaved(plain, hooked_op)
                results.append(
                    Result(
                        f"agent-hypervisor {name}, instrumented",
                        with_hooks * ns,
                        "ns",
                        target=TARGET,
                        baseline=without * ns,
                        baseline_name="uninstrumented",
                        note=note,
                    )
                )
    finally:
        collectors.close()
        loop.close()
    return results


def _interleaved(plain: Callable[[], None], hooked: Callable[[], None]) -> tuple[float, float]:
    """Seconds per call of each, measured in alternating repeats (the best of each).

    On a shared machine the load moves during a run; alternating the two keeps
    a burst of load from landing on one side only.
    """
    number = max(1, int(0.02 / max(seconds_per_call(plain, number=200, repeat=1), 1e-9)))
    best_plain = best_hooked = float("inf")
    for _ in range(REPEATS):
        best_plain = min(best_plain, seconds_per_call(plain, number=number, repeat=1))
        best_hooked = min(best_hooked, seconds_per_call(hooked, number=number, repeat=1))
    return best_plain, best_hooked
