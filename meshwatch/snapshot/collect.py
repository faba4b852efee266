"""Which panels a snapshot can draw, and the data of each, from one Prometheus.

A panel is drawable when it queries the Prometheus datasource. Panels fed by
Tempo (trace search, span timeline, service graph) or by Grafana itself (the
alert list of unified alerting) are kept, with the reason, so the picture and
the index name them instead of leaving a silent gap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from meshwatch.dashboards.query_sources import TEMPO_SOURCES, metric_names, source_of
from meshwatch.snapshot.interpolate import builtin_values, default_values, substitute
from meshwatch.snapshot.promapi import PrometheusClient, QueryFailed, Series

JSON = dict[str, Any]
#: Called after each query: (queries done, queries in all, dashboard title).
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Window:
    """The time range a snapshot shows, and the step of its range queries."""

    end: float
    range_seconds: float
    scrape_interval: float
    points: int = 120

    @property
    def start(self) -> float:
        return self.end - self.range_seconds

    @property
    def step(self) -> float:
        """Grafana's ``$__interval`` for about ``points`` points, never below the scrape interval."""
        return max(round(self.range_seconds / self.points), self.scrape_interval, 1)


@dataclass
class TargetData:
    """One query of a panel: the PromQL sent and what came back (or why nothing did)."""

    ref_id: str
    legend: str
    expr: str
    series: list[Series] = field(default_factory=list)
    error: str | None = None


@dataclass
class PanelData:
    """A panel of the dashboard model and, if it is drawable, its query results."""

    panel: JSON
    targets: list[TargetData] = field(default_factory=list)
    not_drawable: str | None = None
    #: Sources no Prometheus of meshwatch's own can have, when the panel reads them.
    external: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return str(self.panel.get("title", ""))

    @property
    def kind(self) -> Literal["row", "prometheus", "not-drawable"]:
        if self.panel.get("type") == "row":
            return "row"
        return "not-drawable" if self.not_drawable else "prometheus"

    @property
    def has_data(self) -> bool:
        return any(s.last() is not None for t in self.targets for s in t.series)

    @property
    def errors(self) -> list[str]:
        return [f"{t.ref_id}: {t.error}" for t in self.targets if t.error]


def _not_drawable(panel: Mapping[str, Any]) -> str | None:
    datasource = (panel.get("datasource") or {}).get("type")
    if datasource == "tempo":
        return f"fed by Tempo ({panel.get('type')}): needs Grafana and Tempo"
    if not panel.get("targets"):
        return f"fed by Grafana itself ({panel.get('type')}): needs Grafana"
    if datasource != "prometheus":
        return f"fed by a {datasource} datasource: not drawable from Prometheus"
    return None


def _external_sources(panel: Mapping[str, Any]) -> tuple[str, ...]:
    sources = set()
    for target in panel.get("targets", []):
        for name in metric_names(target.get("expr", "")):
            try:
                sources.add(source_of(name))
            except ValueError:
                continue
    return tuple(sorted(sources & TEMPO_SOURCES))


def plan(dashboard: Mapping[str, Any]) -> list[PanelData]:
    """Every panel of ``dashboard`` in grid order, each marked drawable or not (nothing queried)."""
    return [
        PanelData(
            dict(panel),
            not_drawable=None if panel.get("type") == "row" else _not_drawable(panel),
            external=_external_sources(panel),
        )
        for panel in dashboard.get("panels", [])
    ]


def query_count(panels: list[PanelData]) -> int:
    return sum(len(p.panel.get("targets", [])) for p in panels if p.kind == "prometheus")


def collect(
    dashboard: Mapping[str, Any],
    client: PrometheusClient,
    window: Window,
    *,
    progress: Progress | None = None,
    done_before: int = 0,
    total: int | None = None,
) -> list[PanelData]:
    """Run every Prometheus query of ``dashboard`` as Grafana would on first load."""
    values = default_values(dashboard) | builtin_values(
        range_seconds=window.range_seconds,
        step=window.step,
        scrape_interval=window.scrape_interval,
    )
    panels = plan(dashboard)
    total = query_count(panels) if total is None else total
    done = done_before
    for data in panels:
        if data.kind != "prometheus":
            continue
        for target in data.panel.get("targets", []):
            data.targets.append(_run(client, window, target, values))
            done += 1
            if progress is not None:
                progress(done, total, str(dashboard.get("title", "")))
    return panels


def _run(
    client: PrometheusClient, window: Window, target: Mapping[str, Any], values: dict[str, str]
) -> TargetData:
    ref_id, legend = str(target.get("refId", "")), str(target.get("legendFormat", ""))
    try:
        expr = substitute(str(target.get("expr", "")), values)
    except KeyError as err:
        return TargetData(ref_id, legend, str(target.get("expr", "")), error=str(err.args[0]))
    try:
        if target.get("instant"):
            series = client.query(expr, window.end)
        else:
            series = client.query_range(expr, window.start, window.end, window.step)
    except QueryFailed as err:
        return TargetData(ref_id, legend, expr, error=str(err))
    return TargetData(ref_id, legend, expr, series)
