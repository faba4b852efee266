"""Small PromQL builders, so rule modules read like the queries they produce.

They only join strings; metric names always come from the catalogue or
:mod:`meshwatch.alerts.external_metrics`, never from literals here.
"""

from __future__ import annotations

from collections.abc import Sequence

from meshwatch.settings import Duration


def sum_by(labels: Sequence[str], expr: str) -> str:
    """``sum by (a, b) (expr)``; ``sum(expr)`` when no label is kept."""
    if not labels:
        return f"sum({expr})"
    return f"sum by ({', '.join(labels)}) ({expr})"


def rate(series: str, window: str) -> str:
    """``rate(series[window])``; ``series`` may carry matchers."""
    return f"rate({series}[{window}])"


def sum_rate(labels: Sequence[str], series: str, window: str) -> str:
    """The per-second rate of ``series`` summed over everything but ``labels``."""
    return sum_by(labels, rate(series, window))


def at_least_events(
    expr: str, on: Sequence[str], per_second: str, window: Duration, min_events: int
) -> str:
    """``expr`` only where ``per_second`` amounted to at least ``min_events`` over ``window``.

    The minimum-volume guard of a ratio alert: ``per_second`` is the ratio's
    denominator rate, and ``rate * window_seconds`` the events it counted in
    the window. ``and on(labels)`` keeps ``expr``'s labels and value exactly
    (the guard only filters), matching each result with the volume of the same
    ``on`` labels: per agent, or fleet-wide with none. ``min_events`` 0 is no
    guard at all.
    """
    if min_events <= 0:
        return expr
    return f"{expr} and on({', '.join(on)}) ({per_second}) * {window.seconds:g} >= {min_events}"


def duration(seconds: float) -> Duration:
    """A Prometheus duration for ``seconds``, in the largest whole units (``1h15m``)."""
    if seconds < 0:
        raise ValueError(f"negative duration {seconds}")
    millis = round(seconds * 1000)
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    if millis or not parts:
        parts.append(f"{millis}ms")
    return Duration("".join(parts))
