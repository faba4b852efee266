"""Recording rules: the derived series alerts and dashboards read.

Each rule is a module constant, so dashboards import the name instead of
spelling it (``recording.RING_BREACH_RATE.record``, or ``.selector`` for the
PromQL that selects exactly its series). The names are stable: they say the
window they were computed over (``rate5m``) and never change with settings.
:func:`recording_rules` returns the rules for a settings object; only the
anomaly baseline's window and offset depend on settings, never a name.

Why recording rules at all, beyond cost: the tutorial's latency query,
``histogram_quantile(0.99, agent_governance_evaluation_latency_ms)``, cannot
work. ``histogram_quantile`` needs the per-``le`` bucket *rates* of a
histogram (``rate(..._bucket[5m])`` summed ``by (le)``), not the raw metric,
and a latency in milliseconds breaks the base-unit convention. Computing the
bucket rates once here, summed by ``le`` across every label the instrumented
process adds, makes the quantile independent of the bucket layout: a process
with different buckets still yields a correct (coarser or finer) estimate.
"""

from __future__ import annotations

from collections.abc import Callable

from meshwatch.alerts.model import RecordingRule
from meshwatch.alerts.promql import duration, sum_by, sum_rate
from meshwatch.instrumentation.catalogue import (
    GOVERNANCE_BLOCKED,
    GOVERNANCE_DECISIONS,
    GOVERNANCE_LATENCY,
    GOVERNANCE_RATE_LIMIT_HITS,
    RING_BREACHES,
    RING_TRANSITIONS,
    SAGA_COMPENSATIONS,
    SAGA_STEPS,
    SAGAS,
    TASK_DURATION,
    TASKS_COMPLETED,
    TASKS_FAILED,
    TASKS_STARTED,
)
from meshwatch.settings import AlertsSettings, Duration

#: The window every recorded rate uses (and every record name says).
RATE_WINDOW = Duration("5m")
QUANTILES = (0.5, 0.95, 0.99)


def _windowed(
    record: str, over: Callable[[str], str], labels: dict[str, str] | None = None
) -> RecordingRule:
    return RecordingRule.windowed(record, RATE_WINDOW, over, labels)


def _quantiles(
    record: str, by: tuple[str, ...], buckets: RecordingRule
) -> tuple[RecordingRule, ...]:
    """p50/p95/p99 over ``buckets`` (a ``sum by (le, ...)`` of bucket rates), one rule each."""
    return tuple(
        _windowed(
            record,
            lambda w, q=q: f"histogram_quantile({q}, {buckets.at(w)})",
            {"quantile": str(q)},
        )
        for q in QUANTILES
    )


def _ratio(part: str, rest: str) -> str:
    """``part / (part + rest)``, where a missing side counts as zero.

    A counter series exists only once it was incremented, so an agent whose
    every task failed has no ``completed`` series, and one that never failed
    has no ``failed`` series. ``x or y * 0`` fills the missing side with zero,
    so the ratio is 1.0 or 0.0 for such agents instead of silently absent
    (which would hide exactly the agent that fails everything).
    """
    return f"({part} or {rest} * 0) / ({_total(part, rest)})"


def _total(one: str, other: str) -> str:
    """``one + other``, where a missing side counts as zero (see :func:`_ratio`)."""
    return f"({one} or {other} * 0) + ({other} or {one} * 0)"


def _share(part: str, whole: str) -> str:
    """``part / whole``, zero (not absent) where ``whole`` has series but ``part`` has none."""
    return f"({part} or {whole} * 0) / {whole}"


# --- Ring enforcement ---------------------------------------------------------------
RING_BREACH_RATE = _windowed(
    "agent_did:agent_hypervisor_ring_breaches:rate5m",
    lambda w: sum_rate(("agent_did",), RING_BREACHES.name, w),
)
RING_TRANSITION_RATE = _windowed(
    "event_type:agent_hypervisor_ring_transitions:rate5m",
    lambda w: sum_rate(("event_type",), RING_TRANSITIONS.name, w),
)

