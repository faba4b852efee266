"""agent-hypervisor's own operations, with meshwatch's instrumentation attached vs without.

The target (at most 1.3x) is what observing the runtime costs the runtime's
calls: each operation is measured on an uninstrumented runtime object and on
one hooked by ``instrument()`` onto a bus with the standard collectors, in the
same run, alternating repeats.

* an elevation: ``request_elevation`` then ``revoke_elevation`` (two events);
* a saga step: create a saga, add a step, ``execute_step`` it, complete the
  saga (four events), inside a running event loop;
* a breach check: ``record_call`` for an ordinary call (no event: the
  detector finds nothing) and for a call the detector calls a breach.

Two figures per operation and delivery mode:

* **latency** (the target): the median time of one call, as its caller sees
  it. Each call is timed on its own (the timer's ~0.1 us is on both sides).
  Calls come in bursts of :data:`BURST` seconds, back to back, with idle time
  between bursts, as a runtime's calls come between the work and the waits
  around them: the worker waits ``BATCH_DELAY`` (5 ms) after a burst's first
  event, then builds the events while the runtime is idle. Under a sustained
  load with no idle time at all the worker's work has nowhere to go but
  between the caller's calls, and the caller's throughput falls to what the
  CPU figure says.
* **caller CPU**: the calling thread's own CPU time (``time.thread_time``) per
  call, the mean over a burst. What the runtime's thread itself spends,
  without the time it was descheduled: on a loaded machine this moves far
  less than wall time does, so it is the steadier view of the same cost.
* **CPU**: the whole process's CPU time (``time.process_time``) per operation,
  the worker thread's included: a repeat is closed by ``flush()``, so every
  event it caused has been built and collected before the clock stops. With
  background delivery the work moves to the worker thread; under the GIL it
  does not disappear, so this ratio stays above the latency ratio. No target:
  it is the honest other half of the latency figure.

Background delivery (the default) is measured, and sync delivery beside it.

Upstream keeps every elevation and saga it ever granted, so each repetition
clears those tables first (the same on both sides): otherwise the later
repetitions would measure upstream's growing scans, not the hooks.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Callable

from hypervisor import ExecutionRing, RingBreachDetector, RingElevationManager
from hypervisor.saga.orchestrator import SagaOrchestrator
from hypervisor.saga.state_machine import SagaState

from benchmarks.common import Result
from meshwatch.instrumentation.bus import HypervisorEventBus
from meshwatch.instrumentation.wiring import instrument as standard_collectors
from meshwatch.integrations.agent_hypervisor import BACKGROUND, SYNC, instrument

TARGET = 1.3
NS = 1e9
BURST = 0.003  # seconds of calls in one burst: shorter than delivery's BATCH_DELAY
BURSTS = 15
Figures = tuple[float, float, float]  # latency, caller CPU, process CPU: seconds per call
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
    loop = asyncio.new_event_loop()
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
            for delivery in (BACKGROUND, SYNC):
                hooked = make()
                hooked_op = operation(hooked)
                with instrument(hooked, bus=bus, delivery=delivery) as handle:
                    without, with_hooks = _interleaved(plain, hooked_op, handle.flush)
                note = f"{delivery} delivery, bus with the standard collectors"
                figures = (("latency", TARGET), ("caller CPU", None), ("CPU", None))
                for (what, target), base, value in zip(figures, without, with_hooks, strict=True):
                    results.append(
                        Result(
                            f"agent-hypervisor {name}, instrumented, {what}",
                            value * NS,
                            "ns",
                            target=target,
                            baseline=base * NS,
                            baseline_name="uninstrumented",
                            note=note,
                        )
                    )
    finally:
        collectors.close()
        loop.close()
    return results


def _burst(
    op: Callable[[], None], number: int, flush: Callable[[], object]
) -> tuple[float, float, float]:
    """One burst of ``number`` calls: the median seconds of one, its thread's and process CPU."""
    times = [0] * number
    clock = time.perf_counter_ns
    enabled = gc.isenabled()
    gc.disable()
    try:
        cpu = time.process_time_ns()
        own = time.thread_time_ns()
        for i in range(number):
            start = clock()
            op()
            times[i] = clock() - start
        own = time.thread_time_ns() - own
        flush()
        cpu = time.process_time_ns() - cpu
    finally:
        if enabled:
            gc.enable()
    return statistics.median(times) / 1e9, own / number / 1e9, cpu / number / 1e9


def _interleaved(
    plain: Callable[[], None], hooked: Callable[[], None], flush: Callable[[], object]
) -> tuple[Figures, Figures]:
    """(latency, caller CPU, CPU) per call of each, in alternating bursts: medians of the bursts.

    On a shared machine the load moves during a run; alternating the two keeps
    a burst of load from landing on one side only, and the median of the
    bursts keeps one disturbed burst from deciding the figure.
    """
    _burst(hooked, 20, flush)  # warm up, and size the bursts on the slower side
    estimate = _burst(hooked, 50, flush)[0]
    number = max(20, int(BURST / max(estimate, 1e-9)))
    runs: tuple[list[Figures], list[Figures]] = ([], [])
    for _ in range(BURSTS):
        runs[0].append(_burst(plain, number, _nothing))
        runs[1].append(_burst(hooked, number, flush))
    return _medians(runs[0]), _medians(runs[1])


def _medians(runs: list[Figures]) -> Figures:
    latency, own, cpu = (statistics.median(r[i] for r in runs) for i in range(3))
    return latency, own, cpu


def _nothing() -> None:
    return None
