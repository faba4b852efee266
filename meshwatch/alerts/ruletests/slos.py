"""Cases for the SLO rules, placed relative to each SLO's objective and the burn-rate pairs.

Traffic is a list of phases (minutes at some events per second and error
ratio). From it this module writes the input series of the SLO's SLI and
computes, in Python, what every SLO reading those series records and which
burn-rate rules fire at a given minute: the error ratio over a window is bad
/ all events between the window's first sample and its last, as Prometheus
2.x's ``rate`` gives it for counters that start at 0 (no extrapolation: a
window's first sample sits on its left edge, or is the series' zero).

Per SLO and the settings' pairs, the cases prove:

* each pair fires at a steady burn between its factor and the next larger
  one, and exactly the pairs below that burn fire with it;
* a steady burn below the smallest factor stays quiet;
* once a burn ends, the fastest page stops when its short window is clean,
  while its long window still burns above the factor;
* no events at all, and events that stop after a burn, leave no ratio (no
  division by zero) and no page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from meshwatch.alerts import slos as rules
from meshwatch.alerts.model import AlertRule
from meshwatch.alerts.ruletests.model import (
    AlertCheck,
    Case,
    ExpectedAlert,
    ExprCheck,
    Sample,
    Series,
    at_minute,
    explicit,
    fired,
    minutes,
)
from meshwatch.alerts.ruletests.subjects import AGENTS, TASK_TYPE
from meshwatch.alerts.ruletests.templates import humanize
from meshwatch.alerts.slis import latency_le
from meshwatch.instrumentation.catalogue import (
    GOVERNANCE_LATENCY,
    LLM_CALL_ERRORS,
    LLM_CALLS,
    SAGAS,
    TASKS_COMPLETED,
    TASKS_FAILED,
)
from meshwatch.settings import BurnRateAlert, Settings, Slo, SloSettings

#: Events per second while there is traffic (a busy, round number).
PER_SECOND = 2.0
#: Where a steady case is evaluated: every rate has samples, none is long.
STEADY_AT = 10


@dataclass(frozen=True)
class Phase:
    """``minutes`` of ``per_second`` events, ``error_ratio`` of them bad."""

    minutes: int
    per_second: float
    error_ratio: float


@dataclass(frozen=True)
class Traffic:
    """What the SLO under test sees, minute by minute, and the latency its events take.

    ``good``/``bad`` are per-minute event counts (index 0 is minute 1). For a
    latency SLO a good event takes exactly the target (a bucket's bound is
    inclusive) and a bad one the next bound up (or more than the last one).
    """

    subject: Slo
    good: tuple[float, ...]
    bad: tuple[float, ...]

    @classmethod
    def of(cls, subject: Slo, phases: Sequence[Phase]) -> Traffic:
        good: list[float] = []
        bad: list[float] = []
        for phase in phases:
            per_minute = phase.per_second * 60
            good.extend([per_minute * (1 - phase.error_ratio)] * phase.minutes)
            bad.extend([per_minute * phase.error_ratio] * phase.minutes)
        return cls(subject, tuple(good), tuple(bad))

    @property
    def length(self) -> int:
        return len(self.good)

    def _latencies(self) -> tuple[float, float]:
        """The latency of a good and of a bad event (``inf`` past the last bound)."""
        target = self.subject.latency_target
        if target is None:
            raise ValueError("only a latency SLO's events have latencies")
        above = [b for b in GOVERNANCE_LATENCY.buckets if b > target]
        return target, above[0] if above else math.inf

    def reads(self, slo: Slo) -> bool:
        """Whether ``slo`` reads the series this traffic writes."""
        return slo.sli == self.subject.sli

    def cumulative(self, slo: Slo) -> tuple[list[float], list[float]]:
        """``slo``'s bad and total event counters at minutes 0..length."""
        good_is_good, bad_is_good = True, False
        if slo.sli == "governance_latency" and slo.latency_target is not None:
            fast, slow = self._latencies()
            good_is_good, bad_is_good = fast <= slo.latency_target, slow <= slo.latency_target
        bad_total, total = [0.0], [0.0]
        for good, bad in zip(self.good, self.bad, strict=True):
            # The per-minute sum first, as the input's _count series adds them: when every
            # event is bad for ``slo`` its two counters are then equal and the ratio exactly 1.
            events = good + bad
            if not good_is_good and not bad_is_good:
                bad_now = events
            else:
                bad_now = (0.0 if good_is_good else good) + (0.0 if bad_is_good else bad)
            bad_total.append(bad_total[-1] + bad_now)
            total.append(total[-1] + events)
        return bad_total, total

    def series(self) -> list[Series]:
        """The SLI's input series: the counters an instrumented fleet would expose."""
        return _SERIES[self.subject.sli](self)


