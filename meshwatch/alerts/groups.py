"""The rule groups of the two rule files, in file order: area rules, then the SLOs'.

One place decides which groups exist, so the rule files and the
``group_eval_order`` of their promtool tests never disagree.
"""

from __future__ import annotations

from meshwatch.alerts import slos
from meshwatch.alerts.model import RuleGroup
from meshwatch.alerts.recording import recording_rule_groups
from meshwatch.alerts.rules import alert_rules_by_group
from meshwatch.settings import AlertsSettings, Settings


def recording_groups(settings: AlertsSettings) -> list[RuleGroup]:
    """The recording rule groups of ``settings.alerts`` (the SLOs' are :func:`recording`'s)."""
    return [RuleGroup(name, rules) for name, rules in recording_rule_groups(settings).items()]


def alert_groups(settings: AlertsSettings) -> list[RuleGroup]:
    """The alert rule groups of ``settings.alerts`` (disabled alerts left out)."""
    return [RuleGroup(name, tuple(rules)) for name, rules in alert_rules_by_group(settings).items()]


def recording_file_groups(settings: Settings) -> list[RuleGroup]:
    """Every recording group of the recording rule file."""
    return [*recording_groups(settings.alerts), *slos.recording_groups(settings.slos)]


def alert_file_groups(settings: Settings) -> list[RuleGroup]:
    """Every alert group of the alert rule file (none when every alert is disabled)."""
    return [*alert_groups(settings.alerts), *slos.alert_groups(settings)]