# --- Governance ----------------------------------------------------------------------
GOVERNANCE_LATENCY_BUCKET_RATE = _windowed(
    "le:agent_governance_evaluation_latency_seconds_bucket:rate5m",
    lambda w: sum_rate(("le",), f"{GOVERNANCE_LATENCY.name}_bucket", w),
)
#: One record name, a ``quantile`` label per rule (0.5, 0.95, 0.99).
GOVERNANCE_LATENCY_QUANTILE = (
    "quantile:agent_governance_evaluation_latency_seconds:histogram_quantile_rate5m"
)
GOVERNANCE_LATENCY_P50, GOVERNANCE_LATENCY_P95, GOVERNANCE_LATENCY_P99 = _quantiles(
    GOVERNANCE_LATENCY_QUANTILE, (), GOVERNANCE_LATENCY_BUCKET_RATE
)
GOVERNANCE_DECISION_RATE = _windowed(
    "decision:agent_governance_policy_decisions:rate5m",
    lambda w: sum_rate(("decision",), GOVERNANCE_DECISIONS.name, w),
)
#: Blocked tool calls (rate-limited included) per policy decision, fleet-wide.
GOVERNANCE_DENIAL_RATIO = _windowed(
    ":agent_governance_tool_calls_blocked:ratio_rate5m",
    lambda w: _share(
        sum_rate((), GOVERNANCE_BLOCKED.name, w), sum_rate((), GOVERNANCE_DECISIONS.name, w)
    ),
)
GOVERNANCE_RATE_LIMIT_RATE = _windowed(
    "tool_name:agent_governance_rate_limit_hits:rate5m",
    lambda w: sum_rate(("tool_name",), GOVERNANCE_RATE_LIMIT_HITS.name, w),
)

# --- Agent tasks -------------------------------------------------------------------
TASK_START_RATE = _windowed(
    "agent_did:agent_tasks_started:rate5m",
    lambda w: sum_rate(("agent_did",), TASKS_STARTED.name, w),
)
TASK_COMPLETION_RATE = _windowed(
    "agent_did:agent_tasks_completed:rate5m",
    lambda w: sum_rate(("agent_did",), TASKS_COMPLETED.name, w),
)
TASK_FAILURE_RATE = _windowed(
    "agent_did:agent_tasks_failed:rate5m",
    lambda w: sum_rate(("agent_did",), TASKS_FAILED.name, w),
)
#: Failed / ended (completed + failed) tasks per agent: the error ratio.
TASK_ERROR_RATIO = _windowed(
    "agent_did:agent_tasks_failed:ratio_rate5m",
    lambda w: _ratio(TASK_FAILURE_RATE.at(w), TASK_COMPLETION_RATE.at(w)),
)
#: Completed / ended tasks per agent: the success ratio.
TASK_SUCCESS_RATIO = _windowed(
    "agent_did:agent_tasks_completed:ratio_rate5m",
    lambda w: _ratio(TASK_COMPLETION_RATE.at(w), TASK_FAILURE_RATE.at(w)),
)
TASK_DURATION_BUCKET_RATE = _windowed(
    "agent_did_le:agent_task_duration_seconds_bucket:rate5m",
    lambda w: sum_rate(("agent_did", "le"), f"{TASK_DURATION.name}_bucket", w),
)
TASK_DURATION_QUANTILE = "agent_did_quantile:agent_task_duration_seconds:histogram_quantile_rate5m"
TASK_DURATION_P50, TASK_DURATION_P95, TASK_DURATION_P99 = _quantiles(
    TASK_DURATION_QUANTILE, ("agent_did",), TASK_DURATION_BUCKET_RATE
)

# --- Sagas ---------------------------------------------------------------------------
SAGA_RATE = _windowed(
    "agent_did_outcome:agent_hypervisor_sagas:rate5m",
    lambda w: sum_rate(("agent_did", "outcome"), SAGAS.name, w),
)
SAGA_STEP_RATE = _windowed(
    "agent_did_outcome:agent_hypervisor_saga_steps:rate5m",
    lambda w: sum_rate(("agent_did", "outcome"), SAGA_STEPS.name, w),
)
#: Sagas that did not complete (failed or escalated) / all sagas that ended, per agent.
SAGA_FAILURE_RATIO = _windowed(
    "agent_did:agent_hypervisor_sagas:failure_ratio_rate5m",
    lambda w: _share(
        sum_rate(("agent_did",), SAGAS.name + '{outcome!="completed"}', w),
        sum_rate(("agent_did",), SAGAS.name, w),
    ),
)
SAGA_COMPENSATION_RATE = _windowed(
    "agent_did:agent_hypervisor_saga_compensations:rate5m",
    lambda w: sum_rate(("agent_did",), SAGA_COMPENSATIONS.name, w),
)

# --- Ratio denominators -------------------------------------------------------------
# The volume each ratio is computed over, as a function of the rate window. Ratio
# alerts guard on it (``alerts.<ratio>.min_events``): a ratio over three events pages
# on noise. Built from the recorded rates above, so no extra series is recorded.


def governance_decisions_per_second(window: str) -> str:
    """Policy decisions per second, fleet-wide: the denial ratio's denominator."""
    return sum_by((), GOVERNANCE_DECISION_RATE.at(window))