def _counter(increments: Sequence[float]) -> str:
    values = [0.0]
    for step in increments:
        values.append(values[-1] + step)
    return explicit(values)


def _latency_series(traffic: Traffic) -> list[Series]:
    fast, slow = traffic._latencies()
    name, labels = GOVERNANCE_LATENCY.name, {"decision": "allowed"}
    out = []
    for bound in (*GOVERNANCE_LATENCY.buckets, math.inf):
        counted = [
            (g if fast <= bound else 0.0) + (b if slow <= bound else 0.0)
            for g, b in zip(traffic.good, traffic.bad, strict=True)
        ]
        le = "+Inf" if bound == math.inf else _le(bound)
        out.append(Series(f"{name}_bucket", {**labels, "le": le}, _counter(counted)))
    every = [g + b for g, b in zip(traffic.good, traffic.bad, strict=True)]
    out.append(Series(f"{name}_count", labels, _counter(every)))
    return out


def _le(bound: float) -> str:
    """The ``le`` value of ``bound``, spelt as the SLI's selector spells its target."""
    return latency_le(Slo("probe", "governance_latency", 99.0, latency_target=bound))


def _task_series(traffic: Traffic) -> list[Series]:
    """Two agents, each doing half of the fleet's tasks: the SLI sums them."""
    out = []
    for agent in AGENTS:
        labels = {"agent_did": agent, "task_type": TASK_TYPE}
        out.append(Series(TASKS_COMPLETED.name, labels, _counter([g / 2 for g in traffic.good])))
        out.append(Series(TASKS_FAILED.name, labels, _counter([b / 2 for b in traffic.bad])))
    return out


def _saga_series(traffic: Traffic) -> list[Series]:
    """A quarter of the good sagas failed and were compensated: only escalations are bad."""
    agent = {"agent_did": AGENTS[0]}
    return [
        Series(
            SAGAS.name,
            {**agent, "outcome": "completed"},
            _counter([g * 0.75 for g in traffic.good]),
        ),
        Series(
            SAGAS.name, {**agent, "outcome": "failed"}, _counter([g * 0.25 for g in traffic.good])
        ),
        Series(SAGAS.name, {**agent, "outcome": "escalated"}, _counter(traffic.bad)),
    ]


def _llm_series(traffic: Traffic) -> list[Series]:
    """Calls to two models; the failed ones are counted in both counters, as the adapter does."""
    out = []
    for model, share in (("model-a", 0.75), ("model-b", 0.25)):
        labels = {
            "gen_ai_operation_name": "chat",
            "gen_ai_provider_name": "openai",
            "gen_ai_request_model": model,
            "gen_ai_agent_name": AGENTS[0],
        }
        calls = [(g + b) * share for g, b in zip(traffic.good, traffic.bad, strict=True)]
        out.append(Series(LLM_CALLS.name, labels, _counter(calls)))
        errors = _counter([b * share for b in traffic.bad])
        out.append(Series(LLM_CALL_ERRORS.name, {**labels, "error_type": "timeout"}, errors))
    return out


_SERIES = {
    "governance_latency": _latency_series,
    "task_success": _task_series,
    "saga_success": _saga_series,
    "llm_success": _llm_series,
}


def error_ratio(traffic: Traffic, slo: Slo, window_minutes: int, at: int) -> float | None:
    """``slo``'s recorded error ratio over the window at minute ``at``; None if no events."""
    bad, total = traffic.cumulative(slo)
    start = max(0, at - window_minutes)
    events = total[at] - total[start]
    if events == 0:
        return None
    return (bad[at] - bad[start]) / events


def firing(
    traffic: Traffic, settings: Settings, by_slo: dict[str, list[AlertRule]], at: int
) -> tuple[ExpectedAlert, ...]:
    """Every burn-rate alert that fires at minute ``at`` under ``traffic``."""
    out = []
    for slo in settings.slos.objectives:
        if not traffic.reads(slo):
            continue
        for rule, pair in zip(by_slo[slo.name], _pairs(settings.slos), strict=True):
            long_r = error_ratio(traffic, slo, minutes(pair.long_window), at)
            short_r = error_ratio(traffic, slo, minutes(pair.short_window), at)
            if long_r is None or short_r is None:
                continue
            burn = long_r / slo.error_budget
            if burn > pair.factor and short_r / slo.error_budget > pair.factor:
                out.append(fired(rule, rules.labels(slo), burn))
    return tuple(out)


def _pairs(settings: SloSettings) -> list[BurnRateAlert]:
    """The pairs in the order :func:`meshwatch.alerts.slos.alert_rules` builds them."""
    return sorted(settings.burn_rate_alerts, key=lambda p: -p.factor)


def _legible(burn: float) -> float:
    """``burn`` to 3 significant digits, so case names and humanized values read cleanly."""
    return float(f"{burn:.3g}")


