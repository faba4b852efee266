"""Cases for the recording rules: each recorded series, computed from known inputs.

Inputs are chosen so the results are short binary fractions (0.25, 1.5),
which promtool compares exactly; interpolated quantiles are compared after
``round(..., 0.001)``.
"""

from __future__ import annotations

from meshwatch.alerts import recording as rec
from meshwatch.alerts.model import RecordingRule
from meshwatch.alerts.ruletests import llm
from meshwatch.alerts.ruletests.model import (
    Case,
    ExprCheck,
    Sample,
    Series,
    at_minute,
    counter,
    explicit,
    minutes,
)
from meshwatch.alerts.ruletests.subjects import AGENTS, SESSIONS, TASK_TYPE, TOOLS
from meshwatch.alerts.ruletests.tasks import BASELINE_PATTERN
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
from meshwatch.settings import AlertsSettings

AT = 10  # minutes: every rate window is full of samples by then
SAMPLES = AT + 2
REVIEWER = "did:mesh:reviewer"


def _check(
    rule: RecordingRule, *expect: tuple[dict[str, str], float], round_to: float | None = None
) -> ExprCheck:
    """``rule``'s series at minute :data:`AT` are exactly ``expect`` (labels, value)."""
    samples = tuple(
        Sample({**labels, **rule.labels}, value, rule.record) for labels, value in expect
    )
    return ExprCheck(rule.selector, at_minute(AT), samples, round_to)


def _c(metric: str, labels: dict[str, str], per_second: float) -> Series:
    return Series(metric, labels, counter(per_second, SAMPLES))


def _ring() -> Case:
    a, b = AGENTS
    return Case(
        "records breach rates per agent summed over sessions, and transition rates per type",
        (
            _c(RING_BREACHES.name, {"agent_did": a, "session_id": SESSIONS[0]}, 1.0),
            _c(RING_BREACHES.name, {"agent_did": a, "session_id": SESSIONS[1]}, 0.5),
            _c(RING_BREACHES.name, {"agent_did": b, "session_id": SESSIONS[0]}, 0.25),
            _c(
                RING_TRANSITIONS.name,
                {"event_type": "elevated", "agent_did": a, "session_id": SESSIONS[0]},
                0.25,
            ),
            _c(
                RING_TRANSITIONS.name,
                {"event_type": "elevated", "agent_did": b, "session_id": SESSIONS[0]},
                0.25,
            ),
            _c(
                RING_TRANSITIONS.name,
                {"event_type": "demoted", "agent_did": a, "session_id": SESSIONS[0]},
                0.125,
            ),
        ),
        (
            _check(rec.RING_BREACH_RATE, ({"agent_did": a}, 1.5), ({"agent_did": b}, 0.25)),
            _check(
                rec.RING_TRANSITION_RATE,
                ({"event_type": "demoted"}, 0.125),
                ({"event_type": "elevated"}, 0.5),
            ),
        ),
    )


def _governance_latency() -> Case:
    """One evaluation per second over two decisions: half <= 0.25 s, 3/4 <= 0.5 s, all <= 1 s."""
    per_bucket = {"0.25": 0.25, "0.5": 0.375, "1": 0.5, "+Inf": 0.5}
    series = tuple(
        _c(f"{GOVERNANCE_LATENCY.name}_bucket", {"decision": decision, "le": le}, rate)
        for decision in ("allowed", "blocked")
        for le, rate in per_bucket.items()
    )
    return Case(
        "records latency bucket rates summed by le, and p50/p95/p99 from them",
        series,
        (
            _check(
                rec.GOVERNANCE_LATENCY_BUCKET_RATE,
                ({"le": "+Inf"}, 1.0),
                ({"le": "0.25"}, 0.5),
                ({"le": "0.5"}, 0.75),
                ({"le": "1"}, 1.0),
            ),
            _check(rec.GOVERNANCE_LATENCY_P50, ({}, 0.25)),
            _check(rec.GOVERNANCE_LATENCY_P95, ({}, 0.9), round_to=0.001),
            _check(rec.GOVERNANCE_LATENCY_P99, ({}, 0.98), round_to=0.001),
        ),
    )


