"""Governance evaluation latency as real policy engines show it: sub-millisecond, heavy-tailed.

A policy check is usually an in-memory lookup (a fraction of a millisecond);
now and then it misses a cache and fetches a policy or a trust record over the
network (milliseconds to tens of milliseconds). A single log-normal cannot
show both, so the model is a mixture of log-normals, which is what measured
latency histograms of such services look like: a sharp body and a long right
tail.

The healthy model keeps p99 in single-digit milliseconds, far below the
50 ms ``GovernanceLatencyHigh`` threshold; the degraded model (the policy
backend is sick) puts the median itself above it, so the alert fires on the
first evaluation of the incident scenario without depending on a bucket layout.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# Nothing real answers faster than this, nor slower than a client timeout.
MIN_MS = 0.02
MAX_MS = 5_000.0


@dataclass(frozen=True, slots=True)
class LogNormal:
    """One mixture component: ``weight`` of the calls, log-normal around ``median_ms``."""

    weight: float
    median_ms: float
    sigma: float

    def __post_init__(self) -> None:
        if not (self.weight > 0 and self.median_ms > 0 and self.sigma >= 0):
            raise ValueError(f"invalid latency component {self!r}")


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """A mixture of log-normal components; ``sample`` draws one evaluation in milliseconds."""

    name: str
    components: tuple[LogNormal, ...]

    def __post_init__(self) -> None:
        if not self.components:
            raise ValueError(f"latency model {self.name!r} has no components")

    def sample(self, rng: random.Random) -> float:
        """One evaluation latency in milliseconds, clamped to [MIN_MS, MAX_MS]."""
        total = sum(c.weight for c in self.components)
        pick = rng.random() * total
        chosen = self.components[-1]
        for component in self.components:
            pick -= component.weight
            if pick < 0:
                chosen = component
                break
        value = chosen.median_ms * math.exp(rng.gauss(0.0, chosen.sigma))
        return min(max(value, MIN_MS), MAX_MS)


# In-memory policy hit (most calls), cache miss with a local store read, and a
# remote trust lookup: p50 ~0.4 ms, p99 ~5 ms, a handful of calls in 10,000 above 50 ms.
HEALTHY = LatencyModel(
    "healthy",
    (
        LogNormal(0.90, 0.35, 0.6),
        LogNormal(0.09, 1.8, 0.7),
        LogNormal(0.01, 8.0, 0.8),
    ),
)

# The policy backend is overloaded: every call waits on it, a few retry.
# p50 ~80 ms, p99 ~1 s.
DEGRADED = LatencyModel(
    "degraded",
    (
        LogNormal(0.85, 80.0, 0.5),
        LogNormal(0.15, 350.0, 0.6),
    ),
)

# A rate-limited call is refused by the limiter before the policy runs.
RATE_LIMITER_FACTOR = 0.2
