"""Governance alerts: evaluation latency (now and forecast), denials, rate limiting, trust.

The tutorial's ``histogram_quantile(0.99, agent_governance_evaluation_latency_ms) > 50``
cannot work: ``histogram_quantile`` needs per-``le`` bucket rates, not a raw
histogram, and the millisecond unit breaks Prometheus' base-unit convention.
``GovernanceLatencyHigh`` reads the p99 computed by the recording rules from
``rate(agent_governance_evaluation_latency_seconds_bucket[5m])`` summed by
``le``, so it holds for any bucket layout and across every process and label.
"""

from __future__ import annotations

from meshwatch.alerts.catalogue import (
    GOVERNANCE_DENIAL_RATIO_HIGH,
    GOVERNANCE_LATENCY_HIGH,
    GOVERNANCE_LATENCY_PREDICTED_HIGH,
    RATE_LIMIT_SURGE,
    TRUST_SCORE_LOW,
)
from meshwatch.alerts.model import AlertRule
from meshwatch.alerts.recording import (
    GOVERNANCE_DENIAL_RATIO,
    GOVERNANCE_LATENCY_P99,
    GOVERNANCE_RATE_LIMIT_RATE,
    governance_decisions_per_second,
)
from meshwatch.alerts.rules.ratios import guarded, volume_note
from meshwatch.alerts.rules.tiers import comparison, percent, tiered
from meshwatch.instrumentation.catalogue import GOVERNANCE_TRUST_SCORE
from meshwatch.settings import AlertsSettings


def alerts(s: AlertsSettings) -> list[AlertRule]:
    window = s.rate_window

    def latency(threshold: float, note: str) -> AlertRule:
        return AlertRule(
            alert=GOVERNANCE_LATENCY_HIGH.name,
            expr=f"{GOVERNANCE_LATENCY_P99.at(window)} > {threshold:g}",
            for_=s.governance_latency_high.for_,
            summary="Governance policy evaluation is slow",
            description=(
                "The 99th percentile of governance policy evaluation latency over the last "
                f"{window} is {{{{ $value | humanizeDuration }}}}, above {threshold:g}s{note}."
            ),
        )

    def denials(threshold: float, note: str) -> AlertRule:
        return AlertRule(
            alert=GOVERNANCE_DENIAL_RATIO_HIGH.name,
            expr=guarded(
                f"{GOVERNANCE_DENIAL_RATIO.at(window)} > {threshold:g}",
                s.governance_denial_ratio,
                (),
                governance_decisions_per_second(window),
                window,
            ),
            for_=s.governance_denial_ratio.for_,
            summary="Governance is blocking an unusual share of tool calls",
            description=(
                "{{ $value | humanizePercentage }} of governance policy decisions over the last "
                f"{window} blocked a tool call, above {percent(threshold)}{note}."
                + volume_note(s.governance_denial_ratio, "policy decisions")
            ),
        )

    def rate_limits(threshold: float, note: str) -> AlertRule:
        return AlertRule(
            alert=RATE_LIMIT_SURGE.name,
            expr=f"{GOVERNANCE_RATE_LIMIT_RATE.at(window)} > {threshold:g}",
            for_=s.rate_limit_surge.for_,
            summary="The rate limiter is rejecting calls to {{ $labels.tool_name }}",
            description=(
                "The governance rate limiter rejected {{ $value | humanize }} calls per second "
                "to tool {{ $labels.tool_name }} over the last "
                f"{window}, above {threshold:g} per second{note}."
            ),
        )

    def trust(threshold: float, note: str) -> AlertRule:
        return AlertRule(
            alert=TRUST_SCORE_LOW.name,
            expr=f"{GOVERNANCE_TRUST_SCORE.name} {comparison(TRUST_SCORE_LOW.direction)} {threshold:g}",
            for_=s.trust_score_low.for_,
            summary="Agent {{ $labels.agent_id }} has a low trust score",
            description=(
                "Agent {{ $labels.agent_id }} has a trust score of {{ $value | humanize }}, "
                f"below {threshold:g} (of 1000){note}."
            ),
        )

    predicted = s.governance_latency_predicted
    limit = s.governance_latency_high.threshold
    forecast = AlertRule(
        alert=GOVERNANCE_LATENCY_PREDICTED_HIGH.name,
        expr=(
            f"predict_linear({GOVERNANCE_LATENCY_P99.selector}[{predicted.lookback}], "
            f"{predicted.horizon.seconds:g}) > {limit:g}"
        ),
        for_=predicted.for_,
        summary="Governance evaluation latency is trending past its limit",
        description=(
            "At the trend of the last "
            f"{predicted.lookback}, the 99th percentile of governance policy evaluation "
            f"latency reaches {{{{ $value | humanizeDuration }}}} within {predicted.horizon}, "
            f"above the {limit:g}s limit of {GOVERNANCE_LATENCY_HIGH.name}."
        ),
    )
    return [
        *tiered(GOVERNANCE_LATENCY_HIGH, s, latency),
        forecast,
        *tiered(GOVERNANCE_DENIAL_RATIO_HIGH, s, denials),
        *tiered(RATE_LIMIT_SURGE, s, rate_limits),
        *tiered(TRUST_SCORE_LOW, s, trust),
    ]