def _governance_decisions() -> list[Case]:
    tool = {"tool_name": TOOLS[0]}
    return [
        Case(
            "records decision rates, the blocked share and rate-limit rejections per tool",
            (
                _c(GOVERNANCE_DECISIONS.name, {"decision": "allowed", **tool}, 0.75),
                _c(GOVERNANCE_DECISIONS.name, {"decision": "blocked", **tool}, 0.25),
                _c(GOVERNANCE_BLOCKED.name, tool, 0.25),
                _c(GOVERNANCE_RATE_LIMIT_HITS.name, {**tool, "agent_id": AGENTS[0]}, 0.25),
                _c(GOVERNANCE_RATE_LIMIT_HITS.name, {**tool, "agent_id": AGENTS[1]}, 0.25),
            ),
            (
                _check(
                    rec.GOVERNANCE_DECISION_RATE,
                    ({"decision": "allowed"}, 0.75),
                    ({"decision": "blocked"}, 0.25),
                ),
                _check(rec.GOVERNANCE_DENIAL_RATIO, ({}, 0.25)),
                _check(rec.GOVERNANCE_RATE_LIMIT_RATE, (tool, 0.5)),
            ),
        ),
        Case(
            "records a zero blocked share when no call was ever blocked",
            (_c(GOVERNANCE_DECISIONS.name, {"decision": "allowed", **tool}, 1.0),),
            (_check(rec.GOVERNANCE_DENIAL_RATIO, ({}, 0.0)),),
        ),
    ]


def _tasks() -> Case:
    """Agent a fails a quarter of its tasks; b never failed; the reviewer never completed one."""
    a, b = AGENTS
    labels = {"task_type": TASK_TYPE}
    durations = {"1": 0.5, "2": 1.0, "4": 1.0, "+Inf": 1.0}
    return Case(
        "records task rates, error and success ratios (zero-filled) and duration quantiles",
        (
            _c(TASKS_STARTED.name, {"agent_did": a, **labels}, 1.0),
            _c(TASKS_COMPLETED.name, {"agent_did": a, **labels}, 0.75),
            _c(TASKS_FAILED.name, {"agent_did": a, **labels}, 0.25),
            _c(TASKS_COMPLETED.name, {"agent_did": b, **labels}, 0.5),
            _c(TASKS_FAILED.name, {"agent_did": REVIEWER, **labels}, 0.5),
            *(
                _c(f"{TASK_DURATION.name}_bucket", {"agent_did": a, **labels, "le": le}, rate)
                for le, rate in durations.items()
            ),
        ),
        (
            _check(rec.TASK_START_RATE, ({"agent_did": a}, 1.0)),
            _check(rec.TASK_COMPLETION_RATE, ({"agent_did": a}, 0.75), ({"agent_did": b}, 0.5)),
            _check(rec.TASK_FAILURE_RATE, ({"agent_did": a}, 0.25), ({"agent_did": REVIEWER}, 0.5)),
            _check(
                rec.TASK_ERROR_RATIO,
                ({"agent_did": a}, 0.25),
                ({"agent_did": b}, 0.0),
                ({"agent_did": REVIEWER}, 1.0),
            ),
            _check(
                rec.TASK_SUCCESS_RATIO,
                ({"agent_did": a}, 0.75),
                ({"agent_did": b}, 1.0),
                ({"agent_did": REVIEWER}, 0.0),
            ),
            _check(
                rec.TASK_DURATION_BUCKET_RATE,
                *(({"agent_did": a, "le": le}, rate) for le, rate in durations.items()),
            ),
            _check(rec.TASK_DURATION_P50, ({"agent_did": a}, 1.0)),
            _check(rec.TASK_DURATION_P95, ({"agent_did": a}, 1.9), round_to=0.001),
            _check(rec.TASK_DURATION_P99, ({"agent_did": a}, 1.98), round_to=0.001),
        ),
    )


