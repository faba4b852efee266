"""Cases for the LLM alerts: budget forecast, cost spike, runaway agent, model error ratio.

Every input is placed relative to the configured budget, z-score, factor and
ratio, as for the other alerts, so ``meshwatch check`` proves a deployment's
own LLM rules.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from meshwatch.alerts import recording as rec
from meshwatch.alerts.catalogue import (
    LLM_COST_SPIKE,
    LLM_ERROR_RATIO_HIGH,
    LLM_RUNAWAY_AGENT,
    LLM_SPEND_OVER_BUDGET,
)
from meshwatch.alerts.model import AlertRule, RecordingRule
from meshwatch.alerts.promql import duration
from meshwatch.alerts.recording import (
    LLM_DAILY_SPEND,
    NORMAL_WINDOW,
    RATE_WINDOW,
    cost_baseline_offset,
    normal_offset,
)
from meshwatch.alerts.ruletests.model import (
    AlertCheck,
    Case,
    ExprCheck,
    Sample,
    Series,
    at_minute,
    constant,
    counter,
    explicit,
    fired,
    minutes,
    num,
)
from meshwatch.alerts.ruletests.threshold import (
    Signal,
    ThresholdProof,
    Volume,
    ratio_proof,
    threshold_cases,
)
from meshwatch.instrumentation.catalogue import (
    GENAI_INVOKE_AGENT_DURATION,
    LLM_CALL_ERRORS,
    LLM_CALLS,
    LLM_COST,
)
from meshwatch.settings import AlertsSettings

AGENT_NAMES = ("planner", "writer")
MODELS = ("model-a", "model-b")
#: Baseline spend per minute in US dollars, repeating: a rate that varies a little.
SPEND_PATTERN = (0.4, 0.6, 0.8)
#: Normal calls and invocations per second of the runaway cases: two calls per invocation.
NORMAL_CALLS, INVOCATIONS = 1.0, 0.5


def _agent(subject: int) -> dict[str, str]:
    return {"gen_ai_agent_name": AGENT_NAMES[subject]}


def _model(subject: int) -> dict[str, str]:
    return {"gen_ai_request_model": MODELS[subject]}


def _call_labels(subject_agent: int = 0, subject_model: int = 0) -> dict[str, str]:
    return {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "openai",
        **_model(subject_model),
        **_agent(subject_agent),
    }


def _forecast_cases(s: AlertsSettings, rule: AlertRule) -> list[Case]:
    """The recorded 24-hour spend climbs linearly; ``predict_linear`` of a line is exact."""
    cfg = s.llm_budget_forecast
    budget = cfg.daily_budget_usd
    at = minutes(cfg.lookback) + minutes(cfg.for_) + 3
    start = 0.1 * budget
    # Steep enough that from the first minute of ``for`` on, the forecast is past the budget.
    slope = 1.5 * (budget - start) / ((at - minutes(cfg.for_)) * 60 + cfg.horizon.seconds)
    predicted = start + slope * (at * 60 + cfg.horizon.seconds)
    climbing = Series(LLM_DAILY_SPEND.record, {}, f"{num(start)}+{num(slope * 60)}x{at + 2}")
    flat = Series(LLM_DAILY_SPEND.record, {}, constant(budget / 2, at + 2))
    return [
        Case(
            f"fires when the 24h spend trend reaches {budget:g} USD within {cfg.horizon}",
            (climbing,),
            (AlertCheck(at_minute(at), rule.alert, (fired(rule, {}, predicted),)),),
        ),
        Case(
            f"stays silent when the 24h spend holds steady at {budget / 2:g} USD",
            (flat,),
            (AlertCheck(at_minute(at), rule.alert),),
        ),
    ]


def _spend(per_minute: Sequence[float]) -> Series:
    """Agent 0's cost counter from per-minute increments."""
    total, values = 0.0, [0.0]
    for increment in per_minute:
        total += increment
        values.append(total)
    return Series(LLM_COST.name, _call_labels(), explicit(values))


