"""Every alert meshwatch generates, defined once: its name, settings key, area and how it fires.

As :mod:`meshwatch.instrumentation.catalogue` is the one place metric names are
spelled, this is the one place alert names are: the rule modules, the promtool
cases, the dashboards' threshold lines and runbook links, the conventions pass
and the runbook index read an :class:`AlertDef` from here instead of repeating
a string that could drift (``tests/unit/test_alert_catalogue.py`` fails on an
alert name spelled anywhere else in the package).

An alert's severity tiers are not constants: they come from its entry in
``settings.alerts`` (:meth:`AlertDef.tiers`), so a deployment's
``critical_threshold`` shows up in the rules, the cases and the panels alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from meshwatch.settings import (
    SEVERITIES,
    AlertsSettings,
    AnomalyAlert,
    EventAlert,
    PredictiveAlert,
    Severity,
    SloSettings,
    ThresholdAlert,
)

#: How an alert fires: its value crosses a threshold upwards or downwards, an
#: event or state happened, a value left its own baseline, or a forecast crosses
#: another alert's threshold.
Fires = Literal["above", "below", "on_event", "off_baseline", "on_forecast"]
Direction = Literal["above", "below"]
AlertConfig = ThresholdAlert | EventAlert | PredictiveAlert | AnomalyAlert

_CONFIG_TYPE: Mapping[Fires, type] = MappingProxyType(
    {
        "above": ThresholdAlert,
        "below": ThresholdAlert,
        "on_event": EventAlert,
        "off_baseline": AnomalyAlert,
        "on_forecast": PredictiveAlert,
    }
)


@dataclass(frozen=True)
class Tier:
    """One severity level of an alert; ``level`` is where it fires (None for event alerts)."""

    severity: Severity
    level: float | None


@dataclass(frozen=True)
class AlertDef:
    """One alert: ``name`` (its ``alertname``), ``key`` (its entry in ``settings.alerts``).

    ``area`` groups it in the runbook index; ``fires`` says what kind of
    settings entry it reads and how a panel draws it.
    """

    name: str
    key: str
    area: str
    fires: Fires

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", self.name):
            raise ValueError(f"alert name {self.name!r} must be CamelCase")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.key):
            raise ValueError(f"alert {self.name}: settings key {self.key!r} must be snake_case")

    @property
    def runbook(self) -> str:
        """The runbook's file name in ``docs/runbooks/``."""
        return f"{self.name}.md"

    def runbook_url(self, settings: AlertsSettings) -> str:
        """Where the runbook lives for a deployment (``alerts.runbook_base_url``)."""
        return settings.runbook_url(self.name)

    def config(self, settings: AlertsSettings) -> AlertConfig:
        """This alert's entry in ``settings.alerts``, checked to be of the kind ``fires`` needs."""
        entry: AlertConfig = getattr(settings, self.key)
        expected = _CONFIG_TYPE[self.fires]
        if not isinstance(entry, expected):
            raise TypeError(f"alerts.{self.key} is no {expected.__name__} (alert {self.name})")
        return entry

    def threshold(self, settings: AlertsSettings) -> ThresholdAlert:
        """The entry of a threshold alert (``fires`` above or below)."""
        entry = self.config(settings)
        if not isinstance(entry, ThresholdAlert):
            raise TypeError(f"alert {self.name} has no threshold")
        return entry

    @property
    def direction(self) -> Direction:
        """``above`` or ``below`` for a threshold alert; anything else has no direction."""
        if self.fires == "above" or self.fires == "below":
            return self.fires
        raise TypeError(f"alert {self.name} fires {self.fires}, not across a threshold")

    def tiers(self, settings: AlertsSettings) -> tuple[Tier, ...]:
        """The severities this alert fires at, lowest first, with the level of each.

        A threshold alert with ``critical_threshold`` has two tiers (two rules
        with one name); an anomaly alert's level is its z-score; an event or
        forecast alert has one tier and no level of its own.
        """
        entry = self.config(settings)
        if isinstance(entry, ThresholdAlert):
            base = Tier(entry.severity, entry.threshold)
            if entry.critical_threshold is None:
                return (base,)
            return (base, Tier("critical", entry.critical_threshold))
        if isinstance(entry, AnomalyAlert):
            return (Tier(entry.severity, entry.z_score),)
        return (Tier(entry.severity, None),)


