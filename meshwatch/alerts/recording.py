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

from collections.abc import Callable, Sequence

from meshwatch.alerts.model import RecordingRule
from meshwatch.alerts.promql import duration, sum_by, sum_rate
from meshwatch.instrumentation.catalogue import (
    GENAI_INVOKE_AGENT_DURATION,
    GOVERNANCE_BLOCKED,
    GOVERNANCE_DECISIONS,
    GOVERNANCE_LATENCY,
    GOVERNANCE_RATE_LIMIT_HITS,
    LLM_CALL_ERRORS,
    LLM_CALLS,
    LLM_COST,
    RING_BREACHES,
    RING_TRANSITIONS,
    SAGA_COMPENSATIONS,
    SAGA_STEPS,
    SAGAS,
    TASK_DURATION,
    TASKS_COMPLETED,
    TASKS_FAILED,
    TASKS_STARTED,
    MetricDef,
)
from meshwatch.settings import AlertsSettings, Duration

#: The window every recorded rate uses (and every record name says).
RATE_WINDOW = Duration("5m")
QUANTILES = (0.5, 0.95, 0.99)


#: The operation of every recorded rate, in record names: ``rate5m``.
RATE = f"rate{RATE_WINDOW}"


def record_name(by: Sequence[str], metric: MetricDef, operation: str, suffix: str = "") -> str:
    """``level:metric:operations`` for ``operation`` applied to ``metric`` kept by ``by``.

    Derived, never spelt, so a record name cannot drift from the metric it
    records: a counter's ``_total`` goes once a rate is taken (every operation
    here takes one), and ``suffix`` names a histogram's ``_bucket`` series.
    """
    return f"{'_'.join(by)}:{metric.name.removesuffix('_total')}{suffix}:{operation}"


def _windowed(
    record: str, over: Callable[[str], str], labels: dict[str, str] | None = None
) -> RecordingRule:
    return RecordingRule.windowed(record, RATE_WINDOW, over, labels)


def _summed_rate(by: tuple[str, ...], metric: MetricDef, suffix: str = "") -> RecordingRule:
    """The rate of ``metric`` (its ``suffix`` series) summed by ``by``, named after both."""
    series = metric.name + suffix
    return _windowed(record_name(by, metric, RATE, suffix), lambda w: sum_rate(by, series, w))


def _quantiles(
    by: tuple[str, ...], metric: MetricDef, buckets: RecordingRule
) -> tuple[RecordingRule, ...]:
    """p50/p95/p99 over ``buckets`` (a ``sum by (le, ...)`` of bucket rates), one rule each.

    One record name for the three, told apart by their ``quantile`` label.
    """
    record = record_name((*by, "quantile"), metric, f"histogram_quantile_{RATE}")

    def quantile(q: float) -> Callable[[str], str]:
        return lambda w: f"histogram_quantile({q}, {buckets.at(w)})"

    return tuple(_windowed(record, quantile(q), {"quantile": str(q)}) for q in QUANTILES)


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
RING_BREACH_RATE = _summed_rate(("agent_did",), RING_BREACHES)
RING_TRANSITION_RATE = _summed_rate(("event_type",), RING_TRANSITIONS)

# --- Governance ----------------------------------------------------------------------
GOVERNANCE_LATENCY_BUCKET_RATE = _summed_rate(("le",), GOVERNANCE_LATENCY, "_bucket")
GOVERNANCE_LATENCY_P50, GOVERNANCE_LATENCY_P95, GOVERNANCE_LATENCY_P99 = _quantiles(
    (), GOVERNANCE_LATENCY, GOVERNANCE_LATENCY_BUCKET_RATE
)
GOVERNANCE_DECISION_RATE = _summed_rate(("decision",), GOVERNANCE_DECISIONS)
#: Blocked tool calls (rate-limited included) per policy decision, fleet-wide.
GOVERNANCE_DENIAL_RATIO = _windowed(
    record_name((), GOVERNANCE_BLOCKED, f"ratio_{RATE}"),
    lambda w: _share(
        sum_rate((), GOVERNANCE_BLOCKED.name, w), sum_rate((), GOVERNANCE_DECISIONS.name, w)
    ),
)
GOVERNANCE_RATE_LIMIT_RATE = _summed_rate(("tool_name",), GOVERNANCE_RATE_LIMIT_HITS)

