"""What every meshwatch dashboard shares: datasource and agent variables, thresholds drawn
from the alert settings, runbook links, panel factories and the grid layout.

Every panel reads its datasource from a template variable (``$datasource`` for
Prometheus, ``$tempo`` for Tempo), never from a datasource uid baked into the
JSON: the same file works when provisioned by ``make up`` and when imported into
any Grafana through the UI (see :mod:`meshwatch.dashboards`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, TypedDict

import attr
from grafanalib.core import (
    GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,
    REFRESH_ON_DASHBOARD_LOAD,
    REFRESH_ON_TIME_RANGE_CHANGE,
    SORT_ALPHA_IGNORE_CASE_ASC,
    Dashboard,
    DashboardLink,
    DataLink,
    GridPos,
    Panel,
    PieChartv2,
    RowPanel,
    Stat,
    Template,
    Templating,
    Time,
    TimeSeries,
)

from meshwatch.alerts.catalogue import AlertDef, BurnRateAlertDef, Tier
from meshwatch.alerts.model import RecordingRule
from meshwatch.dashboards.panels import (
    AllByDefault,
    CellType,
    DataSourceRef,
    ModernBarGauge,
    ModernGauge,
    ModernTable,
    PromTarget,
    TempoTarget,
    ThresholdStep,
    ValueText,
)
from meshwatch.dashboards.schema import SCHEMA_VERSION
from meshwatch.instrumentation.catalogue import MetricDef
from meshwatch.settings import Settings, Severity

GRID_COLUMNS = 24
# Every meshwatch dashboard carries this tag; the dashboards link to each other through it.
TAG = "meshwatch"

PROMETHEUS = DataSourceRef("prometheus", "${datasource}")
TEMPO = DataSourceRef("tempo", "${tempo}")

# Grafana variables as they appear in queries.
RATE = "$__rate_interval"
AGENT_DID = 'agent_did=~"$agent"'
AGENT_ID = 'agent_id=~"$agent"'

# Units (Grafana unit ids) used across the dashboards.
SECONDS = "s"
RATIO = "percentunit"
OPS = "ops"  # events per second (tasks, transitions, breaches, messages)
REQPS = "reqps"  # requests per second (tool calls, spans, notifications)
BYTES_PER_SECOND = "Bps"
COUNT = "short"
NONE = "none"

_SEVERITY_COLOR: dict[Severity, str] = {"info": "blue", "warning": "orange", "critical": "red"}
BASE_OK = "green"


def sel(name: str, *matchers: str) -> str:
    """A PromQL series selector: ``sel(m.name, AGENT_DID)`` is ``m{agent_did=~"$agent"}``."""
    return f"{name}{{{', '.join(matchers)}}}" if matchers else name


def recorded(rule: RecordingRule, *matchers: str) -> str:
    """The series of a recording rule (with its static labels), narrowed by ``matchers``.

    Panels that show what an alert evaluates read the alert's recorded series,
    so the panel and the alert can never disagree about the value.
    """
    static = (f'{name}="{value}"' for name, value in rule.labels.items())
    return sel(rule.record, *static, *matchers)


def quantile(q: float, bucket: str, by: Sequence[str] = (), window: str = RATE) -> str:
    """``histogram_quantile`` over the rate of a ``_bucket`` selector, kept per ``by`` labels."""
    labels = ", ".join(("le", *by))
    return f"histogram_quantile({q}, sum by ({labels}) (rate({bucket}[{window}])))"


# --- thresholds ---------------------------------------------------------------


def neutral_steps() -> list[ThresholdStep]:
    """For panels no alert watches: one base colour, so nothing looks alarming by accident."""
    return [ThresholdStep(BASE_OK)]


class AlertMarks(TypedDict):
    """What a panel showing an alert's signal draws: the alert's thresholds and runbook links.

    Spread into a panel factory (``timeseries(..., **alert_marks(settings, ALERT))``)
    so the colours, the dashed threshold line and the link all come from one
    :class:`~meshwatch.alerts.catalogue.AlertDef` and the deployment's settings.
    """

    steps: list[ThresholdStep]
    links: list[DataLink]


def _color(tier: Tier) -> str:
    return _SEVERITY_COLOR[tier.severity]


def alert_steps(settings: Settings, alert: AlertDef) -> list[ThresholdStep]:
    """The threshold steps of ``alert``'s tiers: the panel turns colour where the alert fires.

    Above a threshold: green, then each tier's colour from its level up. Below
    one: the most severe colour at the bottom, green from the threshold up. An
    anomaly alert is coloured beyond ``-z`` and ``+z``; an event alert from a
    count of 1. A forecast has no level of its own: draw the alert it forecasts.
    """
    tiers = alert.tiers(settings.alerts)
    if alert.fires == "above":
        return [ThresholdStep(BASE_OK), *(ThresholdStep(_color(t), t.level) for t in tiers)]
    if alert.fires == "below":
        worst_first = tiers[::-1]
        steps = [ThresholdStep(_color(worst_first[0]))]
        for worse, lesser in itertools.pairwise(worst_first):
            steps.append(ThresholdStep(_color(lesser), worse.level))
        return [*steps, ThresholdStep(BASE_OK, tiers[0].level)]
    if alert.fires == "off_baseline":
        (tier,) = tiers
        z = tier.level or 0.0
        return [
            ThresholdStep(_color(tier)),
            ThresholdStep(BASE_OK, -z),
            ThresholdStep(_color(tier), z),
        ]
    if alert.fires == "on_event":
        return [ThresholdStep(BASE_OK), ThresholdStep(_color(tiers[0]), 1)]
    raise ValueError(f"{alert.name} forecasts another alert's threshold: draw that alert's steps")


def level_steps(severity: Severity, level: float) -> list[ThresholdStep]:
    """Green, then ``severity``'s colour from ``level`` up: a forecast's own limit (a budget)."""
    return [ThresholdStep(BASE_OK), ThresholdStep(_SEVERITY_COLOR[severity], level)]


def levels(marks: Sequence[tuple[float, Severity]]) -> list[ThresholdStep]:
    """Steps at several alert levels, each in its severity's colour (burn-rate factors)."""
    return [
        ThresholdStep(BASE_OK),
        *(ThresholdStep(_SEVERITY_COLOR[severity], value) for value, severity in sorted(marks)),
    ]


