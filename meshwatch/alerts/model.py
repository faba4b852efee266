"""Typed Prometheus rules: recording rules, alert rules and rule groups.

Rules are values built in Python from the metric catalogue and the settings,
validated when they are built (a misspelt record name or a missing summary is
a ``ValueError`` at import or render time, not a surprise in Prometheus), and
turned into plain dicts by ``to_dict()`` for the YAML renderer.

Recording rules are named ``level:metric:operations`` (the Prometheus naming
convention): ``level`` lists the labels the result keeps (empty when it keeps
none), ``metric`` the metric it derives from (``_total`` stripped once a rate is
taken), ``operations`` what was applied, newest first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from meshwatch.settings import SEVERITIES, Duration, Severity

RECORD_NAME_RE = re.compile(r"[a-z_]*:[a-z][a-z0-9_]*:[a-z][a-z0-9_]*")
ALERT_NAME_RE = re.compile(r"[A-Z][A-Za-z0-9]*")
LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _frozen_labels(labels: Mapping[str, str], what: str) -> Mapping[str, str]:
    for name, value in labels.items():
        if not LABEL_NAME_RE.fullmatch(name) or name.startswith("__"):
            raise ValueError(f"{what}: invalid label name {name!r}")
        if not isinstance(value, str):
            raise ValueError(f"{what}: label {name!r} must be a string, got {value!r}")
    return MappingProxyType(dict(sorted(labels.items())))


def label_matchers(labels: Mapping[str, str]) -> str:
    """``{a="1",b="2"}`` for a selector, or an empty string for no labels."""
    if not labels:
        return ""
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


@dataclass(frozen=True)
class RecordingRule:
    """A recording rule, optionally rebuildable over another rate window.

    ``over`` (with ``window``) is the expression as a function of the rate
    window it was recorded with. Alerts call :meth:`at` with the settings'
    rate window: at the recorded window they read the cheap recorded series,
    at any other window they get the same computation inline, so a deployment
    can change ``alerts.rate_window`` without renaming series dashboards read.
    """

    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)
    window: Duration | None = None
    over: Callable[[str], str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not RECORD_NAME_RE.fullmatch(self.record):
            raise ValueError(f"record name {self.record!r} must be level:metric:operations")
        if not self.expr.strip():
            raise ValueError(f"recording rule {self.record}: empty expression")
        if (self.over is None) != (self.window is None):
            raise ValueError(f"recording rule {self.record}: give both window and over, or none")
        object.__setattr__(self, "labels", _frozen_labels(self.labels, self.record))

    @classmethod
    def windowed(
        cls,
        record: str,
        window: str,
        over: Callable[[str], str],
        labels: Mapping[str, str] | None = None,
    ) -> RecordingRule:
        """A rule whose expression is ``over(window)``; :meth:`at` rebuilds it for other windows."""
        duration = Duration(window)
        return cls(record, over(duration), dict(labels or {}), duration, over)

    @property
    def selector(self) -> str:
        """PromQL selecting exactly this rule's output series (record name and static labels)."""
        return self.record + label_matchers(self.labels)

    def at(self, window: str) -> str:
        """This rule's result over rate window ``window``, as a PromQL expression.

        The recorded series when ``window`` is the recorded one (or the rule
        has no window); otherwise the expression inline, with the static labels
        added by ``label_replace`` so alerts keep the same label set either way.
        """
        if self.over is None or self.window is None:
            return self.selector
        if Duration(window).seconds == self.window.seconds:
            return self.selector
        expr = self.over(Duration(window))
        for name, value in self.labels.items():
            expr = f'label_replace({expr}, "{name}", "{value}", "", "")'
        return f"({expr})"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"record": self.record, "expr": self.expr}
        if self.labels:
            out["labels"] = dict(self.labels)
        return out


@dataclass(frozen=True)
class AlertRule:
    """An alerting rule.

    ``severity`` may be left ``None`` by the rule modules: the conventions
    pass (:mod:`meshwatch.alerts.conventions`) fills it from the alert's
    settings entry and adds ``runbook_url``, once for every alert. Only a rule
    that pins its own severity (the critical tier of a two-tier alert) sets it.
    """

    alert: str
    expr: str
    for_: Duration
    summary: str
    description: str
    severity: Severity | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not ALERT_NAME_RE.fullmatch(self.alert):
            raise ValueError(f"alert name {self.alert!r} must be CamelCase")
        if not self.expr.strip():
            raise ValueError(f"alert {self.alert}: empty expression")
        if not isinstance(self.for_, Duration):
            object.__setattr__(self, "for_", Duration(self.for_))
        if self.severity is not None and self.severity not in SEVERITIES:
            raise ValueError(f"alert {self.alert}: severity must be one of {SEVERITIES}")
        if not self.summary.strip() or not self.description.strip():
            raise ValueError(f"alert {self.alert}: summary and description are required")
        if "severity" in self.labels:
            raise ValueError(f"alert {self.alert}: set severity with the severity field")
        clash = {"summary", "description"} & set(self.annotations)
        if clash:
            raise ValueError(f"alert {self.alert}: {sorted(clash)} are fields, not annotations")
        object.__setattr__(self, "labels", _frozen_labels(self.labels, self.alert))
        object.__setattr__(
            self, "annotations", MappingProxyType(dict(sorted(self.annotations.items())))
        )

    @property
    def all_annotations(self) -> dict[str, str]:
        """Every annotation, summary and description included, sorted by name."""
        merged = {**self.annotations, "summary": self.summary, "description": self.description}
        return dict(sorted(merged.items()))

    def to_dict(self) -> dict[str, Any]:
        if self.severity is None or "runbook_url" not in self.annotations:
            raise ValueError(
                f"alert {self.alert}: severity and runbook_url are missing "
                "(render through meshwatch.alerts.conventions.apply)"
            )
        out: dict[str, Any] = {"alert": self.alert, "expr": self.expr}
        if self.for_.seconds:
            out["for"] = str(self.for_)
        out["labels"] = {**self.labels, "severity": self.severity}
        out["annotations"] = self.all_annotations
        return out


Rule = RecordingRule | AlertRule


@dataclass(frozen=True)
class RuleGroup:
    """A named group of rules, evaluated together in order by Prometheus."""

    name: str
    rules: tuple[Rule, ...]

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9.-]*", self.name):
            raise ValueError(f"rule group name {self.name!r}: lowercase, digits, '.' and '-'")
        if not self.rules:
            raise ValueError(f"rule group {self.name} has no rules")
        keys = [
            (r.record, tuple(r.labels.items())) for r in self.rules if isinstance(r, RecordingRule)
        ]
        if len(keys) != len(set(keys)):
            raise ValueError(f"rule group {self.name} records the same series twice")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rules": [rule.to_dict() for rule in self.rules]}
