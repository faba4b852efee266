"""Sagas and traces: how multi-step agent workflows end, and what the traces say.

Questions it answers:

* How many sagas complete, fail or escalate, and is the share that does not
  complete at the ``SagaFailureRatioHigh`` level for any agent?
* Which saga steps commit, fail or get compensated; how often do agents
  compensate (``SagaCompensationRateHigh``) and did any saga escalate to a
  human (``SagaEscalated``) in the time range?
* How long do saga steps take, by outcome?
* Which services (agents) call which, how much and how often it fails, and
  how slow each call is (Tempo's service graph, built by its metrics
  generator from the spans)?
* How many saga spans of each kind end per second, what share end in error,
  and how long they take (span metrics, also from the metrics generator)?
* What did one saga do, step by step (trace search and span timeline)?

The service graph and span-metrics panels read series that Tempo's metrics
generator remote-writes into Prometheus, so they stay empty where Tempo or its
generator does not run; every other panel reads meshwatch's own metrics.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from meshwatch.alerts.catalogue import (
    SAGA_COMPENSATION_RATE_HIGH,
    SAGA_ESCALATED,
    SAGA_FAILURE_RATIO_HIGH,
)
from meshwatch.alerts.external_metrics import (
    TEMPO_SERVICE_GRAPH_REQUEST_FAILURES,
    TEMPO_SERVICE_GRAPH_REQUEST_SERVER_SECONDS,
    TEMPO_SERVICE_GRAPH_REQUESTS,
    TEMPO_SPANMETRICS_CALLS,
    TEMPO_SPANMETRICS_LATENCY,
)
from meshwatch.alerts.recording import (
    SAGA_COMPENSATION_RATE,
    SAGA_FAILURE_RATIO,
    SAGA_RATE,
    SAGA_STEP_RATE,
)
from meshwatch.dashboards.common import (
    AGENT_DID,
    COUNT,
    OPS,
    RATE,
    RATIO,
    REQPS,
    SECONDS,
    TEMPO,
    Grid,
    agent_variable,
    alert_marks,
    dashboard,
    datasource_variable,
    neutral_steps,
    prom,
    quantile,
    recorded,
    sel,
    stat,
    tempo_variable,
    timeseries,
)
from meshwatch.dashboards.panels import NodeGraph, TempoTarget
from meshwatch.dashboards.tracing import add_saga_traces, trace_id_variable
from meshwatch.instrumentation.catalogue import (
    SAGA_ESCALATIONS,
    SAGA_STEP_DURATION,
    SAGA_STEPS,
)
from meshwatch.settings import Settings

SLUG = "sagas"
# Span metrics label spans by name; saga spans are saga.step.*, saga.compensate.*, ...
_SAGA_SPANS = 'span_name=~"saga[.].*"'
_ERROR_STATUS = 'status_code="STATUS_CODE_ERROR"'


def _outcome_panels(settings: Settings, grid: Grid) -> None:
    grid.row("Saga outcomes")
    grid.add(
        timeseries(
            "Sagas by outcome",
            "Sagas ending per second (5m rate): completed, failed, escalated.",
            [prom(f"sum by (outcome) ({recorded(SAGA_RATE, AGENT_DID)})", "{{outcome}}")],
            unit=OPS,
            stack=True,
        ),
        w=9,
        h=8,
    )
    grid.add(
        stat(
            "Saga failure ratio (worst agent)",
            "Share of the sagas that ended without completing (failed or escalated), for "
            f"the agent with the highest share. Orange where {SAGA_FAILURE_RATIO_HIGH.name} fires.",
            [prom(f"max({recorded(SAGA_FAILURE_RATIO, AGENT_DID)})", "not completed")],
            unit=RATIO,
            **alert_marks(settings, SAGA_FAILURE_RATIO_HIGH),
        ),
        w=6,
        h=8,
    )
    grid.add(
        timeseries(
            "Saga step outcomes",
            "Saga steps ending per second (5m rate): committed, failed, compensated.",
            [prom(f"sum by (outcome) ({recorded(SAGA_STEP_RATE, AGENT_DID)})", "{{outcome}}")],
            unit=OPS,
            stack=True,
        ),
        w=9,
        h=8,
    )


def _compensation_panels(settings: Settings, grid: Grid) -> None:
    escalations = sel(SAGA_ESCALATIONS.name, AGENT_DID)
    grid.row("Compensation and escalation")
    grid.add(
        timeseries(
            "Compensations and escalations",
            "Compensating actions per second per agent (5m rate; the dashed line is the "
            f"{SAGA_COMPENSATION_RATE_HIGH.name} threshold) and sagas escalated to a human per second.",
            [
                prom(recorded(SAGA_COMPENSATION_RATE, AGENT_DID), "compensations {{agent_did}}"),
                prom(
                    f"sum by (agent_did) (rate({escalations}[{RATE}]))",
                    "escalations {{agent_did}}",
                ),
            ],
            unit=OPS,
            **alert_marks(settings, SAGA_COMPENSATION_RATE_HIGH, SAGA_ESCALATED),
        ),
        w=12,
        h=8,
    )
    grid.add(
        stat(
            "Escalated sagas",
            "Sagas escalated to a human in the selected time range. Any escalation fires "
            f"{SAGA_ESCALATED.name}: a human must restore consistency.",
            [prom(f"sum(increase({escalations}[$__range])) or vector(0)", "escalated")],
            unit=COUNT,
            **alert_marks(settings, SAGA_ESCALATED),
        ),
        w=4,
        h=8,
    )
    grid.add(
        timeseries(
            "Saga step duration p95 by outcome",
            "95th percentile of saga step duration, by how the step ended (all agents).",
            [
                prom(
                    quantile(0.95, SAGA_STEP_DURATION.name + "_bucket", ("outcome",)),
                    "{{outcome}}",
                ),
            ],
            unit=SECONDS,
        ),
        w=8,
        h=8,
    )


def _service_graph_panels(grid: Grid) -> None:
    requests = TEMPO_SERVICE_GRAPH_REQUESTS.name
    failures = TEMPO_SERVICE_GRAPH_REQUEST_FAILURES.name
    server = TEMPO_SERVICE_GRAPH_REQUEST_SERVER_SECONDS.name
    grid.row("Service graph (Tempo metrics generator)")
    grid.add(
        NodeGraph(
            title="Service graph",
            description=(
                "Which services call which, with request rate and latency per node and edge. "
                "Built by Tempo from its metrics generator's service-graph series."
            ),
            dataSource=TEMPO,
            targets=[TempoTarget(datasource=TEMPO, queryType="serviceMap")],
            thresholds=neutral_steps(),
        ),
        w=12,
        h=12,
    )
    grid.add(
        timeseries(
            "Requests between services",
            "Requests per second on each client -> server edge of the service graph.",
            [
                prom(
                    f"sum by (client, server) (rate({requests}[{RATE}]))",
                    "{{client}} -> {{server}}",
                )
            ],
            unit=REQPS,
        ),
        w=12,
        h=12,
    )
    grid.add(
        timeseries(
            "Failed requests between services",
            "Share of requests on each edge that failed.",
            [
                prom(
                    f"sum by (client, server) (rate({failures}[{RATE}]))"
                    f" / sum by (client, server) (rate({requests}[{RATE}]))",
                    "{{client}} -> {{server}}",
                )
            ],
            unit=RATIO,
            max_value=1,
        ),
        w=12,
        h=8,
    )
    grid.add(
        timeseries(
            "Edge latency p95 (server side)",
            "95th percentile of request time on each edge, as measured by the server.",
            [
                prom(
                    quantile(0.95, f"{server}_bucket", ("client", "server")),
                    "{{client}} -> {{server}}",
                )
            ],
            unit=SECONDS,
        ),
        w=12,
        h=8,
    )


def _span_metric_panels(grid: Grid) -> None:
    calls = sel(TEMPO_SPANMETRICS_CALLS.name, _SAGA_SPANS)
    errors = sel(TEMPO_SPANMETRICS_CALLS.name, _SAGA_SPANS, _ERROR_STATUS)
    latency = sel(TEMPO_SPANMETRICS_LATENCY.name + "_bucket", _SAGA_SPANS)
    grid.row("Saga span metrics (Tempo metrics generator)")
    grid.add(
        timeseries(
            "Saga spans by name",
            "Saga spans ending per second, by span name (step, compensation, saga end).",
            [prom(f"sum by (span_name) (rate({calls}[{RATE}]))", "{{span_name}}")],
            unit=OPS,
        ),
        w=8,
        h=8,
    )
    grid.add(
        timeseries(
            "Saga span error ratio",
            "Share of saga spans of each name that ended with an error status.",
            [
                prom(
                    f"(sum by (span_name) (rate({errors}[{RATE}])) or"
                    f" sum by (span_name) (rate({calls}[{RATE}])) * 0)"
                    f" / sum by (span_name) (rate({calls}[{RATE}]))",
                    "{{span_name}}",
                )
            ],
            unit=RATIO,
            max_value=1,
        ),
        w=8,
        h=8,
    )
    grid.add(
        timeseries(
            "Saga span latency p95",
            "95th percentile of saga span duration, by span name.",
            [prom(quantile(0.95, latency, ("span_name",)), "{{span_name}}")],
            unit=SECONDS,
        ),
        w=8,
        h=8,
    )


def build(settings: Settings) -> Dashboard:
    """The sagas and traces dashboard."""
    grid = Grid()
    _outcome_panels(settings, grid)
    _compensation_panels(settings, grid)
    _service_graph_panels(grid)
    _span_metric_panels(grid)
    grid.row("Saga traces")
    add_saga_traces(grid, height=12)
    return dashboard(
        settings,
        slug=SLUG,
        title="Sagas and traces",
        description=(__doc__ or "").strip().splitlines()[0],
        tags=["sagas", "traces"],
        grid=grid,
        variables=[
            datasource_variable(),
            tempo_variable(),
            agent_variable(SAGA_STEPS),
            trace_id_variable(),
        ],
    )
