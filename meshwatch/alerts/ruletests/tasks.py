"""Cases for the agent work alerts: ratios, p95 duration, queue growth and the rate anomaly."""

from __future__ import annotations

import statistics
from collections.abc import Mapping

from meshwatch.alerts.catalogue import (
    AGENT_QUEUE_BACKLOG_GROWING,
    AGENT_TASK_DURATION_HIGH,
    AGENT_TASK_ERROR_RATE_HIGH,
    AGENT_TASK_RATE_ANOMALY,
    AGENT_TASK_SUCCESS_RATE_LOW,
)
from meshwatch.alerts.model import AlertRule
from meshwatch.alerts.recording import RATE_WINDOW, baseline_offset
from meshwatch.alerts.ruletests.histograms import bucket_series
from meshwatch.alerts.ruletests.model import (
    AlertCheck,
    Case,
    Series,
    at_minute,
    counter,
    explicit,
    fired,
    minutes,
    num,
)
from meshwatch.alerts.ruletests.subjects import TASK_TYPE, agent
from meshwatch.alerts.ruletests.threshold import (
    ScaledSignal,
    Signal,
    ThresholdProof,
    Volume,
    eval_minute,
    ratio_proof,
    threshold_cases,
)
from meshwatch.instrumentation.catalogue import (
    QUEUE_LENGTH,
    TASK_DURATION,
    TASKS_COMPLETED,
    TASKS_FAILED,
    TASKS_STARTED,
)
from meshwatch.settings import AlertsSettings
from meshwatch.settings.alerts import RatioAlert

#: Baseline task starts per minute, repeating: a rate that varies a little, as real ones do.
BASELINE_PATTERN = (40.0, 60.0, 80.0)


def _outcomes(
    failed_share: float, at: int, subject: int, per_second: float, *, completed: bool = True
) -> list[Series]:
    """``per_second`` tasks end each second; ``failed_share`` of them fail."""
    labels = {**agent(subject), "task_type": TASK_TYPE}
    failed = failed_share * per_second
    series = [Series(TASKS_FAILED.name, labels, counter(failed, at + 2))]
    if completed:
        series.append(Series(TASKS_COMPLETED.name, labels, counter(per_second - failed, at + 2)))
    return series


def _errors(value: float, at: int, subject: int, per_second: float) -> list[Series]:
    return _outcomes(value, at, subject, per_second)


def _successes(value: float, at: int, subject: int, per_second: float) -> list[Series]:
    return _outcomes(1 - value, at, subject, per_second)


def _ended_tasks(s: AlertsSettings, cfg: RatioAlert, signal: ScaledSignal) -> Volume:
    return Volume("ended tasks", signal, s.rate_window, cfg.min_events)


def _durations(value: float, at: int, subject: int) -> list[Series]:
    labels = {**agent(subject), "task_type": TASK_TYPE}
    return bucket_series(TASK_DURATION.name, labels, value, 0.95, at + 2)


def _queue(slope_sign: int) -> Signal:
    def signal(value: float, at: int, subject: int) -> list[Series]:
        """The queue reaches ``value`` at minute ``at``, moving by a small step each minute."""
        step = slope_sign * max(value, 1.0) / (4 * (at + 2))
        start = value - step * at
        return [
            Series(
                QUEUE_LENGTH.name,
                agent(subject),
                f"{num(start)}{'+' if step >= 0 else '-'}{num(abs(step))}x{at + 2}",
            )
        ]

    return signal


def _starts(per_minute: list[float]) -> Series:
    """Agent 0's task start counter from per-minute increments."""
    total, values = 0.0, [0.0]
    for increment in per_minute:
        total += increment
        values.append(total)
    return Series(TASKS_STARTED.name, {**agent(0), "task_type": TASK_TYPE}, explicit(values))


def _anomaly_cases(s: AlertsSettings, rule: AlertRule) -> list[Case]:
    """A baseline that varies a little, then a step: up, down, or none; and a flat baseline.

    The step lands right after the baseline the z-score reads at evaluation
    time (``baseline_offset`` ago), so the anomaly is never part of its own
    baseline while the alert is pending.
    """
    cfg = s.task_rate_anomaly
    offset = minutes(baseline_offset(s))
    step_at = minutes(cfg.baseline_window) + minutes(cfg.for_) + minutes(RATE_WINDOW) + 5
    at = step_at + offset
    noisy = [BASELINE_PATTERN[i % len(BASELINE_PATTERN)] for i in range(step_at)]
    mean = statistics.fmean(BASELINE_PATTERN) / 60
    # Far enough from any baseline rate that the z-score passes the bound many times over.
    high = mean + 2 * cfg.z_score * (max(BASELINE_PATTERN) - min(BASELINE_PATTERN)) / 60
    tail = at + 2 - step_at
    name = rule.alert
    labels = agent(0)
    return [
        Case(
            f"fires when an agent's task rate jumps to {high:.4g}/s from a baseline near {mean:.4g}/s",
            (_starts(noisy + [high * 60] * tail),),
            (AlertCheck(at_minute(at), name, (fired(rule, labels, high),)),),
        ),
        Case(
            f"fires when an agent stops starting tasks, from a baseline near {mean:.4g}/s",
            (_starts(noisy + [0.0] * tail),),
            (AlertCheck(at_minute(at), name, (fired(rule, labels, 0.0),)),),
        ),
        Case(
            "stays silent while an agent's task rate varies as it always did",
            (_starts(noisy + [BASELINE_PATTERN[i % 3] for i in range(step_at, at + 2)]),),
            (AlertCheck(at_minute(at), name),),
        ),
        Case(
            "stays silent when the baseline is perfectly flat (zero deviation, no z-score)",
            (_starts([60.0] * step_at + [high * 60] * tail),),
            (AlertCheck(at_minute(at), name),),
        ),
    ]