def _check(
    traffic: Traffic, settings: Settings, by_slo: dict[str, list[AlertRule]], at: int
) -> AlertCheck:
    return AlertCheck(at_minute(at), rules.SLO_ALERT, firing(traffic, settings, by_slo, at))


def _steady_burns(slo: Slo, pairs: list[BurnRateAlert]) -> list[tuple[BurnRateAlert, float]]:
    """For each pair, a burn above its factor and below the next larger one (and below 100%)."""
    most = 1 / slo.error_budget
    out = []
    for index, pair in enumerate(pairs):
        upper = pairs[index - 1].factor if index else min(2 * pair.factor, most)
        if upper <= pair.factor:  # two pairs with one factor: the first one covers both
            continue
        burn = _legible((pair.factor + upper) / 2)
        if not pair.factor < burn < upper or burn > most:
            burn = (pair.factor + upper) / 2
        out.append((pair, burn))
    return out


def _fastest_page(pairs: list[BurnRateAlert]) -> BurnRateAlert:
    """The pair that stops first once a burn ends: the shortest short window (pages first)."""
    pages = [p for p in pairs if p.severity == "critical"] or pairs
    return min(pages, key=lambda p: (p.short_window.seconds, -p.factor))


def slo_cases(settings: Settings, slo: Slo, by_slo: dict[str, list[AlertRule]]) -> list[Case]:
    """The burn-rate cases of one SLO."""
    pairs = _pairs(settings.slos)
    if not pairs:
        return []
    budget = slo.error_budget
    found = []
    for pair, burn in _steady_burns(slo, pairs):
        traffic = Traffic.of(slo, [Phase(STEADY_AT + 2, PER_SECOND, burn * budget)])
        check = _check(traffic, settings, by_slo, STEADY_AT)
        found.append(
            Case(
                f"fires {pair.severity} for {slo.name} at a steady {burn:g}x burn, above the "
                f"{pair.factor:g}x pair over {pair.long_window} and {pair.short_window}",
                tuple(traffic.series()),
                (check,),
            )
        )
    slow = _legible(min(p.factor for p in pairs) * 0.8)
    quiet = Traffic.of(slo, [Phase(STEADY_AT + 2, PER_SECOND, slow * budget)])
    found.append(
        Case(
            f"stays silent for {slo.name} at a steady {slow:g}x burn, below the smallest "
            f"factor {min(p.factor for p in pairs):g}x",
            tuple(quiet.series()),
            (_check(quiet, settings, by_slo, STEADY_AT), _check(quiet, settings, by_slo, 2)),
        )
    )
    found.extend(_after_a_burn(settings, slo, by_slo, pairs))
    found.append(_no_events(settings, slo, by_slo, pairs))
    return found


def _after_a_burn(
    settings: Settings, slo: Slo, by_slo: dict[str, list[AlertRule]], pairs: list[BurnRateAlert]
) -> list[Case]:
    """The fastest page stops with its short window: when the burn ends, and when traffic does."""
    page = _fastest_page(pairs)
    budget, factor = slo.error_budget, page.factor
    burn = min(2 * factor, 1 / budget)
    short = minutes(page.short_window)
    long_window = minutes(page.long_window)
    # Long enough that the long window still burns above the factor once the short one is
    # clean, if the long window can hold that much burn (a factor close to the most a
    # budget allows cannot: the long window falls below it as soon as the burn ends).
    burning = max(math.ceil(factor * (short + 1) / (burn - factor)) + 1, short + 1)
    if burning + short + 1 > long_window:
        burning = max(short + 1, long_window - short - 1)
    after = burning + short + 1
    healthy = Traffic.of(
        slo, [Phase(burning, PER_SECOND, burn * budget), Phase(short + 1, PER_SECOND, 0.0)]
    )
    checks: list[AlertCheck | ExprCheck] = [
        _check(healthy, settings, by_slo, burning),
        _check(healthy, settings, by_slo, after),
    ]
    name = f"resolves the {factor:g}x page of {slo.name} {page.short_window} after the burn ends"
    still = error_ratio(healthy, slo, long_window, after)
    if still is not None and still / budget > factor:
        name += f", while the {page.long_window} window still burns at {humanize(still / budget)}x"
        checks.append(
            ExprCheck(
                f"{rules.burn_rate(slo, page.long_window)} > bool {factor:g}",
                at_minute(after),
                (Sample(rules.labels(slo), 1.0),),
            )
        )
    resolved = Case(name, tuple(healthy.series()), tuple(checks))
    stopped = Traffic.of(
        slo, [Phase(burning, PER_SECOND, burn * budget), Phase(short + 1, 0.0, 0.0)]
    )
    short_ratio = rules.select(rules.ratio_record(page.short_window), slo)
    quiet = Case(
        f"stays silent for {slo.name} once events stop after a burn: no events in the "
        f"{page.short_window} window, no ratio and no {factor:g}x page",
        tuple(stopped.series()),
        (
            _check(stopped, settings, by_slo, burning),
            _check(stopped, settings, by_slo, after),
            ExprCheck(short_ratio, at_minute(after), ()),
        ),
    )
    return [resolved, quiet]


