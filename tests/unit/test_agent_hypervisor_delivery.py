"""Background delivery (the default of ``instrument()``): off the runtime's thread, bounded, drained.

The behaviour tests of tests/unit/test_agent_hypervisor.py run in both delivery
modes; these are about the queue and its worker themselves.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from datetime import UTC, datetime

import pytest
from hypervisor import ExecutionRing, RingElevationManager

from meshwatch.instrumentation.bus import HypervisorEventBus
from meshwatch.instrumentation.drops import event_drops
from meshwatch.instrumentation.events import EventType, HypervisorEvent
from meshwatch.integrations.agent_hypervisor import BACKGROUND, SYNC, instrument
from meshwatch.integrations.agent_hypervisor.delivery import (
    BATCH_DELAY,
    PARK_AFTER,
    QUEUE_FULL,
    Delivery,
)
from meshwatch.integrations.agent_hypervisor.hooks import COMPONENT, Hooks
from tests.integration.helpers.poll import wait_until

AGENT = "did:mesh:analyst"
WORKER = "meshwatch-agent-hypervisor-delivery"


def _grant(manager: RingElevationManager, agent: str = AGENT) -> str:
    granted = manager.request_elevation(
        agent, "s1", ExecutionRing.RING_3_SANDBOX, ExecutionRing.RING_2_STANDARD, trust_score=0.9
    )
    return granted.elevation_id


class _Gate:
    """A subscriber that holds the worker inside its first emit until opened."""

    def __init__(self, bus: HypervisorEventBus) -> None:
        self.open = threading.Event()
        self.entered = threading.Event()
        self.threads: set[str] = set()
        bus.subscribe(None, self)

    def __call__(self, event: HypervisorEvent) -> None:
        self.threads.add(threading.current_thread().name)
        self.entered.set()
        self.open.wait(10)


def test_the_runtime_never_waits_for_delivery_and_events_arrive_in_order() -> None:
    bus = HypervisorEventBus()
    gate = _Gate(bus)
    manager = RingElevationManager()
    with instrument(manager, bus=bus) as handle:
        assert handle.delivery == BACKGROUND, "the default"
        first = _grant(manager)
        assert gate.entered.wait(5), "the worker took the first event"
        # The worker is stuck in a subscriber; the runtime's calls still return at once.
        manager.revoke_elevation(first)
        second = _grant(manager, "did:mesh:other")
        assert not handle.flush(0.05), "flush gives up at its timeout while the worker is stuck"
        gate.open.set()
        assert handle.flush(5)
        kinds = [(e.event_type, e.payload["elevation_id"]) for e in bus.all_events]
    assert kinds == [
        (EventType.RING_ELEVATED, first),
        (EventType.RING_DEMOTED, first),
        (EventType.RING_ELEVATED, second),
    ]
    assert gate.threads == {WORKER}, "built and emitted off the runtime's thread"


def test_an_event_is_dated_when_the_runtime_changed_state_not_when_it_was_delivered() -> None:
    bus = HypervisorEventBus()
    gate = _Gate(bus)
    manager = RingElevationManager()
    with instrument(manager, bus=bus) as handle:
        elevation = _grant(manager)
        assert gate.entered.wait(5)
        manager.revoke_elevation(elevation)
        revoked_by = datetime.now(UTC)
        time.sleep(0.05)
        gate.open.set()
        assert handle.flush(5)
    (revoke,) = bus.query(event_type=EventType.RING_DEMOTED)
    assert revoke.timestamp <= revoked_by


def test_sync_delivery_emits_inside_the_runtimes_call() -> None:
    bus = HypervisorEventBus()
    seen: list[str] = []
    bus.subscribe(None, lambda event: seen.append(threading.current_thread().name))
    manager = RingElevationManager()
    with instrument(manager, bus=bus, delivery=SYNC):
        _grant(manager)
        assert seen == [threading.current_thread().name], "on the bus when the call returns"


def test_a_full_queue_drops_and_counts_the_newest_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = HypervisorEventBus()
    gate = _Gate(bus)
    delivery = Delivery(Hooks(), max_queue=3)
    before = event_drops(COMPONENT, QUEUE_FULL)

    def emit(n: int) -> None:
        bus.emit(HypervisorEvent(EventType.RING_ASSIGNED, payload={"n": n}))

    try:
        delivery.put(emit, 0)
        assert gate.entered.wait(5), "the worker is stuck in the first emit, the queue is empty"
        with caplog.at_level(logging.DEBUG, logger="meshwatch.integrations.agent_hypervisor"):
            for n in range(1, 11):
                delivery.put(emit, n)
        dropped = event_drops(COMPONENT, QUEUE_FULL) - before
        assert dropped == 7, "three fit; the seven newest are dropped, none raised"
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, "logged once, the repeats at DEBUG"
        gate.open.set()
        assert delivery.flush(5)
    finally:
        gate.open.set()
        assert delivery.close()
    assert [e.payload["n"] for e in bus.all_events] == [0, 1, 2, 3]


def test_close_delivers_what_is_queued_stops_the_worker_and_unhooks() -> None:
    bus = HypervisorEventBus()
    manager = RingElevationManager()
    handle = instrument(manager, bus=bus)
    worker = handle._delivery.thread  # type: ignore[union-attr]
    assert worker is not None and worker.is_alive()
    for n in range(50):
        manager.revoke_elevation(_grant(manager, f"did:mesh:{n}"))
    handle.close()
    assert bus.emitted_count == 100, "everything queued was delivered before close returned"
    assert not worker.is_alive(), "the worker ended"
    _grant(manager, "did:mesh:after")
    assert bus.emitted_count == 100 and "request_elevation" not in vars(manager)
    handle.close()  # idempotent


def test_a_handle_dropped_without_close_does_not_leak_its_thread() -> None:
    bus = HypervisorEventBus()

    def forgotten() -> threading.Thread:
        manager = RingElevationManager()
        handle = instrument(manager, bus=bus)
        _grant(manager)
        assert handle.flush()
        worker = handle._delivery.thread  # type: ignore[union-attr]
        assert worker is not None
        return worker

    worker = forgotten()
    gc.collect()
    wait_until(lambda: not worker.is_alive(), timeout=10, what="the orphaned worker ending")
    assert bus.emitted_count == 1


def test_an_error_while_building_is_counted_and_the_worker_goes_on() -> None:
    bus = HypervisorEventBus()
    hooks = Hooks()
    delivery = Delivery(hooks)

    def broken() -> None:
        raise ValueError("meshwatch bug")

    try:
        delivery.put(broken)
        delivery.put(lambda: bus.emit(HypervisorEvent(EventType.RING_ASSIGNED)))
        assert delivery.flush(5)
    finally:
        delivery.close()
    assert hooks.errors == {"deliver:broken": 1}
    assert bus.emitted_count == 1


def test_an_unknown_delivery_is_refused() -> None:
    manager = RingElevationManager()
    with pytest.raises(ValueError, match="delivery must be one of background, sync"):
        instrument(manager, bus=HypervisorEventBus(), delivery="later")
    assert "request_elevation" not in vars(manager)


def test_the_worker_drains_on_its_own_time_and_parks_when_the_runtime_is_quiet() -> None:
    """Busy: no item wakes the worker (it keeps its own time). Quiet: it parks; an item wakes it."""
    bus = HypervisorEventBus()
    delivery = Delivery(Hooks())
    shared = delivery._shared

    def emit(n: int) -> None:
        bus.emit(HypervisorEvent(EventType.RING_ASSIGNED, payload={"n": n}))

    try:
        assert shared.asleep, "a new worker is parked"
        delivery.put(emit, 0)
        assert not shared.asleep, "the first item woke it"
        wait_until(lambda: bus.emitted_count == 1, timeout=5, what="the event, with no flush")
        assert not shared.asleep, "after a drain it keeps its own time: the next item wakes nothing"
        delivery.put(emit, 1)
        wait_until(lambda: bus.emitted_count == 2, timeout=5, what="the second, with no flush")
        quiet = PARK_AFTER * BATCH_DELAY
        wait_until(lambda: shared.asleep, timeout=10 + 5 * quiet, what="the worker parking")
        delivery.put(emit, 2)
        wait_until(lambda: bus.emitted_count == 3, timeout=5, what="the event that woke it")
    finally:
        assert delivery.close()
    assert [e.payload["n"] for e in bus.all_events] == [0, 1, 2]
    assert delivery.thread is None