def _no_completed_series_case(
    s: AlertsSettings, name: str, cfg: RatioAlert, value: float, tiers: list[AlertRule]
) -> Case | None:
    """An agent whose every task fails exports no ``completed`` counter series at all.

    A plain ``failed / (failed + completed)`` has no result for it, so the
    agent failing everything would be the one never alerted on. Its volume
    (failed alone) must still pass the minimum-volume guard.
    """
    at = minutes(s.rate_window) + minutes(cfg.for_) + 3
    limits = (cfg.threshold, cfg.critical_threshold)

    def crossed(limit: float) -> bool:
        return value > limit if value else value < limit

    expect = tuple(
        fired(rule, agent(0), value)
        for rule, limit in zip(tiers, limits, strict=False)
        if limit is not None and crossed(limit)
    )
    if not expect:  # a threshold no ratio can cross; threshold_cases covers it
        return None
    return Case(
        "fires when every task of an agent fails and it has no completed series at all",
        tuple(_outcomes(1.0, at, 0, _ended_tasks(s, cfg, _errors).plenty, completed=False)),
        (AlertCheck(at_minute(at), name, expect),),
    )


def _queue_cases(s: AlertsSettings, tiers: list[AlertRule]) -> list[Case]:
    cfg = s.queue_backlog_growing
    proof = ThresholdProof(
        AGENT_QUEUE_BACKLOG_GROWING,
        "a growing queue's length",
        _queue(1),
        agent,
        warmup=s.rate_window,
    )
    found = threshold_cases(proof, s, tiers)
    at = eval_minute(proof, cfg.for_)
    long = cfg.threshold * 2 if cfg.threshold > 0 else 10.0
    for shape, signal in (("draining", _queue(-1)), ("flat", _queue(0))):
        found.append(
            Case(
                f"stays silent when the queue is long ({long:g}) but {shape}",
                tuple(signal(long, at, 0)),
                (AlertCheck(at_minute(at), proof.alert.name),),
            )
        )
    return found


def cases(s: AlertsSettings, rules: Mapping[str, list[AlertRule]]) -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {}
    proofs = (
        ratio_proof(
            AGENT_TASK_ERROR_RATE_HIGH,
            "the share of an agent's tasks failing",
            _ended_tasks(s, s.task_error_rate, _errors),
            agent,
        ),
        ratio_proof(
            AGENT_TASK_SUCCESS_RATE_LOW,
            "the share of an agent's tasks completing",
            _ended_tasks(s, s.task_success_rate_low, _successes),
            agent,
        ),
        ThresholdProof(
            AGENT_TASK_DURATION_HIGH,
            "an agent's p95 task duration in seconds",
            _durations,
            lambda i: {**agent(i), "quantile": "0.95"},
            warmup=s.rate_window,
        ),
    )
    for proof in proofs:
        if proof.alert.name in rules:
            out[proof.alert.name] = threshold_cases(proof, s, rules[proof.alert.name])
    for name, cfg, value in (
        (AGENT_TASK_ERROR_RATE_HIGH.name, s.task_error_rate, 1.0),
        (AGENT_TASK_SUCCESS_RATE_LOW.name, s.task_success_rate_low, 0.0),
    ):
        extra = (
            _no_completed_series_case(s, name, cfg, value, rules[name]) if name in rules else None
        )
        if extra is not None:
            out[name].append(extra)
    if AGENT_QUEUE_BACKLOG_GROWING.name in rules:
        out[AGENT_QUEUE_BACKLOG_GROWING.name] = _queue_cases(
            s, rules[AGENT_QUEUE_BACKLOG_GROWING.name]
        )
    if AGENT_TASK_RATE_ANOMALY.name in rules:
        out[AGENT_TASK_RATE_ANOMALY.name] = _anomaly_cases(
            s, rules[AGENT_TASK_RATE_ANOMALY.name][0]
        )
    return out