RING = "ring enforcement"
GOVERNANCE = "governance"
SAGAS = "sagas"
WORK = "agent work"
LLM = "LLM calls and cost"
STACK = "the stack itself"
REMEDIATION = "remediation"

# The three tutorial alerts, made correct.
HIGH_RING_BREACH_RATE = AlertDef("HighRingBreachRate", "ring_breach_rate", RING, "above")
ELEVATION_TOO_LONG = AlertDef("ElevationTooLong", "elevation_too_long", RING, "above")
GOVERNANCE_LATENCY_HIGH = AlertDef(
    "GovernanceLatencyHigh", "governance_latency_high", GOVERNANCE, "above"
)
GOVERNANCE_LATENCY_PREDICTED_HIGH = AlertDef(
    "GovernanceLatencyPredictedHigh", "governance_latency_predicted", GOVERNANCE, "on_forecast"
)
GOVERNANCE_DENIAL_RATIO_HIGH = AlertDef(
    "GovernanceDenialRatioHigh", "governance_denial_ratio", GOVERNANCE, "above"
)
RATE_LIMIT_SURGE = AlertDef("RateLimitSurge", "rate_limit_surge", GOVERNANCE, "above")
TRUST_SCORE_LOW = AlertDef("TrustScoreLow", "trust_score_low", GOVERNANCE, "below")
SAGA_FAILURE_RATIO_HIGH = AlertDef("SagaFailureRatioHigh", "saga_failure_ratio", SAGAS, "above")
SAGA_COMPENSATION_RATE_HIGH = AlertDef(
    "SagaCompensationRateHigh", "saga_compensation_rate", SAGAS, "above"
)
SAGA_ESCALATED = AlertDef("SagaEscalated", "saga_escalated", SAGAS, "on_event")
AGENT_TASK_ERROR_RATE_HIGH = AlertDef("AgentTaskErrorRateHigh", "task_error_rate", WORK, "above")
AGENT_TASK_SUCCESS_RATE_LOW = AlertDef(
    "AgentTaskSuccessRateLow", "task_success_rate_low", WORK, "below"
)
AGENT_TASK_DURATION_HIGH = AlertDef(
    "AgentTaskDurationHigh", "task_duration_p95_high", WORK, "above"
)
AGENT_QUEUE_BACKLOG_GROWING = AlertDef(
    "AgentQueueBacklogGrowing", "queue_backlog_growing", WORK, "above"
)
AGENT_TASK_RATE_ANOMALY = AlertDef(
    "AgentTaskRateAnomaly", "task_rate_anomaly", WORK, "off_baseline"
)
LLM_SPEND_OVER_BUDGET = AlertDef(
    "LLMSpendForecastOverBudget", "llm_budget_forecast", LLM, "on_forecast"
)
LLM_COST_SPIKE = AlertDef("LLMCostSpike", "llm_cost_spike", LLM, "off_baseline")
LLM_RUNAWAY_AGENT = AlertDef("LLMRunawayAgent", "llm_runaway_agent", LLM, "above")
LLM_ERROR_RATIO_HIGH = AlertDef("LLMErrorRatioHigh", "llm_error_ratio", LLM, "above")
TARGET_DOWN = AlertDef("TargetDown", "target_down", STACK, "on_event")
# Named for its settings key: the metric it reads is PROMETHEUS_RULE_EVALUATION_FAILURES.
RULE_EVALUATION_FAILURES = AlertDef(
    "PrometheusRuleEvaluationFailures", "rule_evaluation_failures", STACK, "on_event"
)
ALERTMANAGER_NOTIFICATIONS_FAILING = AlertDef(
    "AlertmanagerNotificationsFailing", "notifications_failing", STACK, "on_event"
)


