"""Typed building blocks grafanalib 0.7.1 lacks, or emits in a shape modern Grafana misreads.

grafanalib's ``TimeSeries``, ``Stat`` and ``PieChartv2`` produce the Grafana 8+
schema and are used as they are. These are not:

* ``GaugePanel`` puts the reducer and threshold-marker options under
  ``fieldConfig`` (Grafana reads them from ``options``), ``BarGauge`` still
  writes the pre-7 ``options.fieldOptions`` block, and ``Table`` places value
  mappings outside ``fieldConfig.defaults`` where Grafana 8+ ignores them.
* ``AlertList`` is the legacy (pre-unified-alerting) list: Grafana 11 reads
  ``options.stateFilter`` as a mapping of states, not a list.
* There is no ``traces`` or ``nodeGraph`` panel, no Tempo query, and the
  Prometheus ``Target`` has no ``exemplar``/``range`` switches and sets the
  legacy ``intervalFactor: 2``, which halves the resolution of every query.
* ``Threshold`` writes the base step's value as the *string* ``"null"``.
* ``Template`` records a multi-select default of All as the string
  ``"$__all"`` for both text and value, where Grafana writes lists.

Each class here is a small attrs value with ``to_json_data()``, like grafanalib's
own, and the panels subclass grafanalib's ``Panel`` so id, gridPos, links,
datasource and thresholds are emitted by the same code for every panel.
"""

from __future__ import annotations

from typing import Any, Literal

import attr
from attr.validators import in_, instance_of, optional
from grafanalib.core import Panel, Template

JSON = dict[str, Any]
CellType = Literal["auto", "color-text", "color-background"]


def _panel_json(panel: Panel, overrides: JSON) -> JSON:
    """grafanalib's ``Panel.panel_json`` (unannotated there), with its result typed."""
    out: JSON = Panel.panel_json(panel, overrides)
    return out


@attr.s(frozen=True, slots=True)
class DataSourceRef:
    """A datasource reference by plugin type and uid (a template variable in our dashboards)."""

    type: str = attr.ib(validator=instance_of(str))
    uid: str = attr.ib(validator=instance_of(str))

    def to_json_data(self) -> JSON:
        return {"type": self.type, "uid": self.uid}


@attr.s(frozen=True, slots=True)
class ThresholdStep:
    """One step of a field's thresholds; the base step has no value (minus infinity)."""

    color: str = attr.ib(validator=instance_of(str))
    value: float | None = attr.ib(default=None, validator=optional(instance_of((int, float))))

    def to_json_data(self) -> JSON:
        return {"color": self.color, "value": self.value}


@attr.s(frozen=True, slots=True)
class PromTarget:
    """A Prometheus query. ``exemplar`` asks Prometheus for the trace exemplars of a histogram."""

    expr: str = attr.ib(validator=instance_of(str))
    datasource: DataSourceRef = attr.ib(validator=instance_of(DataSourceRef))
    refId: str = attr.ib(default="A", validator=instance_of(str))
    legendFormat: str = attr.ib(default="__auto", validator=instance_of(str))
    instant: bool = attr.ib(default=False, validator=instance_of(bool))
    format: Literal["time_series", "table", "heatmap"] = attr.ib(
        default="time_series", validator=in_(("time_series", "table", "heatmap"))
    )
    exemplar: bool = attr.ib(default=False, validator=instance_of(bool))

    def to_json_data(self) -> JSON:
        return {
            "datasource": self.datasource,
            "editorMode": "code",
            "exemplar": self.exemplar,
            "expr": self.expr,
            "format": self.format,
            "instant": self.instant,
            "legendFormat": self.legendFormat,
            "range": not self.instant,
            "refId": self.refId,
        }


@attr.s(frozen=True, slots=True)
class TempoTarget:
    """A Tempo query: a TraceQL search or trace id (``traceql``) or the service graph (``serviceMap``)."""

    datasource: DataSourceRef = attr.ib(validator=instance_of(DataSourceRef))
    queryType: Literal["traceql", "serviceMap"] = attr.ib(
        default="traceql", validator=in_(("traceql", "serviceMap"))
    )
    query: str = attr.ib(default="", validator=instance_of(str))
    refId: str = attr.ib(default="A", validator=instance_of(str))
    limit: int = attr.ib(default=20, validator=instance_of(int))
    tableType: Literal["traces", "spans"] = attr.ib(
        default="traces", validator=in_(("traces", "spans"))
    )

    def to_json_data(self) -> JSON:
        data: JSON = {
            "datasource": self.datasource,
            "filters": [],
            "queryType": self.queryType,
            "refId": self.refId,
        }
        if self.queryType == "traceql":
            data.update(limit=self.limit, query=self.query, tableType=self.tableType)
        return data


