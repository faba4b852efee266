"""``PrometheusRule`` objects: one per rule file, holding exactly that file's groups.

They are built from the same :class:`~meshwatch.alerts.RuleGroup` values as
the rule files (``prometheus/rules/*.yml``, written beside them so
``promtool test rules`` can run the generated unit tests), so the object and
the file cannot disagree; ``meshwatch check`` compares them anyway. The
operator loads a PrometheusRule only when its labels match the Prometheus
``ruleSelector``: ``kubernetes.operator_labels``.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from meshwatch import alerts
from meshwatch.alerts.model import RuleGroup
from meshwatch.generated import GeneratedFile
from meshwatch.kubernetes.objects import MONITORING_V1, manifest, metadata
from meshwatch.settings import Settings

PREFIX = "prometheusrule-"


def rule_groups_by_file(settings: Settings) -> dict[str, list[RuleGroup]]:
    """The rule files the alerts generator writes, by path, with their groups."""
    files = {alerts.RECORDING_FILE: alerts.recording_file_groups(settings)}
    groups = alerts.alert_file_groups(settings)
    if groups:
        files[alerts.ALERTS_FILE] = groups
    return files


def object_name(rule_file: str) -> str:
    """The PrometheusRule's name for a rule file: its stem (``meshwatch-alerts``)."""
    return PurePosixPath(rule_file).stem


def render(settings: Settings) -> list[GeneratedFile]:
    k8s = settings.kubernetes
    return [
        manifest(
            PREFIX + object_name(path),
            {
                "apiVersion": MONITORING_V1,
                "kind": "PrometheusRule",
                "metadata": metadata(k8s, object_name(path), labels=k8s.operator_labels),
                "spec": {"groups": [group.to_dict() for group in groups]},
            },
            comment=f"The groups of {path}.",
        )
        for path, groups in rule_groups_by_file(settings).items()
    ]
