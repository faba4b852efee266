"""SLO rules: error ratios per window, budget left, time to exhaustion, burn-rate alerts.

For every SLO in ``settings.slos`` (see :mod:`meshwatch.settings.slos`), with the
label ``slo="<name>"``:

* ``slo:sli_error_events:rate5m`` and ``slo:sli_events:rate5m``: bad and all
  events per second (:mod:`meshwatch.alerts.slis`);
* ``slo:sli_error:ratio_rate<window>``: bad / all events over each window of
  :attr:`~meshwatch.settings.slos.SloSettings.windows` (5m to 3d, plus any an
  alert adds). Each is recorded once; every alert and panel reads these series.
  With no events in a window there is no ratio at all: ``/ (total > 0)``
  drops the sample instead of dividing by zero, so a quiet service neither
  pages nor shows NaN;
* ``slo:sli_error:ratio_period``: the error ratio over the SLO's 28 or 30 days,
  weighted by traffic (the sums over the period of the two 5m rates), so a busy
  hour counts for more than a quiet one;
* ``slo:error_budget:remaining_ratio``: ``1 - period ratio / budget``: 1 is all
  of it left, 0 spent, below 0 overspent;
* ``slo:error_budget:exhaustion_seconds``: how long the budget left lasts at
  the burn rate over ``slos.exhaustion_window``; 0 once spent, absent while
  nothing burns.

The alert ``SLOErrorBudgetBurn`` is one rule per SLO and burn-rate pair: it
fires while the error ratio over both the long and the short window exceeds
``factor`` times the budget. Its value is the long window's burn rate.
"""

from __future__ import annotations

import re

from meshwatch.alerts.catalogue import SLO_ERROR_BUDGET_BURN
from meshwatch.alerts.model import AlertRule, RecordingRule, RuleGroup, label_matchers
from meshwatch.alerts.promql import duration
from meshwatch.alerts.slis import SliEvents, check_targets
from meshwatch.settings import BurnRateAlert, Duration, Settings, Slo, SloSettings

SLO_ALERT = SLO_ERROR_BUDGET_BURN.name
RECORDING_GROUP = "meshwatch-slos.rules"
ALERT_GROUP = "meshwatch-slos.alerts"

ERROR_EVENTS = "slo:sli_error_events:rate5m"
EVENTS = "slo:sli_events:rate5m"
PERIOD_ERROR_RATIO = "slo:sli_error:ratio_period"
BUDGET_REMAINING = "slo:error_budget:remaining_ratio"
BUDGET_EXHAUSTION = "slo:error_budget:exhaustion_seconds"
_RATIO_PREFIX = "slo:sli_error:ratio_rate"
#: The window the event rates (and so the period ratio) are recorded over.
EVENTS_WINDOW = Duration("5m")


def window_name(window: Duration) -> str:
    """A window as record names spell it: the largest whole units (``60m`` is ``1h``)."""
    return str(duration(window.seconds))


def ratio_record(window: Duration) -> str:
    """The record name of the error ratio over ``window``: ``slo:sli_error:ratio_rate1h``."""
    return _RATIO_PREFIX + window_name(window)


def is_slo_record(name: str) -> bool:
    """Whether ``name`` is a series these rules record, for whatever windows settings add."""
    if name in (ERROR_EVENTS, EVENTS, PERIOD_ERROR_RATIO, BUDGET_REMAINING, BUDGET_EXHAUSTION):
        return True
    suffix = name.removeprefix(_RATIO_PREFIX)
    return suffix != name and re.fullmatch(r"(\d+[dhm])+", suffix) is not None


def labels(slo: Slo) -> dict[str, str]:
    """The label every series and alert of ``slo`` carries."""
    return {"slo": slo.name}


def select(record: str, slo: Slo) -> str:
    """PromQL selecting ``slo``'s series of ``record``."""
    return record + label_matchers(labels(slo))


def budget(slo: Slo) -> str:
    """``slo``'s error budget as a PromQL number, to the precision the settings give it."""
    return f"{slo.error_budget:.12g}"


def burn_rate(slo: Slo, window: Duration) -> str:
    """How many times faster than its budget allows ``slo`` failed over ``window``."""
    return f"{select(ratio_record(window), slo)} / {budget(slo)}"


