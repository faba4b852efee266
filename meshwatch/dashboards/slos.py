"""SLOs: how each SLO stands against its objective, and how fast it spends its error budget.

Questions it answers, for every SLO in ``settings.slos`` (one row each):

* What share of events is good right now (over 5m and 1h), against the objective?
* How much of the error budget for the SLO's window (28 or 30 days) is left?
* How fast does it burn over each window, against the factors of the
  burn-rate alerts (``SLOErrorBudgetBurn``): which pairs fire, which come near?
* At the pace of ``slos.exhaustion_window``, when is the budget spent?

Every panel reads the SLO's recorded series (``slo:sli_error:ratio_rate<window>``,
``slo:error_budget:*``), the same ones the alerts evaluate.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from meshwatch.alerts import slos as rules
from meshwatch.alerts.catalogue import SLO_ERROR_BUDGET_BURN
from meshwatch.alerts.slis import SliEvents
from meshwatch.dashboards.common import (
    NONE,
    RATIO,
    SECONDS,
    Grid,
    below_levels,
    dashboard,
    datasource_variable,
    levels,
    prom,
    runbooks,
    stat,
    timeseries,
)
from meshwatch.settings import Duration, Settings, Slo

SLUG = "slos"
#: The windows the SLI-now panel shows: the default fastest page's short and long window.
NOW_WINDOWS = (Duration("5m"), Duration("1h"))
DAY = 86_400


def _alert_windows(settings: Settings) -> list[Duration]:
    """The windows the burn-rate alerts read, shortest first (the burn panel draws each)."""
    pairs = settings.slos.burn_rate_alerts
    found = {w.seconds: w for p in pairs for w in (p.long_window, p.short_window)}
    return [found[s] for s in sorted(found)] or [NOW_WINDOWS[0]]


def _slo_row(settings: Settings, grid: Grid, slo: Slo) -> None:
    what = SliEvents(slo).what()
    budget = rules.budget(slo)
    links = runbooks(settings, SLO_ERROR_BUDGET_BURN)
    grid.row(f"{slo.name}: {slo.objective:g}% of {what} over {slo.window}")
    grid.add(
        stat(
            f"{slo.name}: SLI now",
            f"Share of {what} over the last 5m and 1h: 1 - the recorded error ratio. Red "
            f"below the objective ({slo.objective:g}%). No value: no event in the window.",
            [
                prom(f"1 - {rules.select(rules.ratio_record(w), slo)}", rules.window_name(w))
                for w in NOW_WINDOWS
            ],
            unit=RATIO,
            steps=below_levels([(slo.objective / 100, "critical")]),
        ),
        w=5,
        h=7,
    )
    grid.add(
        stat(
            f"{slo.name}: error budget remaining",
            f"Share of the {slo.window} error budget ({budget} of events may be bad) not yet "
            "spent, weighted by traffic: 100% is untouched, 0% spent, below 0 overspent.",
            [prom(rules.select(rules.BUDGET_REMAINING, slo), "remaining")],
            unit=RATIO,
            steps=below_levels([(0.0, "critical"), (0.25, "warning")]),
        ),
        w=4,
        h=7,
    )
    pairs = settings.slos.burn_rate_alerts
    grid.add(
        timeseries(
            f"{slo.name}: burn rate per window",
            "Error ratio over each window the alerts read, divided by the error budget: 1 "
            "spends the budget exactly over the SLO window. The dashed lines are the alert "
            "factors (red pages, orange tickets); a pair fires while both its windows are "
            "above its factor.",
            [prom(rules.burn_rate(slo, w), rules.window_name(w)) for w in _alert_windows(settings)],
            unit=NONE,
            steps=levels([(p.factor, p.severity) for p in pairs]),
            links=links,
        ),
        w=10,
        h=7,
    )
    grid.add(
        stat(
            f"{slo.name}: time to exhaustion",
            f"How long the budget left lasts at the burn rate of the last "
            f"{rules.window_name(settings.slos.exhaustion_window)}: 0 once spent. No value: "
            "nothing burns. Red under a day, orange under the SLO window.",
            [prom(rules.select(rules.BUDGET_EXHAUSTION, slo), "exhaustion")],
            unit=SECONDS,
            steps=below_levels([(DAY, "critical"), (slo.window.seconds, "warning")]),
            links=links,
        ),
        w=5,
        h=7,
    )


def build(settings: Settings) -> Dashboard:
    """The SLO dashboard: one row per SLO (no panels when settings have no SLO)."""
    grid = Grid()
    for slo in settings.slos.objectives:
        _slo_row(settings, grid, slo)
    return dashboard(
        settings,
        slug=SLUG,
        title="SLOs",
        description=(__doc__ or "").strip().splitlines()[0],
        tags=["slo"],
        grid=grid,
        variables=[datasource_variable()],
    )