@attr.s(frozen=True, slots=True)
class ValueText:
    """A value mapping: show ``text`` (and ``color``) where a field's value equals ``value``."""

    value: str = attr.ib(validator=instance_of(str))
    text: str = attr.ib(validator=instance_of(str))
    color: str | None = attr.ib(default=None, validator=optional(instance_of(str)))
    index: int = attr.ib(default=0, validator=instance_of(int))

    def to_json_data(self) -> JSON:
        result: JSON = {"index": self.index, "text": self.text}
        if self.color is not None:
            result["color"] = self.color
        return {"options": {self.value: result}, "type": "value"}


def _reduce(calc: str) -> JSON:
    return {"calcs": [calc], "fields": "", "values": False}


@attr.s
class ModernGauge(Panel):
    """The ``gauge`` visualization (Grafana 8+ schema): one dial per series."""

    unit: str = attr.ib(default="short", validator=instance_of(str))
    min: float | None = attr.ib(default=None, validator=optional(instance_of((int, float))))
    max: float | None = attr.ib(default=None, validator=optional(instance_of((int, float))))
    reduceCalc: str = attr.ib(default="lastNotNull", validator=instance_of(str))
    showThresholdMarkers: bool = attr.ib(default=True, validator=instance_of(bool))

    def to_json_data(self) -> JSON:
        return _panel_json(
            self,
            {
                "fieldConfig": {
                    "defaults": {
                        "color": {"mode": "thresholds"},
                        "max": self.max,
                        "min": self.min,
                        "unit": self.unit,
                    },
                    "overrides": [],
                },
                "options": {
                    "minVizHeight": 75,
                    "minVizWidth": 75,
                    "orientation": "auto",
                    "reduceOptions": _reduce(self.reduceCalc),
                    "showThresholdLabels": False,
                    "showThresholdMarkers": self.showThresholdMarkers,
                    "sizing": "auto",
                },
                "type": "gauge",
            },
        )


@attr.s
class ModernBarGauge(Panel):
    """The ``bargauge`` visualization: one bar per series, coloured by the thresholds."""

    unit: str = attr.ib(default="short", validator=instance_of(str))
    min: float | None = attr.ib(default=None, validator=optional(instance_of((int, float))))
    max: float | None = attr.ib(default=None, validator=optional(instance_of((int, float))))
    reduceCalc: str = attr.ib(default="lastNotNull", validator=instance_of(str))
    displayMode: Literal["basic", "gradient", "lcd"] = attr.ib(
        default="gradient", validator=in_(("basic", "gradient", "lcd"))
    )
    orientation: Literal["horizontal", "vertical", "auto"] = attr.ib(
        default="horizontal", validator=in_(("horizontal", "vertical", "auto"))
    )

    def to_json_data(self) -> JSON:
        return _panel_json(
            self,
            {
                "fieldConfig": {
                    "defaults": {
                        "color": {"mode": "thresholds"},
                        "max": self.max,
                        "min": self.min,
                        "unit": self.unit,
                    },
                    "overrides": [],
                },
                "options": {
                    "displayMode": self.displayMode,
                    # Bars are labelled by series; the schema's legend default is hidden.
                    "legend": {
                        "calcs": [],
                        "displayMode": "list",
                        "placement": "bottom",
                        "showLegend": False,
                    },
                    "maxVizHeight": 300,
                    "minVizHeight": 16,
                    "minVizWidth": 8,
                    "namePlacement": "auto",
                    "orientation": self.orientation,
                    "reduceOptions": _reduce(self.reduceCalc),
                    "showUnfilled": True,
                    "sizing": "auto",
                    "valueMode": "color",
                },
                "type": "bargauge",
            },
        )


