"""Prometheus alert and recording rules as Python values, rendered to rule files.

>>> from meshwatch.settings import Settings
>>> from meshwatch import alerts
>>> [f.path for f in alerts.render(Settings())][:2]
['prometheus/rules/meshwatch-alerts.yml', 'prometheus/rules/meshwatch-recording.yml']

Rules are built from the metric catalogue and ``settings.alerts`` (every
threshold, ``for`` and severity): :mod:`meshwatch.alerts.catalogue` names every alert once,
:mod:`meshwatch.alerts.recording` holds the
recorded series dashboards read, :mod:`meshwatch.alerts.rules` the alerts,
:mod:`meshwatch.alerts.slos` the SLOs' error ratios, budgets and burn-rate
alerts (from ``settings.slos``),
:mod:`meshwatch.alerts.external_metrics` the stack's own metrics, and
:mod:`meshwatch.alerts.ruletests` the promtool unit tests rendered beside the
rules so ``meshwatch check`` proves them against the settings they came from.
"""

from __future__ import annotations

from meshwatch.alerts.catalogue import ALERT_CATALOGUE, ALERT_NAMES, AlertDef
from meshwatch.alerts.groups import (
    alert_file_groups,
    alert_groups,
    recording_file_groups,
    recording_groups,
)
from meshwatch.alerts.model import AlertRule, RecordingRule, RuleGroup
from meshwatch.alerts.recording import RECORDING_RULES, recording_rules
from meshwatch.alerts.render import ALERTS_FILE, RECORDING_FILE, RULES_DIR, TESTS_DIR, rule_file
from meshwatch.alerts.rules import alert_rules
from meshwatch.generated import GeneratedFile
from meshwatch.settings import Settings


def render(settings: Settings) -> list[GeneratedFile]:
    """The rule files and their promtool unit tests, under ``prometheus/rules/``."""
    from meshwatch.alerts.ruletests import unit_test_files

    groups = alert_file_groups(settings)
    files = [GeneratedFile(RECORDING_FILE, rule_file(recording_file_groups(settings)))]
    if groups:
        files.append(GeneratedFile(ALERTS_FILE, rule_file(groups)))
    files.extend(unit_test_files(settings))
    return sorted(files, key=lambda f: f.path)


__all__ = [
    "ALERTS_FILE",
    "ALERT_CATALOGUE",
    "ALERT_NAMES",
    "RECORDING_FILE",
    "RECORDING_RULES",
    "RULES_DIR",
    "TESTS_DIR",
    "AlertDef",
    "AlertRule",
    "RecordingRule",
    "RuleGroup",
    "alert_file_groups",
    "alert_groups",
    "alert_rules",
    "recording_file_groups",
    "recording_groups",
    "recording_rules",
    "render",
]