def _no_events(
    settings: Settings, slo: Slo, by_slo: dict[str, list[AlertRule]], pairs: list[BurnRateAlert]
) -> Case:
    """Counters that exist but never move: no ratio over any window, nothing fires."""
    idle = Traffic.of(slo, [Phase(STEADY_AT + 2, 0.0, 0.0)])
    windows = sorted(
        {w.seconds: w for p in pairs for w in (p.long_window, p.short_window)}.values(),
        key=lambda w: w.seconds,
    )
    return Case(
        f"stays silent for {slo.name} when no event happens, and records no ratio to divide by",
        tuple(idle.series()),
        (
            _check(idle, settings, by_slo, STEADY_AT),
            *(
                ExprCheck(rules.select(rules.ratio_record(w), slo), at_minute(STEADY_AT), ())
                for w in windows
            ),
        ),
    )


def cases(settings: Settings) -> list[Case]:
    """Every SLO's burn-rate cases (empty without SLOs, or with the alert disabled)."""
    by_slo: dict[str, list[AlertRule]] = {}
    for rule in rules.alert_rules(settings):
        by_slo.setdefault(rule.labels["slo"], []).append(rule)
    if not by_slo:
        return []
    return [case for slo in settings.slos.objectives for case in slo_cases(settings, slo, by_slo)]


# --- recording ------------------------------------------------------------------------


def _round(value: float, to: float) -> float:
    """PromQL's ``round(value, to)``, computed as Prometheus does (by the inverse of ``to``)."""
    inverse = 1.0 / to
    return math.floor(value * inverse + 0.5) / inverse


def _recorded(record: str, slo: Slo, at: int, value: float | None, to: float) -> ExprCheck:
    expect = () if value is None else (Sample(rules.labels(slo), _round(value, to)),)
    return ExprCheck(rules.select(record, slo), at_minute(at), expect, round_to=to)


def recording_cases(settings: SloSettings) -> list[Case]:
    """Every recorded SLO series, at a steady burn of a quarter, and of twice, the budget."""
    out = []
    for slo in settings.objectives:
        for burn in (0.25, 2.0):
            out.append(_steady_record(settings, slo, burn))
        out.append(_idle_record(settings, slo))
    return out


RATIO_PRECISION = 1e-9


def _steady_record(settings: SloSettings, slo: Slo, burn: float) -> Case:
    ratio = burn * slo.error_budget
    traffic = Traffic.of(slo, [Phase(STEADY_AT + 2, PER_SECOND, ratio)])
    at, to = STEADY_AT, RATIO_PRECISION
    remaining = 1 - burn
    exhaustion = max(remaining, 0) * slo.window.seconds / burn
    state = "left" if remaining > 0 else "overspent, exhausted"
    return Case(
        f"records {slo.name} at a steady {burn:g}x burn: {remaining:g} of the budget {state}",
        tuple(traffic.series()),
        (
            _recorded(rules.ERROR_EVENTS, slo, at, PER_SECOND * ratio, to),
            _recorded(rules.EVENTS, slo, at, PER_SECOND, to),
            *(_recorded(rules.ratio_record(w), slo, at, ratio, to) for w in settings.windows),
            _recorded(rules.PERIOD_ERROR_RATIO, slo, at, ratio, to),
            _recorded(rules.BUDGET_REMAINING, slo, at, remaining, to),
            _recorded(rules.BUDGET_EXHAUSTION, slo, at, exhaustion, 1.0),
        ),
    )


def _idle_record(settings: SloSettings, slo: Slo) -> Case:
    traffic = Traffic.of(slo, [Phase(STEADY_AT + 2, 0.0, 0.0)])
    at, to = STEADY_AT, RATIO_PRECISION
    return Case(
        f"records no ratio, budget or exhaustion for {slo.name} while no event happens",
        tuple(traffic.series()),
        (
            _recorded(rules.ERROR_EVENTS, slo, at, 0.0, to),
            _recorded(rules.EVENTS, slo, at, 0.0, to),
            *(_recorded(rules.ratio_record(w), slo, at, None, to) for w in settings.windows),
            _recorded(rules.PERIOD_ERROR_RATIO, slo, at, None, to),
            _recorded(rules.BUDGET_REMAINING, slo, at, None, to),
            _recorded(rules.BUDGET_EXHAUSTION, slo, at, None, 1.0),
        ),
    )
