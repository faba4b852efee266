"""Cases for the ring alerts: per-agent breach rate, and elevation that ended vs. goes on."""

from __future__ import annotations

from collections.abc import Mapping

from meshwatch.alerts.catalogue import (
    ELEVATION_TOO_LONG,
    HIGH_RING_BREACH_RATE,
)
from meshwatch.alerts.model import AlertRule
from meshwatch.alerts.ruletests.model import (
    AlertCheck,
    Case,
    Series,
    at_minute,
    constant,
    counter,
    fired,
    minutes,
)
from meshwatch.alerts.ruletests.subjects import SESSIONS, agent
from meshwatch.alerts.ruletests.threshold import ThresholdProof, threshold_cases
from meshwatch.instrumentation.catalogue import (
    RING_BREACHES,
    RING_ELEVATED,
    RING_ELEVATION_DURATION,
)
from meshwatch.settings import AlertsSettings


def _breaches(value: float, at: int, subject: int) -> list[Series]:
    """The agent breaches at ``value`` per second in total, split over two sessions.

    Per session it stays at half the rate, so the alert only fires because it
    sums by agent, which the tutorial's per-series rate did not.
    """
    return [
        Series(RING_BREACHES.name, {**agent(subject), "session_id": s}, counter(value / 2, at + 2))
        for s in SESSIONS
    ]


def _elevation(value: float, at: int, subject: int, elevated: int = 1) -> list[Series]:
    return [
        Series(RING_ELEVATION_DURATION.name, agent(subject), constant(value, at + 2)),
        Series(RING_ELEVATED.name, agent(subject), constant(elevated, at + 2)),
    ]


def cases(s: AlertsSettings, rules: Mapping[str, list[AlertRule]]) -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {}
    if HIGH_RING_BREACH_RATE.name in rules:
        proof = ThresholdProof(
            HIGH_RING_BREACH_RATE,
            "an agent's breach rate over its sessions",
            _breaches,
            agent,
            warmup=s.rate_window,
        )
        out[HIGH_RING_BREACH_RATE.name] = threshold_cases(
            proof, s, rules[HIGH_RING_BREACH_RATE.name]
        )
    if ELEVATION_TOO_LONG.name in rules:
        cfg = s.elevation_too_long
        proof = ThresholdProof(ELEVATION_TOO_LONG, "a live elevation's length", _elevation, agent)
        found = threshold_cases(proof, s, rules[ELEVATION_TOO_LONG.name])
        long = max(cfg.threshold * 10, 3600.0)
        at = minutes(cfg.for_) + 3
        ended = Case(
            f"stays silent after an elevation of {long:g}s that already ended",
            tuple(_elevation(long, at, 0, elevated=0)),
            (AlertCheck(at_minute(at), ELEVATION_TOO_LONG.name),),
        )
        # The gauge grows live while elevated, 60 s per minute, so the base tier
        # must wait until it passed the limit and then for ``for`` on top.
        grow_at = minutes(cfg.threshold + 1) + minutes(cfg.for_) + 3
        limits = (cfg.threshold, cfg.critical_threshold)
        since = (grow_at - minutes(cfg.for_) - 1) * 60.0
        growing = Case(
            "fires while a live elevation grows past the limit",
            (
                Series(RING_ELEVATION_DURATION.name, agent(0), counter(1, grow_at + 2)),
                Series(RING_ELEVATED.name, agent(0), constant(1, grow_at + 2)),
            ),
            (
                AlertCheck(
                    at_minute(grow_at),
                    ELEVATION_TOO_LONG.name,
                    tuple(
                        fired(rule, agent(0), grow_at * 60.0)
                        for rule, limit in zip(rules[ELEVATION_TOO_LONG.name], limits, strict=False)
                        if limit is not None and since > limit
                    ),
                ),
            ),
        )
        out[ELEVATION_TOO_LONG.name] = [*found, ended, growing]
    return out