def below_levels(marks: Sequence[tuple[float, Severity]]) -> list[ThresholdStep]:
    """Steps for a value that is worse the lower it is (an SLI, a budget left).

    Below each level the panel takes that level's severity colour; above them all, green.
    """
    ordered = sorted(marks)
    if not ordered:
        return neutral_steps()
    steps = [ThresholdStep(_SEVERITY_COLOR[ordered[0][1]])]
    for index, (value, _) in enumerate(ordered):
        above_it = ordered[index + 1][1] if index + 1 < len(ordered) else None
        steps.append(ThresholdStep(_SEVERITY_COLOR[above_it] if above_it else BASE_OK, value))
    return steps


def runbooks(settings: Settings, *alerts: AlertDef | BurnRateAlertDef) -> list[DataLink]:
    """Panel links to the runbooks of the alerts a panel shows the signal of."""
    return [
        DataLink(
            title=f"Runbook: {alert.name}",
            linkUrl=alert.runbook_url(settings.alerts),
            isNewTab=True,
        )
        for alert in alerts
    ]


def alert_marks(settings: Settings, alert: AlertDef, *also: AlertDef) -> AlertMarks:
    """``alert``'s threshold steps, and runbook links to it and to the alerts in ``also``."""
    return {"steps": alert_steps(settings, alert), "links": runbooks(settings, alert, *also)}


# --- queries and panels ---------------------------------------------------------


def prom(
    expr: str,
    legend: str = "__auto",
    *,
    instant: bool = False,
    table: bool = False,
    heatmap: bool = False,
    exemplar: bool = False,
) -> PromTarget:
    """A query against ``$datasource``.

    ``table`` returns one row per series (instant tables); ``heatmap`` turns
    cumulative ``le`` buckets into per-bucket counts, so bars show a distribution.
    """
    return PromTarget(
        expr=expr,
        datasource=PROMETHEUS,
        legendFormat=legend,
        instant=instant or table,
        format="table" if table else "heatmap" if heatmap else "time_series",
        exemplar=exemplar,
    )


def _ref_ids(targets: Sequence[PromTarget | TempoTarget]) -> list[PromTarget | TempoTarget]:
    """Targets with refIds A, B, C... in order, so ids never depend on how a panel was built."""
    return [attr.evolve(t, refId=chr(ord("A") + i)) for i, t in enumerate(targets)]


def _common(
    title: str,
    description: str,
    targets: Sequence[PromTarget | TempoTarget],
    steps: list[ThresholdStep],
    links: list[DataLink],
    datasource: DataSourceRef = PROMETHEUS,
) -> dict[str, Any]:
    return {
        "title": title,
        "description": description,
        "dataSource": datasource,
        "targets": _ref_ids(targets),
        "thresholds": steps,
        "links": links,
        "maxDataPoints": None,
    }


