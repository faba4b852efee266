"""Cases for meta-monitoring: a target down, failing rule evaluations, failing notifications."""

from __future__ import annotations

from collections.abc import Mapping

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
from meshwatch.alerts.ruletests.model import (
    AlertCheck,
    Case,
    Series,
    at_minute,
    constant,
    counter,
    fired,
    minutes,
)
from meshwatch.settings import AlertsSettings

DEMO = {"job": "meshwatch-demo", "instance": "127.0.0.1:8000"}
PROMETHEUS = {"job": "prometheus", "instance": "127.0.0.1:9090"}
ALERTMANAGER = {"job": "alertmanager", "instance": "127.0.0.1:9093"}
RULE_GROUP = {"rule_group": "/etc/prometheus/rules/meshwatch-alerts.yml;meshwatch-ring.alerts"}


def _target_down(s: AlertsSettings, rule: AlertRule) -> list[Case]:
    at = minutes(rule.for_) + 4
    blip = f"1 1 0 1+0x{at}"
    return [
        Case(
            f"fires when a target's scrapes fail for {rule.for_}, naming its job and instance",
            (
                Series(UP.name, DEMO, f"1 1 0+0x{at}"),
                Series(UP.name, PROMETHEUS, constant(1, at + 2)),
            ),
            (AlertCheck(at_minute(at), rule.alert, (fired(rule, DEMO, 0.0),)),),
        ),
        Case(
            "stays silent when a target missed one scrape and recovered",
            (Series(UP.name, DEMO, blip),),
            (AlertCheck(at_minute(at), rule.alert),),
        ),
    ]


def _failing_counter(
    s: AlertsSettings, rule: AlertRule, metric: str, labels: Mapping[str, str], what: str
) -> list[Case]:
    """A failure counter going up by one per minute fires; one that stands still does not."""
    window = minutes(s.rate_window)
    at = window + minutes(rule.for_) + 3
    return [
        Case(
            f"fires when {what} keep failing",
            (Series(metric, labels, counter(1 / 60, at + 2)),),
            (AlertCheck(at_minute(at), rule.alert, (fired(rule, labels, float(window)),)),),
        ),
        Case(
            f"stays silent when {what} failed once long ago",
            (Series(metric, labels, constant(1, at + 2)),),
            (AlertCheck(at_minute(at), rule.alert),),
        ),
    ]


def cases(s: AlertsSettings, rules: Mapping[str, list[AlertRule]]) -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {}
    if TARGET_DOWN.name in rules:
        out[TARGET_DOWN.name] = _target_down(s, rules[TARGET_DOWN.name][0])
    if RULE_EVALUATION_FAILURES.name in rules:
        out[RULE_EVALUATION_FAILURES.name] = _failing_counter(
            s,
            rules[RULE_EVALUATION_FAILURES.name][0],
            PROMETHEUS_RULE_EVALUATION_FAILURES.name,
            {**PROMETHEUS, **RULE_GROUP},
            "rule evaluations",
        )
    if ALERTMANAGER_NOTIFICATIONS_FAILING.name in rules:
        out[ALERTMANAGER_NOTIFICATIONS_FAILING.name] = _failing_counter(
            s,
            rules[ALERTMANAGER_NOTIFICATIONS_FAILING.name][0],
            ALERTMANAGER_NOTIFICATIONS_FAILED.name,
            {**ALERTMANAGER, "integration": "webhook"},
            "webhook notifications",
        )
    return out