def _spike_cases(s: AlertsSettings, rule: AlertRule) -> list[Case]:
    """A baseline that varies a little, then a step up, a step down or none; a flat baseline."""
    cfg = s.llm_cost_spike
    offset = minutes(cost_baseline_offset(s))
    step_at = minutes(cfg.baseline_window) + minutes(cfg.for_) + minutes(RATE_WINDOW) + 5
    at = step_at + offset
    noisy = [SPEND_PATTERN[i % len(SPEND_PATTERN)] for i in range(step_at)]
    mean = statistics.fmean(SPEND_PATTERN) / 60
    high = mean + 2 * cfg.z_score * (max(SPEND_PATTERN) - min(SPEND_PATTERN)) / 60
    tail = at + 2 - step_at
    usual = [SPEND_PATTERN[i % 3] for i in range(step_at, at + 2)]
    return [
        Case(
            f"fires when an agent's spend jumps to {high:.4g} USD/s from a baseline near {mean:.4g}",
            (_spend(noisy + [high * 60] * tail),),
            (AlertCheck(at_minute(at), rule.alert, (fired(rule, _agent(0), high),)),),
        ),
        Case(
            "stays silent when an agent's spend drops (a spike is upwards)",
            (_spend(noisy + [0.0] * tail),),
            (AlertCheck(at_minute(at), rule.alert),),
        ),
        Case(
            "stays silent while an agent's spend varies as it always did",
            (_spend(noisy + usual),),
            (AlertCheck(at_minute(at), rule.alert),),
        ),
        Case(
            "stays silent when the baseline is perfectly flat (zero deviation, no z-score)",
            (_spend([0.5] * step_at + [high * 60] * tail),),
            (AlertCheck(at_minute(at), rule.alert),),
        ),
    ]


def _runaway_signal(s: AlertsSettings) -> Signal:
    """Calls per invocation at ``value`` times the normal from ``for`` + a window before ``at``."""

    def signal(value: float, at: int, subject: int) -> list[Series]:
        recent = minutes(s.llm_runaway_agent.for_) + minutes(RATE_WINDOW) + 1
        change = at - recent
        per_minute = NORMAL_CALLS * 60
        calls = [
            per_minute * t if t <= change else per_minute * (change + value * (t - change))
            for t in range(at + 3)
        ]
        runs = {**_agent(subject), "error_type": ""}
        return [
            Series(LLM_CALLS.name, _call_labels(subject), explicit(calls)),
            Series(GENAI_INVOKE_AGENT_DURATION.name + "_count", runs, counter(INVOCATIONS, at + 2)),
        ]

    return signal


def _runaway_cases(s: AlertsSettings, tiers: list[AlertRule]) -> list[Case]:
    warmup = duration(NORMAL_WINDOW.seconds + normal_offset(s).seconds)
    proof = ThresholdProof(
        LLM_RUNAWAY_AGENT,
        "an agent's LLM calls per invocation over its normal",
        _runaway_signal(s),
        _agent,
        warmup=warmup,
    )
    return threshold_cases(proof, s, tiers)


def _errors(value: float, at: int, subject: int, per_second: float) -> list[Series]:
    labels = _call_labels(0, subject)
    return [
        Series(LLM_CALLS.name, labels, counter(per_second, at + 2)),
        Series(
            LLM_CALL_ERRORS.name,
            {**labels, "error_type": "RateLimitError"},
            counter(value * per_second, at + 2),
        ),
    ]


def cases(s: AlertsSettings, rules: Mapping[str, list[AlertRule]]) -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {}
    if LLM_SPEND_OVER_BUDGET.name in rules:
        out[LLM_SPEND_OVER_BUDGET.name] = _forecast_cases(s, rules[LLM_SPEND_OVER_BUDGET.name][0])
    if LLM_COST_SPIKE.name in rules:
        out[LLM_COST_SPIKE.name] = _spike_cases(s, rules[LLM_COST_SPIKE.name][0])
    if LLM_RUNAWAY_AGENT.name in rules:
        out[LLM_RUNAWAY_AGENT.name] = _runaway_cases(s, rules[LLM_RUNAWAY_AGENT.name])
    if LLM_ERROR_RATIO_HIGH.name in rules:
        cfg = s.llm_error_ratio
        proof = ratio_proof(
            LLM_ERROR_RATIO_HIGH,
            "the share of a model's LLM calls failing",
            Volume("LLM calls", _errors, s.rate_window, cfg.min_events),
            _model,
        )
        out[LLM_ERROR_RATIO_HIGH.name] = threshold_cases(proof, s, rules[LLM_ERROR_RATIO_HIGH.name])
    return out


# --- recording rules ------------------------------------------------------------------

