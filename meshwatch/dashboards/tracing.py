"""The saga trace search and span timeline, shared by the governance and saga dashboards.

Grafana's ``traces`` visualization draws one trace, so the timeline is a pair:
a table of saga traces found by a TraceQL search, and a ``traces`` panel that
shows the trace whose id is in ``$trace_id``. Clicking a row of the table
reloads the dashboard with that trace id (a data link), which puts its spans
(``saga.step.*``, ``saga.compensate.*``, ``saga.completed``/``saga.escalated``)
on the timeline, each carrying the ``agent.saga.*`` attributes.
"""

from __future__ import annotations

from grafanalib.core import DataLink, Template

from meshwatch.dashboards.common import TEMPO, Grid, neutral_steps, table, textbox_variable
from meshwatch.dashboards.panels import TempoTarget, Traces

TRACE_ID_VARIABLE = "trace_id"
# Saga spans are named saga.<kind>.<action or id> and carry agent.saga.id and
# agent.did (tutorial section 8). `${agent:regex}` is `.*` when All is selected.
SAGA_TRACEQL = '{ name =~ "saga[.].*" && span.agent.did =~ "${agent:regex}" }'
# Reload this dashboard (same variables and time range) with the clicked trace id.
_SHOW_TRACE_URL = (
    "/d/${__dashboard.uid}/?${__url_time_range}&${datasource:queryparam}&${tempo:queryparam}"
    "&${agent:queryparam}&var-" + TRACE_ID_VARIABLE + "=${__data.fields.traceID}"
)


def trace_id_variable() -> Template:
    """``$trace_id``: the trace the span timeline shows; set by clicking a saga trace."""
    return textbox_variable(TRACE_ID_VARIABLE, "Trace ID")


def add_saga_traces(grid: Grid, *, height: int = 10) -> Grid:
    """Add the saga trace table (left) and the span timeline of the chosen trace (right)."""
    search = table(
        "Saga traces",
        "Recent traces containing saga spans (TraceQL search in Tempo). Click a row to "
        "show that saga's span timeline on the right; the trace id opens it in Explore.",
        [TempoTarget(datasource=TEMPO, query=SAGA_TRACEQL, limit=20)],
        unit="ms",
        hide=(),
        cell="auto",
        sort_by="Start time",
        data_links=[DataLink(title="Show this saga's span timeline", linkUrl=_SHOW_TRACE_URL)],
        datasource=TEMPO,
    )
    timeline = Traces(
        title="Saga span timeline",
        description=(
            "The spans of the trace in $trace_id: saga steps, compensations and the saga's "
            "own span, with their agent.saga.* attributes. Empty until a saga trace is chosen."
        ),
        dataSource=TEMPO,
        targets=[TempoTarget(datasource=TEMPO, query="${" + TRACE_ID_VARIABLE + "}")],
        thresholds=neutral_steps(),
    )
    return grid.add(search, w=10, h=height).add(timeline, w=14, h=height)
