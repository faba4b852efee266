"""LLM alerts: spend heading past the daily budget, a cost spike, a runaway agent, failing models.

All four read the series ``GenAISpanMetrics`` derives from GenAI spans (or
``record_call``), through the recording rules of ``meshwatch-llm.rules``:

* the budget forecast extrapolates the spend of the last 24 hours
  (``predict_linear`` over ``lookback``) and fires when it would pass
  ``alerts.llm_budget_forecast.daily_budget_usd`` within ``horizon``;
* the cost spike compares each agent's spend rate with its own baseline by
  z-score, as the task-rate anomaly does, and fires on spikes up only;
* the runaway agent divides an agent's LLM calls per invocation now by its
  normal over the 6 hours before (ending before the runaway began): an agent
  looping on its model inside one turn makes calls and ends no turn, so the
  factor climbs (to +Inf while no turn ends);
* the error ratio is failed / all LLM calls per model, guarded by
  ``min_events`` calls in the window like the other ratio alerts.
"""

from __future__ import annotations

from meshwatch.alerts.catalogue import (
    LLM_COST_SPIKE,
    LLM_ERROR_RATIO_HIGH,
    LLM_RUNAWAY_AGENT,
    LLM_SPEND_OVER_BUDGET,
)
from meshwatch.alerts.model import AlertRule
from meshwatch.alerts.recording import (
    LLM_COST_RATE,
    LLM_COST_RATE_ZSCORE,
    LLM_DAILY_SPEND,
    LLM_ERROR_RATIO,
    LLM_MODEL_CALL_RATE,
    LLM_RUNAWAY_FACTOR,
    MODEL,
    NORMAL_WINDOW,
    RATE_WINDOW,
    cost_baseline_offset,
)
from meshwatch.alerts.rules.ratios import guarded, volume_note
from meshwatch.alerts.rules.tiers import comparison, percent, tiered
from meshwatch.settings import AlertsSettings


def alerts(s: AlertsSettings) -> list[AlertRule]:
    window = s.rate_window
    budget = s.llm_budget_forecast
    forecast = AlertRule(
        alert=LLM_SPEND_OVER_BUDGET.name,
        expr=(
            f"predict_linear({LLM_DAILY_SPEND.selector}[{budget.lookback}], "
            f"{budget.horizon.seconds:g}) > {budget.daily_budget_usd:g}"
        ),
        for_=budget.for_,
        summary="LLM spend is heading past the daily budget",
        description=(
            f"At the trend of the last {budget.lookback}, the LLM spend of the last 24 hours "
            f"reaches {{{{ $value | humanize }}}} USD within {budget.horizon}, above the daily "
            f"budget of {budget.daily_budget_usd:g} USD."
        ),
    )
    spike = s.llm_cost_spike
    cost_spike = AlertRule(
        alert=LLM_COST_SPIKE.name,
        expr=(
            f"{LLM_COST_RATE.selector} and on(gen_ai_agent_name) "
            f"{LLM_COST_RATE_ZSCORE} > {spike.z_score:g}"
        ),
        for_=spike.for_,
        summary="Agent {{ $labels.gen_ai_agent_name }} is spending on LLM calls far above its normal",
        description=(
            "Agent {{ $labels.gen_ai_agent_name }} spends {{ $value | humanize }} USD per second "
            f"on LLM calls, more than {spike.z_score:g} standard deviations above its mean over "
            f"the {spike.baseline_window} that ended {cost_baseline_offset(s)} ago."
        ),
    )

    def runaway(threshold: float, note: str) -> AlertRule:
        return AlertRule(
            alert=LLM_RUNAWAY_AGENT.name,
            expr=f"{LLM_RUNAWAY_FACTOR} {comparison(LLM_RUNAWAY_AGENT.direction)} {threshold:g}",
            for_=s.llm_runaway_agent.for_,
            summary="Agent {{ $labels.gen_ai_agent_name }} makes far more LLM calls than it normally does",
            description=(
                "Agent {{ $labels.gen_ai_agent_name }} made {{ $value | humanize }} times its "
                f"normal number of LLM calls per invocation over the last {RATE_WINDOW} "
                f"(normal: the {NORMAL_WINDOW} before), above {threshold:g}{note}. "
                "+Inf means it made calls and ended no invocation."
            ),
        )

    def errors(threshold: float, note: str) -> AlertRule:
        cfg = s.llm_error_ratio
        return AlertRule(
            alert=LLM_ERROR_RATIO_HIGH.name,
            expr=guarded(
                f"{LLM_ERROR_RATIO.at(window)} > {threshold:g}",
                cfg,
                (MODEL,),
                LLM_MODEL_CALL_RATE.at(window),
                window,
            ),
            for_=cfg.for_,
            summary="LLM calls to {{ $labels.gen_ai_request_model }} are failing",
            description=(
                "{{ $value | humanizePercentage }} of the LLM calls to model "
                "{{ $labels.gen_ai_request_model }} over the last "
                f"{window} failed, above {percent(threshold)}{note}."
                + volume_note(cfg, "LLM calls")
            ),
        )

    return [
        forecast,
        cost_spike,
        *tiered(LLM_RUNAWAY_AGENT, s, runaway),
        *tiered(LLM_ERROR_RATIO_HIGH, s, errors),
    ]
