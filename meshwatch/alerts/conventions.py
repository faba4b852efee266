"""The pass every alert goes through: settings severity, runbook link, disabled alerts.

Like kubernetes-mixin's runbook-URL pass, this adds what every alert needs in
one place instead of repeating it in each rule: the ``severity`` label comes
from the alert's settings entry (unless the rule pinned one, as a critical
tier does) and ``runbook_url`` from ``settings.alerts.runbook_url``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from meshwatch.alerts.model import AlertRule
from meshwatch.settings import AlertsSettings, SettingsError

#: Each alert's entry in ``settings.alerts`` (its threshold, ``for`` and severity).
ALERT_SETTINGS: Mapping[str, str] = MappingProxyType(
    {
        "HighRingBreachRate": "ring_breach_rate",
        "ElevationTooLong": "elevation_too_long",
        "GovernanceLatencyHigh": "governance_latency_high",
        "GovernanceLatencyPredictedHigh": "governance_latency_predicted",
        "GovernanceDenialRatioHigh": "governance_denial_ratio",
        "RateLimitSurge": "rate_limit_surge",
        "TrustScoreLow": "trust_score_low",
        "SagaFailureRatioHigh": "saga_failure_ratio",
        "SagaCompensationRateHigh": "saga_compensation_rate",
        "SagaEscalated": "saga_escalated",
        "AgentTaskErrorRateHigh": "task_error_rate",
        "AgentTaskSuccessRateLow": "task_success_rate_low",
        "AgentTaskDurationHigh": "task_duration_p95_high",
        "AgentQueueBacklogGrowing": "queue_backlog_growing",
        "AgentTaskRateAnomaly": "task_rate_anomaly",
        "TargetDown": "target_down",
        "PrometheusRuleEvaluationFailures": "rule_evaluation_failures",
        "AlertmanagerNotificationsFailing": "notifications_failing",
    }
)
ALERT_NAMES: tuple[str, ...] = tuple(ALERT_SETTINGS)


def check_disabled(settings: AlertsSettings) -> None:
    """A name in ``alerts.disabled`` that is no alert is a typo that would keep it on."""
    for index, name in enumerate(settings.disabled):
        if name not in ALERT_SETTINGS:
            known = ", ".join(sorted(ALERT_SETTINGS))
            raise SettingsError(
                f"alerts.disabled[{index}]", f"no alert is named {name!r} (alerts: {known})"
            )


def apply(rules: Iterable[AlertRule], settings: AlertsSettings) -> list[AlertRule]:
    """The enabled rules, each with its ``severity`` and ``runbook_url`` filled in."""
    check_disabled(settings)
    out = []
    for rule in rules:
        key = ALERT_SETTINGS.get(rule.alert)
        if key is None:
            raise ValueError(f"alert {rule.alert} has no entry in ALERT_SETTINGS")
        if rule.alert in settings.disabled:
            continue
        severity = rule.severity or getattr(settings, key).severity
        annotations = {**rule.annotations, "runbook_url": settings.runbook_url(rule.alert)}
        out.append(dataclasses.replace(rule, severity=severity, annotations=annotations))
    return out