# --- Agent tasks -------------------------------------------------------------------
TASK_START_RATE = _summed_rate(("agent_did",), TASKS_STARTED)
TASK_COMPLETION_RATE = _summed_rate(("agent_did",), TASKS_COMPLETED)
TASK_FAILURE_RATE = _summed_rate(("agent_did",), TASKS_FAILED)
#: Failed / ended (completed + failed) tasks per agent: the error ratio.
TASK_ERROR_RATIO = _windowed(
    record_name(("agent_did",), TASKS_FAILED, f"ratio_{RATE}"),
    lambda w: _ratio(TASK_FAILURE_RATE.at(w), TASK_COMPLETION_RATE.at(w)),
)
#: Completed / ended tasks per agent: the success ratio.
TASK_SUCCESS_RATIO = _windowed(
    record_name(("agent_did",), TASKS_COMPLETED, f"ratio_{RATE}"),
    lambda w: _ratio(TASK_COMPLETION_RATE.at(w), TASK_FAILURE_RATE.at(w)),
)
TASK_DURATION_BUCKET_RATE = _summed_rate(("agent_did", "le"), TASK_DURATION, "_bucket")
TASK_DURATION_P50, TASK_DURATION_P95, TASK_DURATION_P99 = _quantiles(
    ("agent_did",), TASK_DURATION, TASK_DURATION_BUCKET_RATE
)

# --- Sagas ---------------------------------------------------------------------------
SAGA_RATE = _summed_rate(("agent_did", "outcome"), SAGAS)
SAGA_STEP_RATE = _summed_rate(("agent_did", "outcome"), SAGA_STEPS)
#: Sagas that did not complete (failed or escalated) / all sagas that ended, per agent.
SAGA_FAILURE_RATIO = _windowed(
    record_name(("agent_did",), SAGAS, f"failure_ratio_{RATE}"),
    lambda w: _share(
        sum_rate(("agent_did",), SAGAS.name + '{outcome!="completed"}', w),
        sum_rate(("agent_did",), SAGAS.name, w),
    ),
)
SAGA_COMPENSATION_RATE = _summed_rate(("agent_did",), SAGA_COMPENSATIONS)

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
# Named after the recorded rate they are computed from, with what was applied appended.
TASK_START_RATE_BASELINE_MEAN = f"{TASK_START_RATE.record}_baseline_mean"
TASK_START_RATE_BASELINE_STDDEV = f"{TASK_START_RATE.record}_baseline_stddev"
TASK_START_RATE_ZSCORE = f"{TASK_START_RATE.record}_zscore"


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


# --- LLM calls and cost --------------------------------------------------------------
AGENT_NAME = "gen_ai_agent_name"
MODEL = "gen_ai_request_model"
#: US dollars per second spent on LLM calls, per agent.
LLM_COST_RATE = _summed_rate((AGENT_NAME,), LLM_COST)
LLM_CALL_RATE = _summed_rate((AGENT_NAME,), LLM_CALLS)
#: Agent invocations (ended invoke_agent spans) per second, per agent.
LLM_INVOCATION_RATE = _summed_rate((AGENT_NAME,), GENAI_INVOKE_AGENT_DURATION, "_count")
#: LLM calls per ended agent invocation, per agent (+Inf while an agent calls and ends no turn).
LLM_CALLS_PER_INVOCATION = _windowed(
    record_name((AGENT_NAME,), LLM_CALLS, f"per_invocation_{RATE}"),
    lambda w: f"{LLM_CALL_RATE.at(w)} / {LLM_INVOCATION_RATE.at(w)}",
)
LLM_MODEL_CALL_RATE = _summed_rate((MODEL,), LLM_CALLS)
LLM_MODEL_ERROR_RATE = _summed_rate((MODEL,), LLM_CALL_ERRORS)
#: Failed / all LLM calls per request model (zero, not absent, for a model that never failed).
LLM_ERROR_RATIO = _windowed(
    record_name((MODEL,), LLM_CALL_ERRORS, f"ratio_{RATE}"),
    lambda w: _share(LLM_MODEL_ERROR_RATE.at(w), LLM_MODEL_CALL_RATE.at(w)),
)
#: US dollars spent over the last 24 hours, fleet-wide: what the budget forecast extrapolates.
SPEND_WINDOW = Duration("1d")
LLM_DAILY_SPEND = RecordingRule(
    record_name((), LLM_COST, f"increase{SPEND_WINDOW}"),
    f"sum(increase({LLM_COST.name}[{SPEND_WINDOW}]))",
)
#: How far back an agent's normal number of calls per invocation is measured.
NORMAL_WINDOW = Duration("6h")
LLM_CALLS_PER_INVOCATION_NORMAL = f"{LLM_CALLS_PER_INVOCATION.record}_normal"
LLM_RUNAWAY_FACTOR = f"{LLM_CALLS_PER_INVOCATION.record}_over_normal"
LLM_COST_RATE_BASELINE_MEAN = f"{LLM_COST_RATE.record}_baseline_mean"
LLM_COST_RATE_BASELINE_STDDEV = f"{LLM_COST_RATE.record}_baseline_stddev"
LLM_COST_RATE_ZSCORE = f"{LLM_COST_RATE.record}_zscore"


