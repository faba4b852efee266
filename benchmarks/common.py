"""Timing and memory helpers shared by the benchmark modules, and their result type.

Benchmarks report *ratios against a baseline measured in the same run*, never
absolute times: the machine (a shared 2-core CI box, a laptop on battery) moves
both numbers together, so the ratio is what stays comparable between runs.

Timing takes the minimum over several repeats (as :mod:`timeit` recommends): the
minimum is the run least disturbed by other processes, and the noise is one-sided
(interference only ever adds time). The garbage collector is paused while a
repeat runs so one repeat does not pay for the garbage of another.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Result:
    """One benchmark figure, its baseline from the same run, and its target.

    With a ``baseline`` the target bounds ``value / baseline`` (a ratio, e.g. 4.0
    for "at most 4x"); without one it bounds ``value`` itself, in ``unit`` (e.g.
    1024 bytes per event). A target of None marks a figure reported for context
    (e.g. the CPU a background thread spends beside a latency that has a target).
    """

    name: str
    value: float
    unit: str
    target: float | None
    baseline: float | None = None
    baseline_name: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """``value / baseline``, or None for an absolute figure."""
        if self.baseline is None:
            return None
        return self.value / self.baseline if self.baseline else float("inf")

    @property
    def compared(self) -> float:
        """The number the target bounds: the ratio if there is a baseline, else the value."""
        ratio = self.ratio
        return self.value if ratio is None else ratio

    @property
    def passed(self) -> bool:
        return self.target is None or self.compared <= self.target

    def line(self) -> str:
        """One human-readable line: measured values, ratio, target and PASS/OVER."""
        verdict = "PASS" if self.passed else "OVER"
        measured = f"{_fmt(self.value)} {self.unit}"
        x = "" if self.baseline is None else "x"
        bound = (
            "no target"
            if self.target is None
            else f"target <= {_fmt(self.target)}{x or ' ' + self.unit}  {verdict}"
        )
        if self.baseline is None:
            text = f"{self.name}: {measured}  {bound}"
        else:
            text = (
                f"{self.name}: {measured} vs {self.baseline_name} {_fmt(self.baseline)} {self.unit}"
                f"  ratio {self.compared:.2f}x  {bound}"
            )
        return f"{text}  ({self.note})" if self.note else text


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def seconds_per_call(
    fn: Callable[[], object], *, number: int | None = None, repeat: int = 100
) -> float:
    """The fastest of ``repeat`` runs of ``number`` calls to ``fn``, in seconds per call.

    Without ``number``, it is chosen so that one repeat takes about 2 ms: on a
    loaded machine a long repeat is almost always preempted somewhere, while
    the fastest of many short ones is a run that was not, for the measured
    code and its same-run baseline alike.
    """
    if number is None:
        number = _autorange(fn, budget_ns=2_000_000)
    best = min(_run(fn, number) for _ in range(repeat))
    return best / number / 1e9


def interleaved_seconds_per_call(
    fns: Mapping[str, Callable[[], object]], *, number: int | None = None, repeat: int = 100
) -> dict[str, float]:
    """Like :func:`seconds_per_call` for several functions, their repeats taken in turn.

    Round ``i`` runs one repeat of every function, one after another, and
    each function keeps its fastest repeat. A machine whose speed drifts
    during the run (another process starts, the CPU clock changes) then
    moves every figure alike, where timing them one after the other would
    put the drift into their ratio. Use it for a figure and its baseline.
    Without ``number``, each function's call count is chosen as in
    :func:`seconds_per_call`.
    """
    numbers = {
        name: number if number is not None else _autorange(fn, budget_ns=2_000_000)
        for name, fn in fns.items()
    }
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            best[name] = min(best[name], _run(fn, numbers[name]) / numbers[name])
    return {name: ns / 1e9 for name, ns in best.items()}


def seconds_once(fn: Callable[[], object], *, repeat: int = 5) -> float:
    """The fastest of ``repeat`` single calls to ``fn`` (for slow operations, e.g. a scrape)."""
    return min(_run(fn, 1) for _ in range(repeat)) / 1e9


def _run(fn: Callable[[], object], number: int) -> int:
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for _ in range(number):
            fn()
        return time.perf_counter_ns() - start
    finally:
        if enabled:
            gc.enable()


def _autorange(fn: Callable[[], object], *, budget_ns: int = 100_000_000) -> int:
    """A call count that makes one repeat last about ``budget_ns`` nanoseconds."""
    number = 1
    while True:
        elapsed = _run(fn, number)
        if elapsed >= budget_ns // 10:
            return max(1, number * budget_ns // max(1, elapsed))
        number *= 10


def retained_bytes(build: Callable[[], T]) -> tuple[T, int]:
    """Run ``build`` under tracemalloc; return its result and the bytes it keeps alive.

    "Kept alive" is the traced memory after ``build`` returns and a full garbage
    collection, minus the traced memory before: temporaries freed on the way do
    not count, the returned object graph does.
    """
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        gc.collect()
        before, _ = tracemalloc.get_traced_memory()
        result = build()
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return result, after - before


__all__ = [
    "Result",
    "interleaved_seconds_per_call",
    "retained_bytes",
    "seconds_once",
    "seconds_per_call",
]