def recording_rules(settings: SloSettings) -> tuple[RecordingRule, ...]:
    """Every SLO's recorded series, in evaluation order (a rule after those it reads)."""
    check_targets(settings)
    return tuple(rule for slo in settings.objectives for rule in _slo_rules(slo, settings))


def _slo_rules(slo: Slo, settings: SloSettings) -> tuple[RecordingRule, ...]:
    events = SliEvents(slo)
    own = labels(slo)
    bad, total = select(ERROR_EVENTS, slo), select(EVENTS, slo)
    ratios = [
        RecordingRule(
            ratio_record(w),
            f"{bad} / ({total} > 0)"
            if w.seconds == EVENTS_WINDOW.seconds
            else f"({events.bad(w)}) / ({events.total(w)} > 0)",
            own,
        )
        for w in settings.windows
    ]
    period = slo.window
    exhaustion = settings.exhaustion_window
    return (
        RecordingRule(ERROR_EVENTS, events.bad(EVENTS_WINDOW), own),
        RecordingRule(EVENTS, events.total(EVENTS_WINDOW), own),
        *ratios,
        RecordingRule(
            PERIOD_ERROR_RATIO,
            f"sum_over_time({bad}[{period}]) / (sum_over_time({total}[{period}]) > 0)",
            own,
        ),
        RecordingRule(
            BUDGET_REMAINING, f"1 - {select(PERIOD_ERROR_RATIO, slo)} / {budget(slo)}", own
        ),
        RecordingRule(
            BUDGET_EXHAUSTION,
            f"clamp_min({select(BUDGET_REMAINING, slo)}, 0) * {period.seconds:.0f}"
            f" / ({burn_rate(slo, exhaustion)} > 0)",
            own,
        ),
    )


def _alert(slo: Slo, pair: BurnRateAlert, settings: Settings) -> AlertRule:
    factor, long_w, short_w = pair.factor, pair.long_window, pair.short_window
    events = SliEvents(slo)
    lasts = duration(slo.window.seconds / factor)
    pace = "fast" if pair.severity == "critical" else "steadily"
    return AlertRule(
        alert=SLO_ALERT,
        expr=f"{burn_rate(slo, long_w)} > {factor:g} and {burn_rate(slo, short_w)} > {factor:g}",
        for_=Duration("0s"),
        summary=f"SLO {{{{ $labels.slo }}}} is burning its error budget {pace}",
        description=(
            f"SLO {{{{ $labels.slo }}}} ({slo.objective:g}% of {events.what()} over "
            f"{slo.window}) burned its error budget {{{{ $value | humanize }}}}x as fast as it "
            f"may over the last {window_name(long_w)}, and more than {factor:g}x over the last "
            f"{window_name(short_w)}. At {factor:g}x the whole {slo.window} budget is gone "
            f"in {lasts}."
        ),
        severity=pair.severity,
        labels={
            **labels(slo),
            "long_window": window_name(long_w),
            "short_window": window_name(short_w),
        },
        annotations={"runbook_url": SLO_ERROR_BUDGET_BURN.runbook_url(settings.alerts)},
    )


def alert_rules(settings: Settings) -> list[AlertRule]:
    """One burn-rate rule per SLO and pair, fastest pair first, severity and runbook set.

    None when ``alerts.disabled`` lists the alert: the SLOs are still recorded.
    """
    check_targets(settings.slos)
    if SLO_ALERT in settings.alerts.disabled:
        return []
    pairs = sorted(settings.slos.burn_rate_alerts, key=lambda p: -p.factor)
    return [_alert(slo, pair, settings) for slo in settings.slos.objectives for pair in pairs]


def recording_groups(settings: SloSettings) -> list[RuleGroup]:
    """The SLO recording group, or none without SLOs."""
    rules = recording_rules(settings)
    return [RuleGroup(RECORDING_GROUP, rules)] if rules else []


def alert_groups(settings: Settings) -> list[RuleGroup]:
    """The SLO alert group, or none without SLOs."""
    rules = alert_rules(settings)
    return [RuleGroup(ALERT_GROUP, tuple(rules))] if rules else []