def timeseries(
    title: str,
    description: str,
    targets: Sequence[PromTarget],
    *,
    unit: str,
    steps: list[ThresholdStep] | None = None,
    links: Sequence[DataLink] = (),
    stack: bool = False,
    min_value: int | None = 0,
    max_value: int | None = None,
) -> TimeSeries:
    """A time series; with alert steps the threshold is drawn as a dashed line on the graph."""
    return TimeSeries(
        **_common(title, description, targets, steps or neutral_steps(), list(links)),
        unit=unit,
        thresholdsStyleMode="dashed" if steps else "off",
        fillOpacity=25 if stack else 10,
        stacking={"group": "A", "mode": "normal"} if stack else {"mode": "none"},
        legendDisplayMode="list",
        legendPlacement="bottom",
        tooltipMode="multi",
        tooltipSort="desc",
        showPoints="never",
        valueMin=min_value,
        valueMax=max_value,
    )


def stat(
    title: str,
    description: str,
    targets: Sequence[PromTarget],
    *,
    unit: str,
    steps: list[ThresholdStep] | None = None,
    links: Sequence[DataLink] = (),
) -> Stat:
    """A single value coloured by the thresholds (the background turns red when an alert would fire)."""
    return Stat(
        **_common(title, description, targets, steps or neutral_steps(), list(links)),
        format=unit,
        color={"mode": "thresholds"},
        colorMode="background",
        graphMode="area",
        reduceCalc="lastNotNull",
        noValue=None,
        textMode="value_and_name" if len(targets) > 1 else "auto",
    )


def piechart(
    title: str,
    description: str,
    targets: Sequence[PromTarget],
    *,
    unit: str,
    links: Sequence[DataLink] = (),
) -> PieChartv2:
    """A donut of shares (allowed vs blocked): the last value of each series over the range."""
    return PieChartv2(
        **_common(title, description, targets, neutral_steps(), list(links)),
        unit=unit,
        pieType="donut",
        legendDisplayMode="table",
        legendPlacement="right",
        legendValues=["value", "percent"],
        reduceOptionsCalcs=["lastNotNull"],
        tooltipMode="multi",
        # PieChartv2 has no tooltip sort; the largest share first, as the time series sort.
        extraJson={"options": {"tooltip": {"sort": "desc"}}},
    )


def table(
    title: str,
    description: str,
    targets: Sequence[PromTarget | TempoTarget],
    *,
    unit: str,
    steps: list[ThresholdStep] | None = None,
    links: Sequence[DataLink] = (),
    mappings: Sequence[ValueText] = (),
    rename: dict[str, str] | None = None,
    hide: tuple[str, ...] = ("Time",),
    sort_by: str | None = None,
    sort_desc: bool = True,
    cell: CellType = "color-text",
    data_links: Sequence[DataLink] = (),
    datasource: DataSourceRef = PROMETHEUS,
) -> ModernTable:
    """A table: one row per series of an instant query (or per trace of a TraceQL search)."""
    return ModernTable(
        **_common(title, description, targets, steps or neutral_steps(), list(links), datasource),
        unit=unit,
        mappings=list(mappings),
        renameByName=dict(rename or {}),
        hideFields=hide,
        sortBy=sort_by,
        sortDesc=sort_desc,
        cellType=cell,
        dataLinks=list(data_links),
    )


def bargauge(
    title: str,
    description: str,
    targets: Sequence[PromTarget],
    *,
    unit: str,
    steps: list[ThresholdStep] | None = None,
    links: Sequence[DataLink] = (),
    min_value: float | None = 0,
    max_value: float | None = None,
) -> ModernBarGauge:
    """Horizontal bars, one per series, coloured where the alert threshold is crossed."""
    return ModernBarGauge(
        **_common(title, description, targets, steps or neutral_steps(), list(links)),
        unit=unit,
        min=min_value,
        max=max_value,
    )


def gauge(
    title: str,
    description: str,
    targets: Sequence[PromTarget],
    *,
    unit: str,
    steps: list[ThresholdStep],
    min_value: float,
    max_value: float,
    links: Sequence[DataLink] = (),
) -> ModernGauge:
    """Dials on a fixed scale (trust scores 0-1000) with the alert threshold as a marker."""
    return ModernGauge(
        **_common(title, description, targets, steps, list(links)),
        unit=unit,
        min=min_value,
        max=max_value,
    )


# --- variables ------------------------------------------------------------------


