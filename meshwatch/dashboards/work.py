"""Agent work: what the agents get done, how well, how fast, and how they collaborate.

Questions it answers:

* How many tasks does each agent finish per second, and is any agent's rate
  far from its own baseline (``AgentTaskRateAnomaly``)?
* What share of tasks succeed, per agent, against the ``AgentTaskSuccessRateLow``
  floor, and what is the worst agent's error ratio (``AgentTaskErrorRateHigh``)?
* How long do tasks take (p95 per agent, ``AgentTaskDurationHigh``), and is
  any queue backing up (``AgentQueueBacklogGrowing``)?
* Which decisions do the agents make, how confident are they, and what is
  the quality of finished work?
* Which messages flow between agents and how many fail; how many conflicts
  start, resolve or fail, and how long resolution and dependency waits take?

Work metrics label agents ``agent_did``. Confidence, quality and the duration
histograms of conflicts and dependency waits carry no agent label (bounded
cardinality), so ``$agent`` does not filter those panels.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from meshwatch.alerts.catalogue import (
    AGENT_QUEUE_BACKLOG_GROWING,
    AGENT_TASK_DURATION_HIGH,
    AGENT_TASK_ERROR_RATE_HIGH,
    AGENT_TASK_RATE_ANOMALY,
    AGENT_TASK_SUCCESS_RATE_LOW,
)
from meshwatch.alerts.recording import (
    TASK_COMPLETION_RATE,
    TASK_DURATION_P95,
    TASK_ERROR_RATIO,
    TASK_START_RATE_ZSCORE,
    TASK_SUCCESS_RATIO,
)
from meshwatch.dashboards.common import (
    AGENT_DID,
    COUNT,
    NONE,
    OPS,
    RATE,
    RATIO,
    SECONDS,
    Grid,
    agent_variable,
    alert_marks,
    bargauge,
    dashboard,
    datasource_variable,
    prom,
    quantile,
    recorded,
    sel,
    stat,
    timeseries,
)
from meshwatch.instrumentation.catalogue import (
    CONFLICT_RESOLUTION_DURATION,
    CONFLICTS,
    DECISION_CONFIDENCE,
    DECISIONS,
    DEPENDENCY_WAIT_DURATION,
    MESSAGES_SENT,
    QUEUE_LENGTH,
    TASK_QUALITY,
    TASKS_STARTED,
)
from meshwatch.settings import Settings

SLUG = "work"


def _throughput_panels(settings: Settings, grid: Grid) -> None:
    grid.row("Throughput and success")
    grid.add(
        timeseries(
            "Task throughput per agent",
            "Tasks each agent completes per second (successful outcomes only, 5m rate).",
            [prom(recorded(TASK_COMPLETION_RATE, AGENT_DID), "{{agent_did}}")],
            unit=OPS,
        ),
        w=9,
        h=8,
    )
    grid.add(
        timeseries(
            "Task success rate per agent",
            f"Completed / (completed + failed) per agent, as {AGENT_TASK_SUCCESS_RATE_LOW.name} computes it. "
            "The dashed line is its floor.",
            [prom(recorded(TASK_SUCCESS_RATIO, AGENT_DID), "{{agent_did}}")],
            unit=RATIO,
            max_value=1,
            **alert_marks(settings, AGENT_TASK_SUCCESS_RATE_LOW),
        ),
        w=9,
        h=8,
    )
    grid.add(
        stat(
            "Task error ratio (worst agent)",
            "Failed / (completed + failed) of the agent failing most. "
            f"Orange/red where {AGENT_TASK_ERROR_RATE_HIGH.name} fires (warning/critical).",
            [prom(f"max({recorded(TASK_ERROR_RATIO, AGENT_DID)})", "error ratio")],
            unit=RATIO,
            **alert_marks(settings, AGENT_TASK_ERROR_RATE_HIGH),
        ),
        w=6,
        h=8,
    )


def _latency_panels(settings: Settings, grid: Grid) -> None:
    grid.row("Duration, backlog and anomalies")
    grid.add(
        timeseries(
            "Task duration p95 per agent",
            "95th percentile of task duration per agent (5m). "
            f"The dashed line is the {AGENT_TASK_DURATION_HIGH.name} threshold.",
            [prom(recorded(TASK_DURATION_P95, AGENT_DID), "{{agent_did}}")],
            unit=SECONDS,
            **alert_marks(settings, AGENT_TASK_DURATION_HIGH),
        ),
        w=8,
        h=8,
    )
    grid.add(
        timeseries(
            "Queue length per agent",
            "Tasks waiting in each agent's queue. "
            f"The dashed line is the {AGENT_QUEUE_BACKLOG_GROWING.name} threshold.",
            [prom(f"max by (agent_did) ({sel(QUEUE_LENGTH.name, AGENT_DID)})", "{{agent_did}}")],
            unit=COUNT,
            **alert_marks(settings, AGENT_QUEUE_BACKLOG_GROWING),
        ),
        w=8,
        h=8,
    )
    grid.add(
        timeseries(
            "Task start rate anomaly (z-score)",
            "How many standard deviations each agent's task start rate is from its own "
            f"baseline. Outside the dashed lines, {AGENT_TASK_RATE_ANOMALY.name} fires.",
            [prom(sel(TASK_START_RATE_ZSCORE, AGENT_DID), "{{agent_did}}")],
            unit=NONE,
            **alert_marks(settings, AGENT_TASK_RATE_ANOMALY),
            min_value=None,
        ),
        w=8,
        h=8,
    )


def _decision_panels(grid: Grid) -> None:
    confidence = DECISION_CONFIDENCE.name
    quality = TASK_QUALITY.name
    grid.row("Decisions and quality")
    grid.add(
        timeseries(
            "Decisions by type",
            "Decisions the selected agents make per second, by decision type.",
            [
                prom(
                    f"sum by (decision_type) (rate({sel(DECISIONS.name, AGENT_DID)}[{RATE}]))",
                    "{{decision_type}}",
                )
            ],
            unit=OPS,
            stack=True,
        ),
        w=8,
        h=8,
    )
    grid.add(
        timeseries(
            "Mean decision confidence and task quality",
            "Average confidence of decisions by type, and average quality score of finished "
            "tasks by task type (both 0-1; all agents).",
            [
                prom(
                    f"sum by (decision_type) (rate({confidence}_sum[{RATE}]))"
                    f" / sum by (decision_type) (rate({confidence}_count[{RATE}]))",
                    "confidence {{decision_type}}",
                ),
                prom(
                    f"sum by (task_type) (rate({quality}_sum[{RATE}]))"
                    f" / sum by (task_type) (rate({quality}_count[{RATE}]))",
                    "quality {{task_type}}",
                ),
            ],
            unit=RATIO,
            max_value=1,
        ),
        w=8,
        h=8,
    )
    grid.add(
        bargauge(
            "Decision confidence distribution",
            "How many decisions fell in each confidence bucket over the time range (all agents).",
            [
                prom(
                    f"sum by (le) (increase({confidence}_bucket[$__range]))",
                    "{{le}}",
                    heatmap=True,
                )
            ],
            unit=COUNT,
        ),
        w=8,
        h=8,
    )


def _collaboration_panels(grid: Grid) -> None:
    sent = sel(MESSAGES_SENT.name, AGENT_DID)
    grid.row("Collaboration")
    grid.add(
        timeseries(
            "Messages sent by type",
            "Inter-agent messages the selected agents send per second, by sender and type.",
            [
                prom(
                    f"sum by (agent_did, message_type) (rate({sent}[{RATE}]))",
                    "{{agent_did}} {{message_type}}",
                )
            ],
            unit=OPS,
        ),
        w=8,
        h=8,
    )
    grid.add(
        timeseries(
            "Messages sent by outcome",
            "Inter-agent messages per second by delivery outcome; anything but ok "
            "(timeout, rejected, ...) is a failure to look at.",
            [prom(f"sum by (outcome) (rate({sent}[{RATE}]))", "{{outcome}}")],
            unit=OPS,
            stack=True,
        ),
        w=8,
        h=8,
    )
    grid.add(
        timeseries(
            "Conflicts by state",
            "Conflicts between agents per second: started, resolved, failed.",
            [
                prom(
                    f"sum by (state) (rate({sel(CONFLICTS.name, AGENT_DID)}[{RATE}]))",
                    "{{state}}",
                )
            ],
            unit=OPS,
        ),
        w=8,
        h=8,
    )
    grid.add(
        timeseries(
            "Conflict resolution time p95",
            "95th percentile of the time from a conflict's start to its resolution or failure.",
            [
                prom(
                    quantile(0.95, CONFLICT_RESOLUTION_DURATION.name + "_bucket", ("state",)),
                    "{{state}}",
                )
            ],
            unit=SECONDS,
        ),
        w=12,
        h=8,
    )
    grid.add(
        timeseries(
            "Dependency wait p50 / p95",
            "How long agents wait on another agent's output.",
            [
                prom(quantile(0.5, DEPENDENCY_WAIT_DURATION.name + "_bucket"), "p50"),
                prom(quantile(0.95, DEPENDENCY_WAIT_DURATION.name + "_bucket"), "p95"),
            ],
            unit=SECONDS,
        ),
        w=12,
        h=8,
    )


def build(settings: Settings) -> Dashboard:
    """The agent work dashboard."""
    grid = Grid()
    _throughput_panels(settings, grid)
    _latency_panels(settings, grid)
    _decision_panels(grid)
    _collaboration_panels(grid)
    return dashboard(
        settings,
        slug=SLUG,
        title="Agent work",
        description=(__doc__ or "").strip().splitlines()[0],
        tags=["work", "tasks"],
        grid=grid,
        variables=[datasource_variable(), agent_variable(TASKS_STARTED)],
    )