RECORDING_AT = 10  # minutes: every 5m rate window is full by then


def _rates_case() -> Case:
    """Agent planner: 0.25 USD/s, one call a second, an invocation every two seconds."""
    samples = RECORDING_AT + 2
    when = at_minute(RECORDING_AT)
    a, b = _call_labels(0, 0), _call_labels(0, 1)
    runs = {**_agent(0), "error_type": ""}

    def check(rule: RecordingRule, *expect: tuple[dict[str, str], float]) -> ExprCheck:
        samples = tuple(Sample(labels, value, rule.record) for labels, value in expect)
        return ExprCheck(rule.selector, when, samples)

    return Case(
        "records LLM cost, call and invocation rates, calls per invocation, the model error "
        "ratio (zero-filled) and the 24-hour spend",
        (
            Series(LLM_COST.name, a, counter(0.25, samples)),
            Series(LLM_CALLS.name, a, counter(0.5, samples)),
            Series(LLM_CALLS.name, b, counter(0.5, samples)),
            Series(LLM_CALL_ERRORS.name, {**a, "error_type": "Timeout"}, counter(0.125, samples)),
            Series(GENAI_INVOKE_AGENT_DURATION.name + "_count", runs, counter(0.5, samples)),
        ),
        (
            check(rec.LLM_COST_RATE, (_agent(0), 0.25)),
            check(rec.LLM_CALL_RATE, (_agent(0), 1.0)),
            check(rec.LLM_INVOCATION_RATE, (_agent(0), 0.5)),
            check(rec.LLM_CALLS_PER_INVOCATION, (_agent(0), 2.0)),
            check(rec.LLM_MODEL_CALL_RATE, (_model(0), 0.5), (_model(1), 0.5)),
            check(rec.LLM_MODEL_ERROR_RATE, (_model(0), 0.125)),
            check(rec.LLM_ERROR_RATIO, (_model(0), 0.25), (_model(1), 0.0)),
            check(rec.LLM_DAILY_SPEND, ({}, 0.25 * RECORDING_AT * 60)),
        ),
    )


def _normal_and_baseline_cases(s: AlertsSettings) -> list[Case]:
    """A steady agent: its normal is its own calls per invocation, its cost has no z-score."""
    at = minutes(NORMAL_WINDOW) + minutes(normal_offset(s)) + RECORDING_AT
    when = at_minute(at)
    runs = {**_agent(0), "error_type": ""}
    normal = Case(
        "records an agent's normal calls per invocation over the day before, and the factor",
        (
            Series(LLM_CALLS.name, _call_labels(), counter(1.0, at + 2)),
            Series(GENAI_INVOKE_AGENT_DURATION.name + "_count", runs, counter(0.5, at + 2)),
        ),
        (
            ExprCheck(
                rec.LLM_CALLS_PER_INVOCATION_NORMAL,
                when,
                (Sample(_agent(0), 2.0, rec.LLM_CALLS_PER_INVOCATION_NORMAL),),
            ),
            ExprCheck(
                rec.LLM_RUNAWAY_FACTOR, when, (Sample(_agent(0), 1.0, rec.LLM_RUNAWAY_FACTOR),)
            ),
        ),
    )
    cfg = s.llm_cost_spike
    at = minutes(cfg.baseline_window) + minutes(cost_baseline_offset(s)) + RECORDING_AT
    when = at_minute(at)
    baseline = Case(
        "records a spend baseline mean and zero deviation for a steady spend, and no z-score",
        (Series(LLM_COST.name, _call_labels(), counter(0.25, at + 2)),),
        (
            ExprCheck(
                rec.LLM_COST_RATE_BASELINE_MEAN,
                when,
                (Sample(_agent(0), 0.25, rec.LLM_COST_RATE_BASELINE_MEAN),),
            ),
            ExprCheck(
                rec.LLM_COST_RATE_BASELINE_STDDEV,
                when,
                (Sample(_agent(0), 0.0, rec.LLM_COST_RATE_BASELINE_STDDEV),),
            ),
            ExprCheck(rec.LLM_COST_RATE_ZSCORE, when),
        ),
    )
    return [normal, baseline]


def recording_cases(s: AlertsSettings) -> list[Case]:
    """The LLM recording rules' cases (part of ``recording.test.yml``)."""
    return [_rates_case(), *_normal_and_baseline_cases(s)]