# The remediation receiver watching itself (meshwatch.remediation).
REMEDIATION_FAILING = AlertDef("RemediationFailing", "remediation_failing", REMEDIATION, "on_event")
REMEDIATION_CIRCUIT_OPEN = AlertDef(
    "RemediationCircuitOpen", "remediation_circuit_open", REMEDIATION, "on_event"
)


class AlertCatalogue:
    """The alerts in index order, looked up by name; names and settings keys are unique."""

    def __init__(self, *alerts: AlertDef) -> None:
        self._by_name = {a.name: a for a in alerts}
        if len(self._by_name) != len(alerts):
            raise ValueError("two alerts share a name")
        if len({a.key for a in alerts}) != len(alerts):
            raise ValueError("two alerts share a settings key")

    def __iter__(self) -> Iterator[AlertDef]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str) -> AlertDef:
        """The alert named ``name``; a ``KeyError`` naming the known alerts otherwise."""
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(sorted(self._by_name))
            raise KeyError(f"no alert is named {name!r} (alerts: {known})") from None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)


ALERT_CATALOGUE = AlertCatalogue(
    HIGH_RING_BREACH_RATE,
    ELEVATION_TOO_LONG,
    GOVERNANCE_LATENCY_HIGH,
    GOVERNANCE_LATENCY_PREDICTED_HIGH,
    GOVERNANCE_DENIAL_RATIO_HIGH,
    RATE_LIMIT_SURGE,
    TRUST_SCORE_LOW,
    SAGA_FAILURE_RATIO_HIGH,
    SAGA_COMPENSATION_RATE_HIGH,
    SAGA_ESCALATED,
    AGENT_TASK_ERROR_RATE_HIGH,
    AGENT_TASK_SUCCESS_RATE_LOW,
    AGENT_TASK_DURATION_HIGH,
    AGENT_QUEUE_BACKLOG_GROWING,
    AGENT_TASK_RATE_ANOMALY,
    LLM_SPEND_OVER_BUDGET,
    LLM_COST_SPIKE,
    LLM_RUNAWAY_AGENT,
    LLM_ERROR_RATIO_HIGH,
    TARGET_DOWN,
    RULE_EVALUATION_FAILURES,
    ALERTMANAGER_NOTIFICATIONS_FAILING,
    REMEDIATION_FAILING,
    REMEDIATION_CIRCUIT_OPEN,
)


@dataclass(frozen=True)
class BurnRateAlertDef:
    """The SLO burn-rate alert: one rule per SLO of ``settings.slos`` and per burn-rate pair.

    It reads no entry of ``settings.alerts``, so it is kept out of
    :data:`ALERT_CATALOGUE` (whose every alert has one); its severities are
    those of ``settings.slos.burn_rate_alerts``, each rule pinning its own.
    """

    name: str
    area: str

    @property
    def runbook(self) -> str:
        """The runbook's file name in ``docs/runbooks/``."""
        return f"{self.name}.md"

    def runbook_url(self, settings: AlertsSettings) -> str:
        """Where the runbook lives for a deployment (``alerts.runbook_base_url``)."""
        return settings.runbook_url(self.name)

    def tiers(self, settings: SloSettings) -> tuple[Tier, ...]:
        """Each severity the pairs fire at, least severe first, at its smallest factor."""
        lowest: dict[Severity, float] = {}
        for pair in settings.burn_rate_alerts:
            lowest[pair.severity] = min(pair.factor, lowest.get(pair.severity, pair.factor))
        return tuple(Tier(s, lowest[s]) for s in SEVERITIES if s in lowest)


SLOS = "SLOs"
SLO_ERROR_BUDGET_BURN = BurnRateAlertDef("SLOErrorBudgetBurn", SLOS)
#: Every alert name: the catalogue's, then the SLO burn-rate alert.
ALERT_NAMES: tuple[str, ...] = (*ALERT_CATALOGUE.names, SLO_ERROR_BUDGET_BURN.name)