@attr.s
class ModernTable(Panel):
    """The ``table`` visualization with value mappings and cell colouring where Grafana 8+ reads them.

    ``renameByName`` and ``hideFields`` become one ``organize`` transformation (none without them),
    so instant Prometheus results read as a clean per-agent table. ``dataLinks``
    apply to every cell (the saga-trace table uses one to fill ``$trace_id``).
    """

    unit: str = attr.ib(default="short", validator=instance_of(str))
    mappings: list[ValueText] = attr.ib(factory=list, validator=instance_of(list))
    cellType: CellType = attr.ib(
        default="color-text", validator=in_(("auto", "color-text", "color-background"))
    )
    renameByName: dict[str, str] = attr.ib(factory=dict, validator=instance_of(dict))
    hideFields: tuple[str, ...] = attr.ib(default=(), validator=instance_of(tuple))
    sortBy: str | None = attr.ib(default=None, validator=optional(instance_of(str)))
    sortDesc: bool = attr.ib(default=True, validator=instance_of(bool))
    dataLinks: list[Any] = attr.ib(factory=list, validator=instance_of(list))

    def to_json_data(self) -> JSON:
        organize = {
            "id": "organize",
            "options": {
                "excludeByName": dict.fromkeys(self.hideFields, True),
                "indexByName": {},
                "renameByName": self.renameByName,
            },
        }
        sort_by = (
            [] if self.sortBy is None else [{"desc": self.sortDesc, "displayName": self.sortBy}]
        )
        reshape = [organize] if self.hideFields or self.renameByName else []
        return _panel_json(
            self,
            {
                "fieldConfig": {
                    "defaults": {
                        "color": {"mode": "thresholds"},
                        "custom": {
                            "align": "auto",
                            "cellOptions": {"type": self.cellType},
                            "filterable": True,
                            "inspect": False,
                        },
                        "links": self.dataLinks,
                        "mappings": self.mappings,
                        "unit": self.unit,
                    },
                    "overrides": [],
                },
                "options": {
                    "cellHeight": "sm",
                    "footer": {"countRows": False, "fields": "", "reducer": ["sum"], "show": False},
                    "showHeader": True,
                    "sortBy": sort_by,
                },
                "transformations": [*self.transformations, *reshape],
                "type": "table",
            },
        )


@attr.s
class Traces(Panel):
    """The ``traces`` visualization: the span timeline of one trace (Tempo datasource).

    Grafana renders a single trace here, so the query is normally a trace id
    taken from a dashboard variable that a TraceQL search table fills in.
    ``maxDataPoints`` is null: a trace is shown whole.
    """

    def to_json_data(self) -> JSON:
        return _panel_json(self, {"maxDataPoints": None, "options": {}, "type": "traces"})


@attr.s
class NodeGraph(Panel):
    """The ``nodeGraph`` visualization, fed by Tempo's service graph (``serviceMap`` query).

    Tempo's datasource builds the nodes and edges from the metrics-generator's
    ``traces_service_graph_*`` series in the Prometheus datasource linked in
    its ``serviceMap`` setting. ``maxDataPoints`` is null: the graph is shown whole.
    """

    mainStatUnit: str = attr.ib(default="reqps", validator=instance_of(str))
    secondaryStatUnit: str = attr.ib(default="ms", validator=instance_of(str))

    def to_json_data(self) -> JSON:
        stats = {"mainStatUnit": self.mainStatUnit, "secondaryStatUnit": self.secondaryStatUnit}
        return _panel_json(
            self,
            {
                "fieldConfig": {"defaults": {"unit": self.mainStatUnit}, "overrides": []},
                "maxDataPoints": None,
                "options": {"edges": dict(stats), "nodes": {**stats, "arcs": []}},
                "type": "nodeGraph",
            },
        )


@attr.s
class UnifiedAlertList(Panel):
    """The ``alertlist`` visualization of Grafana's unified alerting (Grafana 9+).

    It lists alerts from every rule source Grafana knows, including the
    Prometheus datasource's rules, so the meshwatch alerts appear without
    re-creating them as Grafana-managed rules. It runs no panel query.
    """

    maxItems: int = attr.ib(default=20, validator=instance_of(int))
    showPending: bool = attr.ib(default=True, validator=instance_of(bool))
    groupBy: tuple[str, ...] = attr.ib(default=(), validator=instance_of(tuple))

    def to_json_data(self) -> JSON:
        return _panel_json(
            self,
            {
                "options": {
                    "alertInstanceLabelFilter": "",
                    "alertName": "",
                    "dashboardAlerts": False,
                    "groupBy": list(self.groupBy),
                    "groupMode": "custom" if self.groupBy else "default",
                    "maxItems": self.maxItems,
                    "showInactiveAlerts": False,
                    "showInstances": True,
                    "sortOrder": 3,
                    "stateFilter": {
                        "error": True,
                        "firing": True,
                        "noData": False,
                        "normal": False,
                        "pending": self.showPending,
                        "recovering": True,
                    },
                    "viewMode": "list",
                },
                "type": "alertlist",
            },
        )


@attr.s
class AllByDefault(Template):
    """A multi-select query variable whose initial selection is "All", in Grafana's own form."""

    def __attrs_post_init__(self) -> None:
        self._current = {"selected": True, "text": ["All"], "value": ["$__all"]}
