"""Meta-monitoring: the monitoring stack watching itself.

A scrape target that is down, rules that fail to evaluate and notifications
Alertmanager cannot deliver all make every other alert silently useless. The
metric names come from :mod:`meshwatch.alerts.external_metrics`.

``AlertmanagerNotificationsFailing`` is routed through the very Alertmanager
that is failing; its runbook says to pair it with a dead man's switch outside
the stack.
"""

from __future__ import annotations

from meshwatch.alerts.catalogue import (
    ALERTMANAGER_NOTIFICATIONS_FAILING,
    RULE_EVALUATION_FAILURES,
    TARGET_DOWN,
)
from meshwatch.alerts.external_metrics import (
    ALERTMANAGER_NOTIFICATIONS_FAILED,
    PROMETHEUS_RULE_EVALUATION_FAILURES,
    UP,
)
from meshwatch.alerts.model import AlertRule
from meshwatch.alerts.promql import sum_by
from meshwatch.settings import AlertsSettings


def alerts(s: AlertsSettings) -> list[AlertRule]:
    window = s.rate_window
    target_down = AlertRule(
        alert=TARGET_DOWN.name,
        expr=f"{UP.name} == 0",
        for_=s.target_down.for_,
        summary="Prometheus cannot scrape {{ $labels.job }} at {{ $labels.instance }}",
        description=(
            "Scrapes of target {{ $labels.instance }} of job {{ $labels.job }} have failed for "
            f"at least {s.target_down.for_}: its metrics, and every alert reading them, are "
            "blind until it is back."
        ),
    )
    failures = PROMETHEUS_RULE_EVALUATION_FAILURES.name
    rule_failures = AlertRule(
        alert=RULE_EVALUATION_FAILURES.name,
        expr=(
            sum_by(("job", "instance", "rule_group"), f"increase({failures}[{window}])") + " > 0"
        ),
        for_=s.rule_evaluation_failures.for_,
        summary="Prometheus fails to evaluate rules of group {{ $labels.rule_group }}",
        description=(
            "Prometheus {{ $labels.instance }} failed {{ $value | humanize }} rule evaluations "
            "of group {{ $labels.rule_group }} over the last "
            f"{window}: the alerts and recorded series of that group are missing or stale."
        ),
    )
    failed = ALERTMANAGER_NOTIFICATIONS_FAILED.name
    notifications = AlertRule(
        alert=ALERTMANAGER_NOTIFICATIONS_FAILING.name,
        expr=sum_by(("job", "instance", "integration"), f"increase({failed}[{window}])") + " > 0",
        for_=s.notifications_failing.for_,
        summary="Alertmanager cannot deliver {{ $labels.integration }} notifications",
        description=(
            "Alertmanager {{ $labels.instance }} failed to send {{ $value | humanize }} "
            "{{ $labels.integration }} notifications over the last "
            f"{window}: alerts routed there are not reaching anyone."
        ),
    )
    return [target_down, rule_failures, notifications]
