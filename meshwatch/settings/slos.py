"""SLO settings: objectives over good/total events, and the burn rates that page or ticket.

An SLO says what share of events must be good over a window of 28 or 30
days (its objective); the rest is its error budget. meshwatch generates, for
each SLO, the error ratio over every window an alert or panel reads, the
budget left, the time until it is spent, and the Google SRE workbook's
multiwindow, multi-burn-rate alerts. ``meshwatch.yaml`` replaces either list
as a whole::

    slos:
      objectives:
        - name: governance-latency
          sli: governance_latency
          latency_target: 0.1      # seconds: a bucket bound of the latency histogram
          objective: 99.5          # percent of evaluations within the target
          window: 28d
        - {name: task-success, sli: task_success, objective: 95, window: 30d}
      burn_rate_alerts:           # the workbook's pairs, as defaults
        - {factor: 14.4, long_window: 1h, short_window: 5m, severity: critical}

Giving ``objectives`` replaces the two default SLOs: restate the ones you keep,
or give ``[]`` for none. A latency target that is not a bucket bound of the
histogram is refused when the rules are generated (the settings do not know
the metric catalogue; :mod:`meshwatch.alerts.slis` does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from meshwatch.settings.alerts import Severity
from meshwatch.settings.loader import Duration, check

#: What an SLO counts, each as good events out of all events:
#: ``governance_latency``: policy evaluations that finish within ``latency_target``;
#: ``task_success``: ended tasks that completed rather than failed;
#: ``saga_success``: ended sagas that did not escalate to a human;
#: ``llm_success``: LLM calls that did not end in an error.
SliKind = Literal["governance_latency", "task_success", "saga_success", "llm_success"]
SLI_KINDS: tuple[SliKind, ...] = (
    "governance_latency",
    "task_success",
    "saga_success",
    "llm_success",
)

#: The SLO windows meshwatch supports: four weeks, or thirty days.
SLO_WINDOWS = (Duration("28d"), Duration("30d"))
_NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,62}")


@dataclass(frozen=True)
class Slo:
    """One SLO: ``objective`` percent of the ``sli``'s events are good over ``window``."""

    name: str
    sli: SliKind
    objective: float
    window: Duration = Duration("28d")
    latency_target: float | None = None

    def __post_init__(self) -> None:
        check(
            bool(_NAME_RE.fullmatch(self.name)),
            "name",
            f"must be lowercase letters, digits and '-', starting with a letter, got {self.name!r}",
        )
        check(
            0 < self.objective < 100,
            "objective",
            f"is a percentage strictly between 0 and 100, got {self.objective:g}",
        )
        check(
            self.window.seconds in {w.seconds for w in SLO_WINDOWS},
            "window",
            f"must be 28d or 30d, got {self.window}",
        )
        if self.sli == "governance_latency":
            check(
                self.latency_target is not None and self.latency_target > 0,
                "latency_target",
                "a governance_latency SLO needs a latency_target in seconds",
            )
        else:
            check(
                self.latency_target is None,
                "latency_target",
                f"only a governance_latency SLO has one, not a {self.sli} SLO",
            )

    @property
    def error_budget(self) -> float:
        """The share of events that may be bad: ``1 - objective``, as a ratio (0.005 for 99.5)."""
        return round((100 - self.objective) / 100, 12)


@dataclass(frozen=True)
class BurnRateAlert:
    """Fire at ``severity`` while both windows burn the budget faster than ``factor``.

    A burn rate of 1 spends exactly the budget over the SLO's window; 14.4
    spends 2% of a 30-day budget in an hour. The long window makes the alert
    significant, the short one makes it stop soon after the burn does.
    """

    factor: float
    long_window: Duration
    short_window: Duration
    severity: Severity

    def __post_init__(self) -> None:
        check(self.factor > 0, "factor", f"must be positive, got {self.factor:g}")
        check(
            0 < self.short_window.seconds < self.long_window.seconds,
            "short_window",
            f"must be shorter than long_window ({self.long_window}), got {self.short_window}",
        )
        for key, window in (("long_window", self.long_window), ("short_window", self.short_window)):
            check(window.seconds % 60 == 0, key, f"must be whole minutes, got {window}")


def _workbook() -> tuple[BurnRateAlert, ...]:
    """The Google SRE workbook's pairs (chapter "Alerting on SLOs", table 5-8)."""
    return (
        BurnRateAlert(14.4, Duration("1h"), Duration("5m"), "critical"),
        BurnRateAlert(6.0, Duration("6h"), Duration("30m"), "critical"),
        BurnRateAlert(3.0, Duration("1d"), Duration("2h"), "warning"),
        BurnRateAlert(1.0, Duration("3d"), Duration("6h"), "warning"),
    )


def _default_slos() -> tuple[Slo, ...]:
    """99% of policy evaluations within 100 ms; 95% of ended tasks completed, over 28 days."""
    return (
        Slo("governance-latency", "governance_latency", 99.0, Duration("28d"), 0.1),
        Slo("task-success", "task_success", 95.0, Duration("28d")),
    )


#: The ratio windows always recorded, whatever the alerts use, so panels can rely on them.
BASE_WINDOWS = tuple(Duration(w) for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d"))


@dataclass(frozen=True)
class SloSettings:
    """The SLOs and the burn-rate alerts every SLO gets.

    ``exhaustion_window`` is the window whose burn rate the time-to-exhaustion
    series extrapolates: "at the last hour's pace, the budget lasts ...".
    """

    objectives: tuple[Slo, ...] = field(default_factory=_default_slos)
    burn_rate_alerts: tuple[BurnRateAlert, ...] = field(default_factory=_workbook)
    exhaustion_window: Duration = Duration("1h")

    def __post_init__(self) -> None:
        seen: dict[str, int] = {}
        for index, slo in enumerate(self.objectives):
            check(
                slo.name not in seen,
                f"objectives[{index}].name",
                f"{slo.name!r} is already the name of objectives[{seen.get(slo.name)}]",
            )
            seen[slo.name] = index
            for alert_index, alert in enumerate(self.burn_rate_alerts):
                check(
                    alert.factor * slo.error_budget < 1,
                    f"objectives[{index}].objective",
                    f"{slo.objective:g}% leaves an error budget of {slo.error_budget:.4g}, so "
                    f"burn_rate_alerts[{alert_index}] ({alert.factor:g}x) would need more than "
                    "every event to fail: raise the objective or lower the factor",
                )
        pairs = [(a.long_window.seconds, a.short_window.seconds) for a in self.burn_rate_alerts]
        for index, pair in enumerate(pairs):
            check(
                pairs.index(pair) == index,
                f"burn_rate_alerts[{index}]",
                f"the window pair {self.burn_rate_alerts[index].long_window} and "
                f"{self.burn_rate_alerts[index].short_window} is already "
                f"burn_rate_alerts[{pairs.index(pair)}]",
            )
        check(
            self.exhaustion_window.seconds % 60 == 0 and self.exhaustion_window.seconds > 0,
            "exhaustion_window",
            "must be a positive number of whole minutes",
        )

    @property
    def windows(self) -> tuple[Duration, ...]:
        """Every window an error ratio is recorded over, shortest first, each once."""
        found = {w.seconds: w for w in BASE_WINDOWS}
        for alert in self.burn_rate_alerts:
            found.setdefault(alert.long_window.seconds, alert.long_window)
            found.setdefault(alert.short_window.seconds, alert.short_window)
        found.setdefault(self.exhaustion_window.seconds, self.exhaustion_window)
        return tuple(found[s] for s in sorted(found))
