"""Alert settings: every threshold, ``for`` duration and severity, with working defaults.

The defaults are the tutorial's thresholds (made correct) and the seed
requirements' ones. Each alert's YAML key is the snake_case form of its alert
name; ``meshwatch.yaml`` overrides any subset, for example::

    alerts:
      runbook_base_url: https://runbooks.example.com/meshwatch
      ring_breach_rate: {threshold: 1.0, for: 5m}
      task_error_rate: {severity: critical, min_events: 50}

Ratio alerts (``RatioAlert``) also take ``min_events``: the fewest events the
ratio's denominator must count over ``rate_window`` before the alert may fire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from meshwatch.settings.loader import Duration, check

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")


@dataclass(frozen=True)
class ThresholdAlert:
    """An alert that fires when a value crosses ``threshold`` for ``for``.

    With ``critical_threshold`` set, a second rule with the same alert name and
    severity ``critical`` fires at that level; Alertmanager inhibits the warning
    while the critical fires for the same agent.
    """

    threshold: float
    for_: Duration = field(metadata={"key": "for"})
    severity: Severity = "warning"
    critical_threshold: float | None = None

    def __post_init__(self) -> None:
        check(self.threshold >= 0, "threshold", f"must not be negative, got {self.threshold}")
        if self.critical_threshold is not None:
            check(
                self.critical_threshold >= 0,
                "critical_threshold",
                f"must not be negative, got {self.critical_threshold}",
            )


@dataclass(frozen=True)
class RatioAlert(ThresholdAlert):
    """A threshold on a ratio of rates (failed / ended tasks), guarded by a minimum volume.

    A ratio over a handful of events is noise, not a signal: an agent that ended
    two tasks and failed one has a 50% error ratio. The alert fires only where
    the ratio's denominator (ended tasks, policy decisions, ended sagas) counted
    at least ``min_events`` over ``alerts.rate_window``. It is a count over the
    window, not a per-second rate, so it means the same thing ("at least 10
    tasks ended in the window") whatever ``rate_window`` is; the rule compares
    ``rate * window_seconds`` with it. ``0`` turns the guard off.

    The thresholds are ratios, so they may not exceed 1: an alert above 1.0
    could never fire.
    """

    min_events: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.threshold <= 1, "threshold", f"is a ratio, at most 1, got {self.threshold}")
        if self.critical_threshold is not None:
            check(
                self.critical_threshold <= 1,
                "critical_threshold",
                f"is a ratio, at most 1, got {self.critical_threshold}",
            )
        check(self.min_events >= 0, "min_events", f"must not be negative, got {self.min_events}")


@dataclass(frozen=True)
class EventAlert:
    """An alert on an event or a state (target down, an escalation): no threshold."""

    for_: Duration = field(metadata={"key": "for"})
    severity: Severity = "warning"


@dataclass(frozen=True)
class PredictiveAlert:
    """``predict_linear`` over ``lookback`` says a threshold is crossed within ``horizon``."""

    lookback: Duration = Duration("1h")
    horizon: Duration = Duration("1h")
    for_: Duration = field(default=Duration("15m"), metadata={"key": "for"})
    severity: Severity = "warning"


@dataclass(frozen=True)
class BudgetForecastAlert(PredictiveAlert):
    """A forecast of the LLM spend over 24 hours crossing ``daily_budget_usd``.

    The default budget is a placeholder, not advice: set yours. The forecast
    is ``predict_linear`` over ``lookback`` of the spend of the last 24 hours.
    """

    daily_budget_usd: float = 100.0

    def __post_init__(self) -> None:
        check(
            self.daily_budget_usd > 0,
            "daily_budget_usd",
            f"must be a positive amount of US dollars, got {self.daily_budget_usd}",
        )


@dataclass(frozen=True)
class AnomalyAlert:
    """An agent's rate departs from its own baseline by more than ``z_score`` deviations.

    The baseline (mean and standard deviation over ``baseline_window``) is
    computed by recording rules; ``z_score`` is a statistical bound, not a
    hand-set rate threshold.
    """

    z_score: float = 3.0
    baseline_window: Duration = Duration("1h")
    for_: Duration = field(default=Duration("10m"), metadata={"key": "for"})
    severity: Severity = "warning"

    def __post_init__(self) -> None:
        check(self.z_score > 0, "z_score", f"must be positive, got {self.z_score}")


def _t(
    threshold: float, for_: str, severity: Severity = "warning", critical: float | None = None
) -> ThresholdAlert:
    return field(
        default_factory=lambda: ThresholdAlert(threshold, Duration(for_), severity, critical)
    )


def _r(
    threshold: float, for_: str, severity: Severity = "warning", critical: float | None = None
) -> RatioAlert:
    return field(default_factory=lambda: RatioAlert(threshold, Duration(for_), severity, critical))


def _e(for_: str, severity: Severity = "warning") -> EventAlert:
    return field(default_factory=lambda: EventAlert(Duration(for_), severity))


@dataclass(frozen=True)
class AlertsSettings:
    """Every alert's knobs. Thresholds are in base units (seconds, ratios 0-1, per second).

    The ratio alerts (``governance_denial_ratio``, ``saga_failure_ratio``,
    ``task_error_rate``, ``task_success_rate_low``) default to ``min_events: 10``:
    ten decisions, ended sagas or ended tasks in the rate window before a ratio
    means anything. Raise it for busy agents whose blips should not page; lower
    it for agents that do only a few, important, tasks per window.
    """

    runbook_base_url: str = "https://github.com/meshwatch/meshwatch/blob/main/docs/runbooks"
    rate_window: Duration = Duration("5m")
    disabled: tuple[str, ...] = ()
    # The three tutorial alerts, made correct.
    ring_breach_rate: ThresholdAlert = _t(0.5, "2m", "warning", critical=2.0)
    elevation_too_long: ThresholdAlert = _t(300.0, "1m")
    governance_latency_high: ThresholdAlert = _t(0.05, "5m")
    # Governance.
    governance_denial_ratio: RatioAlert = _r(0.25, "10m")
    rate_limit_surge: ThresholdAlert = _t(1.0, "5m")
    trust_score_low: ThresholdAlert = _t(300.0, "5m")
    # Sagas.
    saga_failure_ratio: RatioAlert = _r(0.2, "10m")
    saga_compensation_rate: ThresholdAlert = _t(0.1, "10m")
    saga_escalated: EventAlert = _e("0s", "critical")
    # Agent work.
    task_error_rate: RatioAlert = _r(0.10, "5m", "warning", critical=0.25)
    task_success_rate_low: RatioAlert = _r(0.80, "10m", "critical")
    task_duration_p95_high: ThresholdAlert = _t(30.0, "10m")
    queue_backlog_growing: ThresholdAlert = _t(50.0, "15m")
    # Forecast and anomaly.
    governance_latency_predicted: PredictiveAlert = field(default_factory=PredictiveAlert)
    task_rate_anomaly: AnomalyAlert = field(default_factory=AnomalyAlert)
    # LLM calls and cost.
    llm_budget_forecast: BudgetForecastAlert = field(default_factory=BudgetForecastAlert)
    llm_cost_spike: AnomalyAlert = field(default_factory=AnomalyAlert)
    # A factor: LLM calls per agent invocation over the agent's normal of the 6 hours before.
    llm_runaway_agent: ThresholdAlert = _t(5.0, "5m")
    llm_error_ratio: RatioAlert = field(
        default_factory=lambda: RatioAlert(0.1, Duration("10m"), "warning", min_events=20)
    )
    # The monitoring stack itself.
    target_down: EventAlert = _e("2m", "critical")
    rule_evaluation_failures: EventAlert = _e("5m")
    notifications_failing: EventAlert = _e("5m", "critical")
    # The remediation receiver (meshwatch.remediation): an allow-listed alert it did not
    # act on needs a person; an open circuit breaker means automation has stopped.
    remediation_failing: EventAlert = _e("0s")
    remediation_circuit_open: EventAlert = _e("0s", "critical")

    def __post_init__(self) -> None:
        check(
            self.runbook_base_url.startswith(("http://", "https://")),
            "runbook_base_url",
            f"must be an http(s) URL, got {self.runbook_base_url!r}",
        )

    def runbook_url(self, alertname: str) -> str:
        """Where the runbook of ``alertname`` lives (docs/runbooks/<alertname>.md)."""
        return f"{self.runbook_base_url.rstrip('/')}/{alertname}.md"
