"""The minimum-volume guard every ratio alert carries.

A ratio of rates says nothing over a handful of events: an agent that ended
two tasks and failed one has a 50% error ratio, and would page. As mature
mixins do, each ratio alert also requires its denominator (ended tasks,
policy decisions, ended sagas) to have counted at least
``alerts.<ratio>.min_events`` over the rate window. The guard is an
``and on(<labels>)`` filter, so the alert keeps the ratio's labels and value
exactly; its description says how much volume it needed.
"""

from __future__ import annotations

from collections.abc import Sequence

from meshwatch.alerts.promql import at_least_events
from meshwatch.settings import Duration
from meshwatch.settings.alerts import RatioAlert


def guarded(
    expr: str, cfg: RatioAlert, on: Sequence[str], per_second: str, window: Duration
) -> str:
    """``expr`` (the ratio compared with a threshold) only where the volume reaches the minimum.

    ``per_second`` is the ratio's denominator rate over ``window`` with the
    labels ``on`` (``()`` for a fleet-wide ratio).
    """
    return at_least_events(expr, on, per_second, window, cfg.min_events)


def volume_note(cfg: RatioAlert, counted: str) -> str:
    """The sentence a description ends with, naming the minimum (``counted``: "ended tasks")."""
    if cfg.min_events <= 0:
        return ""
    return f" The alert needs at least {cfg.min_events} {counted} in that window."
