"""The pass every alert goes through: settings severity, runbook link, disabled alerts.

Like kubernetes-mixin's runbook-URL pass, this adds what every alert needs in
one place instead of repeating it in each rule: the ``severity`` label comes
from the alert's settings entry (unless the rule pinned one, as a critical
tier does) and ``runbook_url`` from ``settings.alerts.runbook_url``. Which
entry belongs to which alert is the alert catalogue's
(:mod:`meshwatch.alerts.catalogue`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from meshwatch.alerts.catalogue import ALERT_CATALOGUE, ALERT_NAMES
from meshwatch.alerts.model import AlertRule
from meshwatch.settings import AlertsSettings, SettingsError


def check_disabled(settings: AlertsSettings) -> None:
    """A name in ``alerts.disabled`` that is no alert is a typo that would keep it on."""
    for index, name in enumerate(settings.disabled):
        if name not in ALERT_NAMES:
            known = ", ".join(sorted(ALERT_NAMES))
            raise SettingsError(
                f"alerts.disabled[{index}]", f"no alert is named {name!r} (alerts: {known})"
            )


def apply(rules: Iterable[AlertRule], settings: AlertsSettings) -> list[AlertRule]:
    """The enabled rules, each with its ``severity`` and ``runbook_url`` filled in."""
    check_disabled(settings)
    out = []
    for rule in rules:
        if rule.alert not in ALERT_CATALOGUE:
            raise ValueError(f"alert {rule.alert} is not in the alert catalogue")
        alert = ALERT_CATALOGUE.get(rule.alert)
        if rule.alert in settings.disabled:
            continue
        severity = rule.severity or alert.config(settings).severity
        annotations = {**rule.annotations, "runbook_url": alert.runbook_url(settings)}
        out.append(dataclasses.replace(rule, severity=severity, annotations=annotations))
    return out
