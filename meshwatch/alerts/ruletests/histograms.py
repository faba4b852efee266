"""Histogram bucket series whose estimated quantile is a chosen value, in two bucket layouts.

``histogram_quantile`` interpolates linearly inside the bucket the quantile
falls in. Putting every observation in one bucket ``(lo, hi]`` makes the
estimate ``lo + q * (hi - lo)``, so bucket bounds can be solved for any target
value. Two layouts with different bounds (and a different number of buckets)
prove that an alert does not depend on the catalogue's bucket layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from meshwatch.alerts.ruletests.model import Series, num

Layout = Literal["fine", "coarse"]


def _bounds(value: float, quantile: float, layout: Layout) -> tuple[tuple[float, ...], int]:
    """Finite bucket bounds and the index of the bucket holding every observation."""
    if value == 0:
        return (0.0, 1.0), 0  # everything observed at 0: every quantile is 0
    if layout == "fine":
        top = 2 * value / (1 + quantile)  # observations in (top/2, top]
        return (top / 4, top / 2, top, top * 2), 2
    top = value / (0.1 + 0.9 * quantile)  # observations in (top/10, top]
    return (top / 10, top, top * 10), 1


def bucket_series(
    metric: str,
    labels: Mapping[str, str],
    value: float,
    quantile: float,
    samples: int,
    *,
    layout: Layout = "fine",
    per_minute: float = 60.0,
) -> list[Series]:
    """``metric``'s bucket counters for ``per_minute`` observations whose ``quantile`` is ``value``."""
    bounds, holding = _bounds(value, quantile, layout)
    series = []
    for index, bound in (*enumerate(bounds), (len(bounds), None)):
        count = per_minute if index >= holding else 0.0
        le = "+Inf" if bound is None else num(bound)
        series.append(Series(f"{metric}_bucket", {**labels, "le": le}, f"0+{num(count)}x{samples}"))
    return series