def _sagas() -> Case:
    a, b = AGENTS
    return Case(
        "records saga and step outcome rates, the failure share and compensations per agent",
        (
            _c(SAGAS.name, {"agent_did": a, "outcome": "completed"}, 0.5),
            _c(SAGAS.name, {"agent_did": a, "outcome": "failed"}, 0.25),
            _c(SAGAS.name, {"agent_did": a, "outcome": "escalated"}, 0.25),
            _c(SAGAS.name, {"agent_did": b, "outcome": "completed"}, 0.5),
            _c(SAGA_STEPS.name, {"agent_did": a, "outcome": "committed"}, 1.0),
            _c(SAGA_STEPS.name, {"agent_did": a, "outcome": "compensated"}, 0.25),
            _c(SAGA_COMPENSATIONS.name, {"agent_did": a}, 0.25),
        ),
        (
            _check(
                rec.SAGA_RATE,
                ({"agent_did": a, "outcome": "completed"}, 0.5),
                ({"agent_did": a, "outcome": "escalated"}, 0.25),
                ({"agent_did": a, "outcome": "failed"}, 0.25),
                ({"agent_did": b, "outcome": "completed"}, 0.5),
            ),
            _check(
                rec.SAGA_STEP_RATE,
                ({"agent_did": a, "outcome": "committed"}, 1.0),
                ({"agent_did": a, "outcome": "compensated"}, 0.25),
            ),
            _check(rec.SAGA_FAILURE_RATIO, ({"agent_did": a}, 0.5), ({"agent_did": b}, 0.0)),
            _check(rec.SAGA_COMPENSATION_RATE, ({"agent_did": a}, 0.25)),
        ),
    )


def _baseline(s: AlertsSettings) -> list[Case]:
    """Once a whole baseline window of full-window rates exists, mean and deviation are exact."""
    at = minutes(s.task_rate_anomaly.baseline_window) + minutes(rec.baseline_offset(s)) + AT
    when = at_minute(at)
    agent = {"agent_did": AGENTS[0]}
    labels = {**agent, "task_type": TASK_TYPE}
    steady = Series(TASKS_STARTED.name, labels, counter(1.0, at + 2))
    totals, total = [0.0], 0.0
    for i in range(at + 2):
        total += BASELINE_PATTERN[i % len(BASELINE_PATTERN)]
        totals.append(total)
    varying = Series(TASKS_STARTED.name, labels, explicit(totals))
    zscore = rec.TASK_START_RATE_ZSCORE
    return [
        Case(
            "records a baseline mean and zero deviation for a steady rate, and no z-score",
            (steady,),
            (
                ExprCheck(
                    rec.TASK_START_RATE_BASELINE_MEAN,
                    when,
                    (Sample(agent, 1.0, rec.TASK_START_RATE_BASELINE_MEAN),),
                ),
                ExprCheck(
                    rec.TASK_START_RATE_BASELINE_STDDEV,
                    when,
                    (Sample(agent, 0.0, rec.TASK_START_RATE_BASELINE_STDDEV),),
                ),
                ExprCheck(zscore, when),
            ),
        ),
        Case(
            "records a z-score within 3 while the rate varies as it always did",
            (varying,),
            (
                ExprCheck(f"abs({zscore}) < bool 3", when, (Sample(agent, 1.0),)),
                ExprCheck(rec.TASK_START_RATE_BASELINE_MEAN, when, (Sample(agent, 1.0),), 0.1),
            ),
        ),
    ]


def cases(s: AlertsSettings) -> list[Case]:
    return [
        _ring(),
        _governance_latency(),
        *_governance_decisions(),
        _tasks(),
        _sagas(),
        *_baseline(s),
        *llm.recording_cases(s),
    ]
