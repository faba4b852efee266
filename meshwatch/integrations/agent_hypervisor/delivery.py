"""Background delivery: the runtime's thread notes what happened, one worker emits the events.

A hook in background mode does not build the event, nor call ``bus.emit``
(and, through it, every collector). It appends one small tuple to a bounded
deque: the function that builds the events, a snapshot of the runtime state it
needs (the values that can change later, such as a step's state or retry
count, are copied; immutable records are passed as they are), the caller's
causal trace and the time. One worker thread runs the builders in order, so
the events reach the bus in the order the runtime changed state, stamped with
the time the change happened rather than the time the worker got to it.

The worker keeps its own time while the runtime is busy: it drains the queue
every :data:`BATCH_DELAY` seconds, woken by its own timer, never by the
runtime's thread. After :data:`PARK_AFTER` rounds without an item (one
second) it parks, sleeping without any wake-up until the next item, whose
hook then releases the lock it waits on (one lock release; the items of the
batch after it cost nothing more). Why not wake it from the first item of
every batch, as this module did before: waking a thread is a futex call and a
scheduling decision on the runtime's thread, and the woken worker wants the
GIL back at once. Measured on the bench's bursts (median ratios, one fresh
process each), the saga step cost the runtime's thread 1.36x to 1.67x and the
elevation 1.26x to 1.62x from one process to the next (nine processes), where
the same hooks with the worker on its own timer gave 1.30-1.34x and
1.20-1.27x (five): the scheduler's placement of the two threads decided it. What a poll costs the runtime's thread (the GIL,
for the worker's few bytecodes and its drain) it would have cost anyway. So
an event reaches the bus at most :data:`BATCH_DELAY` after its call while the
runtime is busy, and that plus a wake-up after a quiet second. While
draining, the worker releases the GIL every :data:`YIELD_EVERY` items, so a
runtime thread that wants it back waits for a few items' builds rather than
the interpreter's 5 ms switch interval (releasing it after every item costs
more than the items).

Nothing grows without bound: past ``max_queue`` items the newest is dropped
and counted (``meshwatch_events_dropped_total{component="agent_hypervisor",reason="queue_full"}``,
logged at most once a minute), never raised and never waited for. A builder
that raises is counted as a hook error. The worker holds no reference to its
:class:`Delivery`, so a handle that is dropped without ``close()`` does not
leak its thread: the thread ends when the handle is collected. At interpreter
exit every live delivery is drained (for at most :data:`EXIT_TIMEOUT` s); in a
forked child the parent's queue is discarded (the parent delivers it) and a
fresh worker starts on the child's first event. This module's exit handler is
registered after the audit trail's (importing it imports the instrumentation
package, trail included), and exit handlers run last-registered first: the
events still queued at exit reach the trail before it flushes.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from meshwatch.instrumentation.context import current_trace, use_trace
from meshwatch.instrumentation.drops import RateLimitedLog, record_event_drop
from meshwatch.instrumentation.trace import CausalTraceId
from meshwatch.integrations.agent_hypervisor.hooks import COMPONENT, After, Hooks

MAX_QUEUE: Final = 100_000
BATCH_DELAY: Final = 0.02
PARK_AFTER: Final = 50  # empty rounds (of BATCH_DELAY) before the worker parks: one second
EXIT_TIMEOUT: Final = 2.0
YIELD_EVERY: Final = 32
QUEUE_FULL: Final = "queue_full"
SYNC: Final = "sync"
BACKGROUND: Final = "background"
DELIVERIES: Final = (BACKGROUND, SYNC)

_log = logging.getLogger("meshwatch.integrations.agent_hypervisor")
_rate_limited = RateLimitedLog(_log)
_time = time.time
_yield = time.sleep

# (builder, its arguments, the caller's trace, when it happened as a Unix time)
Item = tuple[Callable[..., None], tuple[Any, ...], CausalTraceId | None, float]


class _Moment(threading.local):
    """When the change the worker is building happened; None on every other thread.

    The class default makes the read on a thread that never set it (the
    runtime's, with sync delivery) a plain lookup rather than a caught
    AttributeError.
    """

    at: float | None = None


_moment = _Moment()


def moment() -> datetime | None:
    """When the change being built happened (on the worker), or None (in the runtime's call)."""
    at = _moment.at
    return None if at is None else datetime.fromtimestamp(at, UTC)


class _Shared:
    """The state the worker and the handle share; the worker keeps this, never the handle.

    The worker's two waits are on plain locks, held while there is nothing to
    wait for and released to wake it: ``gate`` by the first item after the
    worker parked, ``hurry`` by ``flush()`` and ``close()`` to cut a round's
    wait short. A lock's acquire and release run in C, so waking it costs one
    release, and the woken worker holds the GIL for a few bytecodes before its
    next wait (``threading.Event`` runs a Condition's Python on both sides).

    ``asleep`` is True when the next item must open the gate: the worker sets
    it before it looks at the queue one last time and parks, so an item
    queued from then on either keeps it from parking or opens the gate. The
    queue is the same deque for the handle's whole life (a forked child
    empties it), so a hook can hold it.
    """

    def __init__(self, hooks: Hooks) -> None:
        self.hooks = hooks
        self.queue: deque[Item] = deque()
        self.reset()

    def reset(self) -> None:
        """Fresh synchronisation and an empty queue (a new handle, or a forked child)."""
        self.queue.clear()
        self.gate = _closed_lock()
        self.hurry = _closed_lock()
        self.lock = threading.Lock()  # held by the worker while it drains
        self.stop = False
        self.asleep = True


def _closed_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


def _open(lock: threading.Lock) -> None:
    """Release ``lock`` to wake its waiter; already released (a wake-up pending) is fine."""
    with contextlib.suppress(RuntimeError):  # two threads raced to wake it: one is enough
        lock.release()


def _deliver(item: Item, failed: Callable[[str], None]) -> None:
    """Build one item's events, under the caller's trace and at the caller's time.

    A function of its own, so that no local of the worker's loop keeps the
    last item (and through it the observer and the handle) alive while the
    worker waits.
    """
    builder, args, trace, at = item
    _moment.at = at
    try:
        if trace is None:
            builder(*args)
        else:
            with use_trace(trace):
                builder(*args)
    except Exception:
        failed(f"deliver:{getattr(builder, '__name__', 'event')}")
    finally:
        _moment.at = None


def _work(shared: _Shared) -> None:
    queue = shared.queue
    gate = shared.gate
    failed = shared.hooks.failed
    hurry = shared.hurry
    idle = PARK_AFTER  # start parked
    while True:
        if idle >= PARK_AFTER:  # quiet for a while: park until the next item opens the gate
            idle = 0
            shared.asleep = True
            if not queue:  # an item queued from here on finds asleep set and opens the gate
                gate.acquire()
        hurry.acquire(True, BATCH_DELAY)  # let the batch collect; flush() cuts it short
        drained = bool(queue)
        done = 0
        with shared.lock:
            while queue:
                _deliver(queue.popleft(), failed)
                done += 1
                if not done % YIELD_EVERY:
                    # Hand the GIL back now and then: a runtime thread waiting for it (back
                    # from a system call) waits for a few items, not a whole switch interval.
                    _yield(0)
        hurry.acquire(False)  # a flush() that came while draining is answered
        if shared.stop and not queue:
            return
        idle = 0 if drained else idle + 1


def _stop(shared: _Shared) -> None:
    shared.stop = True
    _open(shared.hurry)
    _open(shared.gate)


class Delivery:
    """The bounded queue and the worker thread of one instrumentation handle."""

    def __init__(self, hooks: Hooks, *, max_queue: int = MAX_QUEUE) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_queue}")
        self._max = max_queue
        self._start_lock = threading.Lock()
        self._shared = _Shared(hooks)
        self.put = self._putter()
        self._start()
        _LIVE.add(self)

    def _start(self) -> None:
        shared = self._shared
        self._thread: threading.Thread | None = threading.Thread(
            target=_work, args=(shared,), name="meshwatch-agent-hypervisor-delivery", daemon=True
        )
        self._thread.start()
        self._finalizer = weakref.finalize(self, _stop, shared)

    @property
    def thread(self) -> threading.Thread | None:
        """The worker (None after close, or in a forked child before its first event)."""
        return self._thread

    def _putter(self) -> Callable[..., None]:
        """``put(builder, *args)``: queue ``builder(*args)`` for the worker.

        All the runtime's thread pays for. Never blocks and never raises: a
        full queue drops the item and counts it. A closure, as
        :meth:`handover`'s hooks are, so what it reads are cells, not
        attributes: every saga event is queued through it (four a saga step,
        about 10 bytecodes less each).
        """
        shared = self._shared
        queue = shared.queue  # stable for the handle's life: a fork's reset() empties it
        limit = self._max
        wake_worker = self._wake_worker
        full = self._full

        def put(builder: Callable[..., None], *args: Any) -> None:
            if len(queue) < limit:
                queue.append((builder, args, current_trace(), _time()))
                if shared.asleep:
                    wake_worker()
            else:
                full()

        return put

    def handover(self, builder: Callable[[Any, Any, Any, Any], None]) -> After:
        """An ``after`` hook that queues ``builder(result, args, kwargs, look)``.

        What :meth:`put` does, in the hook itself: the wrapper's one call
        to it is the only Python call on the runtime's thread, where
        ``partial(put, builder)`` made two (the partial, then the bound
        method, neither of which the interpreter can inline), about 0.5 us
        per hooked call (elevation A/B, in-process).
        """
        shared = self._shared
        queue = shared.queue
        limit = self._max
        wake_worker = self._wake_worker
        full = self._full

        def after(result: Any, args: Any, kwargs: Any, look: Any) -> None:
            if len(queue) < limit:
                queue.append((builder, (result, args, kwargs, look), current_trace(), _time()))
                if shared.asleep:
                    wake_worker()
            else:
                full()

        return after

    def _wake_worker(self) -> None:
        """The first item after the worker's last wake-up: wake it (start one in a forked child).

        A closed delivery has no worker and never gets one: what was just
        queued is discarded, so nothing sits in the queue after ``close()``.
        """
        shared = self._shared
        if self._thread is None and not self._restart():
            shared.queue.clear()
            return
        shared.asleep = False
        _open(shared.gate)

    def _full(self) -> None:
        record_event_drop(COMPONENT, QUEUE_FULL)
        _rate_limited.warning(
            QUEUE_FULL,
            "meshwatch's agent-hypervisor delivery queue is full (%d); events dropped",
            self._max,
        )

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is on the bus; False if ``timeout`` ran out."""
        deadline = time.monotonic() + timeout
        shared = self._shared
        if shared.queue:
            _open(shared.hurry)
        while True:
            if not shared.queue and shared.lock.acquire(blocking=False):
                shared.lock.release()
                if not shared.queue:
                    return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(0.001, remaining))

    def close(self, timeout: float = 5.0) -> bool:
        """Deliver what is queued (within ``timeout``), stop the worker and wait for it to end.

        Returns whether everything queued was delivered. Idempotent.
        """
        _LIVE.discard(self)
        thread = self._thread
        if thread is None:
            return not self._shared.queue
        delivered = self.flush(timeout)
        self._finalizer()
        thread.join(timeout)
        self._thread = None
        self._shared.asleep = True  # a late item finds no worker and is discarded
        return delivered and not thread.is_alive()

    def _restart(self) -> bool:
        """Start a worker in a forked child (the parent's thread does not exist there).

        False once the delivery is closed: nothing is queued then.
        """
        with self._start_lock:
            if self._thread is None and self in _LIVE:
                self._start()
            return self._thread is not None

    def _forked(self) -> None:
        """In a forked child: forget the parent's worker and queue (the parent delivers those)."""
        self._finalizer.detach()
        self._thread = None
        self._start_lock = threading.Lock()
        self._shared.reset()  # the same deque, emptied: the hooks hold it


_LIVE: weakref.WeakSet[Delivery] = weakref.WeakSet()


def _drain_at_exit() -> None:
    for delivery in list(_LIVE):
        delivery.close(EXIT_TIMEOUT)


def _after_fork_in_child() -> None:
    for delivery in list(_LIVE):
        delivery._forked()


atexit.register(_drain_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = [
    "BACKGROUND",
    "BATCH_DELAY",
    "DELIVERIES",
    "MAX_QUEUE",
    "PARK_AFTER",
    "QUEUE_FULL",
    "SYNC",
    "Delivery",
    "moment",
]