def datasource_variable() -> Template:
    """``$datasource``: any Prometheus datasource; Grafana selects the default one on load."""
    return Template(
        name="datasource",
        label="Prometheus",
        query="prometheus",
        type="datasource",
        regex="",
        refresh=REFRESH_ON_DASHBOARD_LOAD,
    )


def tempo_variable() -> Template:
    """``$tempo``: any Tempo datasource, for the trace search, trace view and service graph."""
    return Template(
        name="tempo",
        label="Tempo",
        query="tempo",
        type="datasource",
        regex="",
        refresh=REFRESH_ON_DASHBOARD_LOAD,
    )


def agent_variable(metric: MetricDef, label: str = "agent_did") -> Template:
    """``$agent``: the agents ``metric`` has seen, multi-select, All by default (regex ``.*``).

    ``.*`` also matches series without the label, so "All" keeps governance
    series whose optional ``agent_id`` label is switched off.
    """
    return label_variable("agent", "Agent", metric.name, label)


def label_variable(name: str, label: str, metric: str, label_name: str) -> Template:
    """A multi-select variable over the values of ``label_name`` on series ``metric``.

    All is selected by default and means ``.*``, which also matches series
    that lack the label, so no panel goes blank until a value is chosen.
    """
    return AllByDefault(
        name=name,
        label=label,
        query=f"label_values({metric}, {label_name})",
        dataSource=PROMETHEUS,
        type="query",
        includeAll=True,
        multi=True,
        allValue=".*",
        refresh=REFRESH_ON_TIME_RANGE_CHANGE,
        sort=SORT_ALPHA_IGNORE_CASE_ASC,
    )


def textbox_variable(name: str, label: str) -> Template:
    """A free-text variable (the trace id the trace view shows)."""
    return Template(name=name, label=label, query="", type="textbox", default="")


# --- layout ---------------------------------------------------------------------


class Grid:
    """Places panels left to right on Grafana's 24-column grid and numbers them.

    A panel that does not fit on the current line starts a new one below the
    tallest panel of that line, and :meth:`row` always starts a new line, so
    panels never overlap. Ids are 1, 2, 3... in placement order: the same
    dashboard code always yields the same ids and positions.
    """

    def __init__(self) -> None:
        self._panels: list[Panel] = []
        self._x = 0
        self._y = 0
        self._line_height = 0

    def _new_line(self) -> None:
        self._y += self._line_height
        self._x = 0
        self._line_height = 0

    def _place(self, panel: Panel, w: int, h: int) -> None:
        if not 1 <= w <= GRID_COLUMNS or h < 1:
            raise ValueError(f"panel {panel.title!r}: width must be 1-{GRID_COLUMNS}, height >= 1")
        if self._x + w > GRID_COLUMNS:
            self._new_line()
        self._panels.append(
            attr.evolve(
                panel, id=len(self._panels) + 1, gridPos=GridPos(h=h, w=w, x=self._x, y=self._y)
            )
        )
        self._x += w
        self._line_height = max(self._line_height, h)

    def row(self, title: str) -> Grid:
        """A full-width section header; the panels added after it sit below it."""
        self._new_line()
        self._place(RowPanel(title=title, collapsed=False, maxDataPoints=None), GRID_COLUMNS, 1)
        self._new_line()
        return self

    def add(self, panel: Panel, *, w: int, h: int) -> Grid:
        """Place ``panel`` (w columns wide, h rows of 30 px high) after the previous one."""
        self._place(panel, w, h)
        return self

    def panels(self) -> list[Panel]:
        return list(self._panels)


def dashboard(
    settings: Settings,
    *,
    slug: str,
    title: str,
    description: str,
    tags: Sequence[str],
    grid: Grid,
    variables: Sequence[Template],
) -> Dashboard:
    """A dashboard with the settings' uid prefix, time range, refresh and timezone.

    ``id`` stays null and ``version`` 0 so Grafana treats the file as new on
    import; the dashboard links list every other meshwatch dashboard (by tag).
    """
    ds = settings.dashboards
    return Dashboard(
        title=f"{ds.title_prefix} / {title}",
        uid=f"{ds.uid_prefix}-{slug}",
        description=description,
        tags=[TAG, *tags],
        panels=grid.panels(),
        templating=Templating(list=list(variables)),
        time=Time(ds.time_from, "now"),
        refresh=str(ds.refresh),
        timezone=ds.timezone,
        schemaVersion=SCHEMA_VERSION,
        graphTooltip=GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,
        links=[
            DashboardLink(
                title="meshwatch dashboards",
                type="dashboards",
                tags=[TAG],
                asDropdown=True,
                includeVars=True,
                keepTime=True,
            )
        ],
    )