def normal_offset(settings: AlertsSettings) -> Duration:
    """How long before now an agent's normal ends: the runaway's ``for`` and two rate windows.

    So a runaway, for as long as its alert is pending, is not yet part of the
    normal it is compared with.
    """
    return duration(settings.llm_runaway_agent.for_.seconds + 2 * RATE_WINDOW.seconds)


def cost_baseline_offset(settings: AlertsSettings) -> Duration:
    """As :func:`baseline_offset`, for the cost spike's baseline."""
    return duration(settings.llm_cost_spike.for_.seconds + RATE_WINDOW.seconds)


def llm_rules(settings: AlertsSettings) -> tuple[RecordingRule, ...]:
    """LLM rates, ratios, the daily spend, each agent's normal and the cost-rate z-score."""
    offset = normal_offset(settings)
    calls, runs = LLM_CALLS.name, GENAI_INVOKE_AGENT_DURATION.name + "_count"
    spike = settings.llm_cost_spike
    cost_offset = cost_baseline_offset(settings)
    rate = LLM_COST_RATE.record
    return (
        LLM_COST_RATE,
        LLM_CALL_RATE,
        LLM_INVOCATION_RATE,
        LLM_CALLS_PER_INVOCATION,
        LLM_MODEL_CALL_RATE,
        LLM_MODEL_ERROR_RATE,
        LLM_ERROR_RATIO,
        LLM_DAILY_SPEND,
        RecordingRule(
            LLM_CALLS_PER_INVOCATION_NORMAL,
            f"sum by ({AGENT_NAME}) (increase({calls}[{NORMAL_WINDOW}] offset {offset}))"
            f" / sum by ({AGENT_NAME}) (increase({runs}[{NORMAL_WINDOW}] offset {offset}))",
        ),
        RecordingRule(
            LLM_RUNAWAY_FACTOR,
            f"{LLM_CALLS_PER_INVOCATION.selector} / ({LLM_CALLS_PER_INVOCATION_NORMAL} > 0)",
        ),
        RecordingRule(
            LLM_COST_RATE_BASELINE_MEAN, f"avg_over_time({rate}[{spike.baseline_window}])"
        ),
        RecordingRule(
            LLM_COST_RATE_BASELINE_STDDEV, f"stddev_over_time({rate}[{spike.baseline_window}])"
        ),
        RecordingRule(
            LLM_COST_RATE_ZSCORE,
            f"({rate} - {LLM_COST_RATE_BASELINE_MEAN} offset {cost_offset})"
            f" / ({LLM_COST_RATE_BASELINE_STDDEV} offset {cost_offset} > 0)",
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
        "meshwatch-llm.rules": llm_rules(settings),
    }


def recording_rules(settings: AlertsSettings) -> list[RecordingRule]:
    """Every recording rule for ``settings``, in group order."""
    return [rule for rules in recording_rule_groups(settings).values() for rule in rules]


#: The recording rules with default settings (names never depend on settings).
RECORDING_RULES: tuple[RecordingRule, ...] = tuple(recording_rules(AlertsSettings()))
