"""Alert rules by area; :func:`alert_rules` returns them all, conventions applied."""

from __future__ import annotations

from collections.abc import Callable

from meshwatch.alerts import conventions
from meshwatch.alerts.model import AlertRule
from meshwatch.alerts.rules import governance, llm, meta, remediation, ring, sagas, tasks
from meshwatch.settings import AlertsSettings

#: Rule group name -> the function building its alerts, in file order.
AREAS: dict[str, Callable[[AlertsSettings], list[AlertRule]]] = {
    "meshwatch-ring.alerts": ring.alerts,
    "meshwatch-governance.alerts": governance.alerts,
    "meshwatch-sagas.alerts": sagas.alerts,
    "meshwatch-tasks.alerts": tasks.alerts,
    "meshwatch-llm.alerts": llm.alerts,
    "meshwatch-meta.alerts": meta.alerts,
    "meshwatch-remediation.alerts": remediation.alerts,
}


def alert_rules_by_group(settings: AlertsSettings) -> dict[str, list[AlertRule]]:
    """Enabled alerts with severity and runbook_url, by rule group (empty groups left out)."""
    groups = {name: conventions.apply(build(settings), settings) for name, build in AREAS.items()}
    return {name: rules for name, rules in groups.items() if rules}


def alert_rules(settings: AlertsSettings) -> list[AlertRule]:
    """Every enabled alert rule (a two-tier alert is two rules), conventions applied."""
    return [rule for rules in alert_rules_by_group(settings).values() for rule in rules]


__all__ = ["AREAS", "alert_rules", "alert_rules_by_group"]
