"""Memory under large payloads: the bus is bounded in bytes, not only in events.

(a) 3,000 events with 1 MB payloads (distinct strings, as an agent attaching
    documents would emit) on a bus with the default settings, by tracemalloc:
    bytes the bus keeps alive per event. Each payload is over the 64 KiB cap
    and is cut to its small values, so an event costs about what a small one
    does. Target: <= 2 KiB per event (without the cap: about 1 MB).
(b) 6,000 events with 60 KiB payloads (just under the cap, so none is cut):
    bytes kept alive in all, against the bus's byte budget (``max_bytes``,
    256 MiB by default). The budget evicts the oldest events, so the total
    stays at about the budget whatever the count (without it: 360 MB, and
    6 GB at the default 100,000 events). Target: <= 1.1x the budget.
"""

from __future__ import annotations

from benchmarks.common import Result, retained_bytes
from meshwatch.instrumentation import EventType, HypervisorEvent, HypervisorEventBus
from meshwatch.instrumentation.bus import DEFAULT_MAX_BYTES

HUGE_EVENTS, HUGE_BYTES = 3_000, 1_000_000
NEAR_EVENTS, NEAR_BYTES = 6_000, 60 * 1024


def _fill(count: int, size: int) -> HypervisorEventBus:
    bus = HypervisorEventBus()
    filler = "x" * (size - 8)
    for i in range(count):
        document = f"{i:08d}" + filler  # a new string each time, as real documents are
        bus.emit(
            HypervisorEvent(
                EventType.VFS_WRITE,
                f"session-{i % 100}",
                f"did:mesh:agent-{i % 10}",
                payload={"path": f"/docs/{i}.txt", "content": document},
            )
        )
    return bus


def bench_huge() -> Result:
    bus, kept = retained_bytes(lambda: _fill(HUGE_EVENTS, HUGE_BYTES))
    return Result(
        f"(a) bytes kept per event, {HUGE_EVENTS:,} events with 1 MB payloads",
        kept / HUGE_EVENTS,
        "bytes",
        target=2048.0,
        note=f"{kept / 2**20:,.1f} MiB kept for {bus.event_count:,} events;"
        f" the bus estimates {bus.retained_bytes / 2**20:,.1f} MiB",
    )


def bench_near_cap() -> Result:
    bus, kept = retained_bytes(lambda: _fill(NEAR_EVENTS, NEAR_BYTES))
    mib = 2**20
    return Result(
        f"(b) bytes kept, {NEAR_EVENTS:,} events with 60 KiB payloads",
        kept / mib,
        "MiB",
        target=1.1,
        baseline=DEFAULT_MAX_BYTES / mib,
        baseline_name="the byte budget",
        note=f"{bus.event_count:,} of {NEAR_EVENTS:,} events retained;"
        f" the bus estimates {bus.retained_bytes / mib:,.1f} MiB",
    )


def run() -> list[Result]:
    return [bench_huge(), bench_near_cap()]
