"""Agent work alerts: error and success ratios, slow tasks, a growing queue, an anomalous rate.

Ratios are per agent over ended tasks (completed + failed), from recording
rules that count a missing counter series as zero, so an agent whose every
task fails still has a ratio. Both ratio alerts also need the agent to have
ended ``min_events`` tasks in the window (:mod:`meshwatch.alerts.rules.ratios`):
one failure among an agent's first two tasks is not an incident. The anomaly alert has no hand-set rate threshold:
it compares each agent's task start rate with its own baseline by z-score
(recording rules in :mod:`meshwatch.alerts.recording`).
"""

from __future__ import annotations

from meshwatch.alerts.catalogue import (
    AGENT_QUEUE_BACKLOG_GROWING,
    AGENT_TASK_DURATION_HIGH,
    AGENT_TASK_ERROR_RATE_HIGH,
    AGENT_TASK_RATE_ANOMALY,
    AGENT_TASK_SUCCESS_RATE_LOW,
)
from meshwatch.alerts.model import AlertRule
from meshwatch.alerts.recording import (
    TASK_DURATION_P95,
    TASK_ERROR_RATIO,
    TASK_START_RATE,
    TASK_START_RATE_ZSCORE,
    TASK_SUCCESS_RATIO,
    baseline_offset,
    tasks_ended_per_second,
)
from meshwatch.alerts.rules.ratios import guarded, volume_note
from meshwatch.alerts.rules.tiers import comparison, percent, tiered
from meshwatch.instrumentation.catalogue import QUEUE_LENGTH
from meshwatch.settings import AlertsSettings


def alerts(s: AlertsSettings) -> list[AlertRule]:
    window = s.rate_window
    ended = tasks_ended_per_second(window)
    by_agent = ("agent_did",)

    def errors(threshold: float, note: str) -> AlertRule:
        return AlertRule(
            alert=AGENT_TASK_ERROR_RATE_HIGH.name,
            expr=guarded(
                f"{TASK_ERROR_RATIO.at(window)} > {threshold:g}",
                s.task_error_rate,
                by_agent,
                ended,
                window,
            ),
            for_=s.task_error_rate.for_,
            summary="Agent {{ $labels.agent_did }} is failing tasks",
            description=(
                "{{ $value | humanizePercentage }} of the tasks agent {{ $labels.agent_did }} "
                f"ended over the last {window} failed, above {percent(threshold)}{note}."
                + volume_note(s.task_error_rate, "ended tasks")
            ),
        )

    def successes(threshold: float, note: str) -> AlertRule:
        return AlertRule(
            alert=AGENT_TASK_SUCCESS_RATE_LOW.name,
            expr=guarded(
                f"{TASK_SUCCESS_RATIO.at(window)} {comparison(AGENT_TASK_SUCCESS_RATE_LOW.direction)} {threshold:g}",
                s.task_success_rate_low,
                by_agent,
                ended,
                window,
            ),
            for_=s.task_success_rate_low.for_,
            summary="Agent {{ $labels.agent_did }} completes too few of its tasks",
            description=(
                "Agent {{ $labels.agent_did }} completed only {{ $value | humanizePercentage }} "
                f"of the tasks it ended over the last {window}, below {percent(threshold)}{note}."
                + volume_note(s.task_success_rate_low, "ended tasks")
            ),
        )

    def durations(threshold: float, note: str) -> AlertRule:
        return AlertRule(
            alert=AGENT_TASK_DURATION_HIGH.name,
            expr=f"{TASK_DURATION_P95.at(window)} > {threshold:g}",
            for_=s.task_duration_p95_high.for_,
            summary="Tasks of agent {{ $labels.agent_did }} are slow",
            description=(
                "The 95th percentile duration of the tasks agent {{ $labels.agent_did }} "
                f"finished over the last {window} is {{{{ $value | humanizeDuration }}}}, "
                f"above {threshold:g}s{note}."
            ),
        )

    def backlog(threshold: float, note: str) -> AlertRule:
        queue = QUEUE_LENGTH.name
        return AlertRule(
            alert=AGENT_QUEUE_BACKLOG_GROWING.name,
            expr=f"{queue} > {threshold:g} and deriv({queue}[{window}]) > 0",
            for_=s.queue_backlog_growing.for_,
            summary="The task queue of agent {{ $labels.agent_did }} keeps growing",
            description=(
                "Agent {{ $labels.agent_did }} has {{ $value | humanize }} tasks waiting, above "
                f"{threshold:g}{note}, and its queue grew over the last {window}."
            ),
        )

    anomaly = s.task_rate_anomaly
    rate = TASK_START_RATE.selector
    unusual = AlertRule(
        alert=AGENT_TASK_RATE_ANOMALY.name,
        expr=f"{rate} and on(agent_did) abs({TASK_START_RATE_ZSCORE}) > {anomaly.z_score:g}",
        for_=anomaly.for_,
        summary="Agent {{ $labels.agent_did }} starts tasks at an unusual rate",
        description=(
            "Agent {{ $labels.agent_did }} starts {{ $value | humanize }} tasks per second, "
            f"more than {anomaly.z_score:g} standard deviations from its mean over the "
            f"{anomaly.baseline_window} that ended {baseline_offset(s)} ago."
        ),
    )
    return [
        *tiered(AGENT_TASK_ERROR_RATE_HIGH, s, errors),
        *tiered(AGENT_TASK_SUCCESS_RATE_LOW, s, successes),
        *tiered(AGENT_TASK_DURATION_HIGH, s, durations),
        *tiered(AGENT_QUEUE_BACKLOG_GROWING, s, backlog),
        unusual,
    ]