def tasks_ended_per_second(window: str) -> str:
    """Tasks ended (completed + failed) per second per agent: both task ratios' denominator."""
    return _total(TASK_COMPLETION_RATE.at(window), TASK_FAILURE_RATE.at(window))


def sagas_ended_per_second(window: str) -> str:
    """Sagas ended (any outcome) per second per agent: the saga failure ratio's denominator."""
    return sum_by(("agent_did",), SAGA_RATE.at(window))


# --- Anomaly baseline of each agent's task start rate ---------------------------------
TASK_START_RATE_BASELINE_MEAN = "agent_did:agent_tasks_started:rate5m_baseline_mean"
TASK_START_RATE_BASELINE_STDDEV = "agent_did:agent_tasks_started:rate5m_baseline_stddev"
TASK_START_RATE_ZSCORE = "agent_did:agent_tasks_started:rate5m_zscore"


def baseline_offset(settings: AlertsSettings) -> Duration:
    """How far back the baseline a z-score compares against ends.

    A baseline that includes the anomaly it judges absorbs it: with a 1 h
    baseline and a 10 m ``for``, the z-score of a sustained step change falls
    below 3 after about 6 minutes, so the alert could never fire. Ending the
    baseline ``for`` plus one rate window ago keeps the anomaly out of its own
    baseline for as long as the alert is pending.
    """
    return duration(settings.task_rate_anomaly.for_.seconds + RATE_WINDOW.seconds)


def anomaly_rules(settings: AlertsSettings) -> tuple[RecordingRule, ...]:
    """Mean, standard deviation and z-score of each agent's task start rate.

    The z-score divides by the baseline's standard deviation only where it is
    above zero (``stddev > 0`` filters), so a perfectly flat baseline yields no
    z-score rather than a division by zero (``+Inf``) that would page.
    """
    window = settings.task_rate_anomaly.baseline_window
    offset = baseline_offset(settings)
    rate = TASK_START_RATE.record
    return (
        RecordingRule(TASK_START_RATE_BASELINE_MEAN, f"avg_over_time({rate}[{window}])"),
        RecordingRule(TASK_START_RATE_BASELINE_STDDEV, f"stddev_over_time({rate}[{window}])"),
        RecordingRule(
            TASK_START_RATE_ZSCORE,
            f"({rate} - {TASK_START_RATE_BASELINE_MEAN} offset {offset})"
            f" / ({TASK_START_RATE_BASELINE_STDDEV} offset {offset} > 0)",
        ),
    )


# --- Groups ------------------------------------------------------------------------
RING_RULES = (RING_BREACH_RATE, RING_TRANSITION_RATE)
GOVERNANCE_RULES = (
    GOVERNANCE_LATENCY_BUCKET_RATE,
    GOVERNANCE_LATENCY_P50,
    GOVERNANCE_LATENCY_P95,
    GOVERNANCE_LATENCY_P99,
    GOVERNANCE_DECISION_RATE,
    GOVERNANCE_DENIAL_RATIO,
    GOVERNANCE_RATE_LIMIT_RATE,
)
TASK_RULES = (
    TASK_START_RATE,
    TASK_COMPLETION_RATE,
    TASK_FAILURE_RATE,
    TASK_ERROR_RATIO,
    TASK_SUCCESS_RATIO,
    TASK_DURATION_BUCKET_RATE,
    TASK_DURATION_P50,
    TASK_DURATION_P95,
    TASK_DURATION_P99,
)
SAGA_RULES = (SAGA_RATE, SAGA_STEP_RATE, SAGA_FAILURE_RATIO, SAGA_COMPENSATION_RATE)


def recording_rule_groups(settings: AlertsSettings) -> dict[str, tuple[RecordingRule, ...]]:
    """Recording rules by rule group name, in evaluation order.

    Within a group Prometheus evaluates rules in order, so a rule reading
    another's output (a ratio over rates, a quantile over bucket rates) comes
    after it and sees this evaluation's value, not the previous one.
    """
    return {
        "meshwatch-ring.rules": RING_RULES,
        "meshwatch-governance.rules": GOVERNANCE_RULES,
        "meshwatch-tasks.rules": (*TASK_RULES, *anomaly_rules(settings)),
        "meshwatch-sagas.rules": SAGA_RULES,
    }


def recording_rules(settings: AlertsSettings) -> list[RecordingRule]:
    """Every recording rule for ``settings``, in group order."""
    return [rule for rules in recording_rule_groups(settings).values() for rule in rules]


#: The recording rules with default settings (names never depend on settings).
RECORDING_RULES: tuple[RecordingRule, ...] = tuple(recording_rules(AlertsSettings()))
