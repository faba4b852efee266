"""A small discrete-event scheduler: the demo's agents are generators that yield what they wait for.

Why not threads or asyncio: the demo must replay the same event sequence for
the same ``--seed``. Here one thread runs every agent, in the order of a
priority queue keyed by (virtual time, spawn order), so the sequence never
depends on wall-clock jitter; the runner only decides *when* virtual time
advances (in real time, or instantly in tests).

An agent process is a generator. It yields either a number (sleep that many
virtual seconds) or an :class:`Inbox` (resume with the next message put into
it). Each process runs every step inside its own :class:`contextvars.Context`,
started empty, as an asyncio task does: a span or causal trace made current
inside one agent never leaks into another, and ``with`` blocks may stay open
across yields. Whatever crosses from one agent to another travels in message
headers, as it would between processes.
"""

from __future__ import annotations

import contextvars
import heapq
import itertools
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

Process = Generator["float | Inbox", Any, None]


@dataclass(slots=True)
class _Task:
    process: Process
    context: contextvars.Context = field(default_factory=contextvars.Context)


class Inbox:
    """A FIFO of messages one process waits on (``msg = yield inbox``)."""

    def __init__(self, sim: Simulation) -> None:
        self._sim = sim
        self._items: deque[Any] = deque()
        self._waiters: deque[_Task] = deque()

    def put(self, item: Any) -> None:
        """Deliver ``item``: wakes the longest-waiting process now, or queues it."""
        if self._waiters:
            self._sim._schedule(self._waiters.popleft(), self._sim.now, item)
        else:
            self._items.append(item)

    def __len__(self) -> int:
        return len(self._items)

    def _wait(self, task: _Task) -> None:
        if self._items:
            self._sim._schedule(task, self._sim.now, self._items.popleft())
        else:
            self._waiters.append(task)


class Simulation:
    """Virtual time and the queue of processes due to run."""

    def __init__(self) -> None:
        self.now = 0.0
        self._queue: list[tuple[float, int, _Task, Any]] = []
        self._order = itertools.count()
        self._live: dict[int, _Task] = {}

    def spawn(self, process: Process, delay: float = 0.0) -> None:
        """Start ``process`` ``delay`` virtual seconds from now, in a fresh context."""
        task = _Task(process)
        self._live[id(task)] = task
        self._schedule(task, self.now + delay, None)

    @property
    def live(self) -> int:
        """Processes started and not yet finished (running, sleeping or waiting)."""
        return len(self._live)

    def close(self) -> None:
        """End every live process now, each inside its own context.

        Closing raises GeneratorExit at the process's ``yield``, so its ``with``
        blocks exit where they were entered: spans end and context tokens are
        reset in the context that set them. Left to the garbage collector, the
        same cleanup would run later, in an arbitrary context.
        """
        live, self._live = self._live, {}
        self._queue.clear()
        for task in live.values():
            task.context.run(task.process.close)

    def inbox(self) -> Inbox:
        return Inbox(self)

    def next_time(self) -> float | None:
        """Virtual time of the next due step, or None when nothing is scheduled."""
        return self._queue[0][0] if self._queue else None

    def run_until(self, until: float, max_steps: int | None = None) -> int:
        """Run every step due at or before ``until``; returns how many steps ran.

        With ``max_steps``, return after that many steps even if more are due
        (virtual time then stays at the last step run): the caller gets control
        back, to check for a stop, however much work is due.

        A process that raises propagates its exception: the demo is a
        deterministic program, and a bug in it should stop it loudly.
        """
        steps = 0
        while self._queue and self._queue[0][0] <= until:
            if max_steps is not None and steps >= max_steps:
                return steps
            when, _, task, value = heapq.heappop(self._queue)
            self.now = when
            steps += 1
            try:
                waited_for = task.context.run(task.process.send, value)
            except StopIteration:
                self._live.pop(id(task), None)
                continue
            except BaseException:
                self._live.pop(id(task), None)
                raise
            if isinstance(waited_for, Inbox):
                waited_for._wait(task)
            else:
                delay = float(waited_for)
                if not delay >= 0:
                    raise ValueError(f"a process yielded an invalid delay {waited_for!r}")
                self._schedule(task, when + delay, None)
        self.now = max(self.now, until)
        return steps

    def _schedule(self, task: _Task, when: float, value: Any) -> None:
        heapq.heappush(self._queue, (when, next(self._order), task, value))
