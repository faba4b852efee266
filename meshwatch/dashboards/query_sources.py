"""Panel-query introspection: what each dashboard query reads, and who produces it.

:func:`queries_of` lists each panel target of a dashboard as a
:class:`PanelQuery` (``meshwatch.dashboards.panel_queries`` does so for every
dashboard of a settings). The integration tier runs the Prometheus ones
against a live Prometheus scraping the demo workload;
:attr:`PanelQuery.natively_checkable` is false for queries only Tempo (or
Grafana) can answer, so such a test can list them instead.

:func:`metric_names` finds the series names a PromQL expression reads, and
:func:`source_of` says where each comes from. Rendering a dashboard that reads
a series no one produces is an error, which is how "No data" from a misspelt
metric is ruled out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from meshwatch.alerts.external_metrics import ALERTS, EXTERNAL_METRICS, UP
from meshwatch.alerts.recording import RECORDING_RULES
from meshwatch.alerts.slos import is_slo_record
from meshwatch.instrumentation.catalogue import CATALOGUE

Source = Literal[
    "meshwatch",  # the metric catalogue: the instrumented agents
    "recording",  # recording rules meshwatch generates (Prometheus evaluates them)
    "prometheus",  # Prometheus about itself and its targets (up, scrape_*, ALERTS, ...)
    "alertmanager",  # Alertmanager's own /metrics
    "tempo",  # Tempo's own /metrics
    "tempo-metrics-generator",  # series Tempo's metrics generator remote-writes
]
#: Sources a Prometheus scraping only the instrumented agents (and itself) cannot serve.
TEMPO_SOURCES: frozenset[Source] = frozenset({"tempo", "tempo-metrics-generator"})

RECORDED_NAMES = frozenset(rule.record for rule in RECORDING_RULES)

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACKETS = re.compile(r"\[[^\]]*\]")
_MATCHERS = re.compile(r"\{[^}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_TOKEN = re.compile(r"(?P<number>\d[\w.]*)|(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<call>\s*\()?")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"bool", "offset", "atan2", "Inf", "NaN", "inf", "nan"}
)


def metric_names(expr: str) -> frozenset[str]:
    """The metric (series) names a PromQL expression selects.

    Strings, ``[range]`` brackets, ``{matchers}`` and grouping label lists
    are removed first, so label names and values never count as metrics; a
    name followed by ``(`` is a function or aggregation.
    """
    text = _STRING.sub('""', expr)
    text = _BRACKETS.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _TOKEN.finditer(text):
        name = match.group("name")
        if name and not match.group("call") and name not in _KEYWORDS:
            names.add(name)
    return frozenset(names)


def source_of(name: str) -> Source:
    """Who produces series ``name``; ``ValueError`` if no one does."""
    if name in CATALOGUE:
        return "meshwatch"
    if name in RECORDED_NAMES or is_slo_record(name):
        return "recording"
    if name in EXTERNAL_METRICS:
        if name.startswith("traces_"):
            return "tempo-metrics-generator"
        if name.startswith("tempo_"):
            return "tempo"
        if name.startswith("alertmanager_"):
            return "alertmanager"
        if name in (UP.name, ALERTS.name) or name.startswith(("prometheus_", "scrape_")):
            return "prometheus"
        raise ValueError(f"external metric {name!r} has no known producer")
    raise ValueError(
        f"{name!r} is neither a catalogue metric, a recording rule nor an external metric"
    )


@dataclass(frozen=True)
class PanelQuery:
    """One target of one panel.

    ``expr`` is the PromQL (Prometheus), TraceQL (Tempo ``traceql``) or empty
    (Tempo ``serviceMap``); ``sources`` says who produces the series a
    PromQL query reads.
    """

    dashboard_uid: str
    panel_title: str
    ref_id: str
    datasource: Literal["prometheus", "tempo"]
    query_type: Literal["promql", "traceql", "serviceMap"]
    expr: str
    instant: bool
    metrics: frozenset[str]
    sources: frozenset[Source]

    @property
    def natively_checkable(self) -> bool:
        """True when a Prometheus scraping meshwatch's targets can answer it without Tempo."""
        return self.datasource == "prometheus" and not (self.sources & TEMPO_SOURCES)


def _query(uid: str, panel: Mapping[str, Any], target: Mapping[str, Any]) -> PanelQuery:
    kind = target["datasource"]["type"]
    if kind == "prometheus":
        expr = target["expr"]
        metrics = metric_names(expr)
        return PanelQuery(
            uid,
            panel["title"],
            target["refId"],
            "prometheus",
            "promql",
            expr,
            bool(target["instant"]),
            metrics,
            frozenset(source_of(m) for m in metrics),
        )
    if kind == "tempo":
        query_type = target["queryType"]
        return PanelQuery(
            uid,
            panel["title"],
            target["refId"],
            "tempo",
            query_type,
            target.get("query", ""),
            False,
            frozenset(),
            frozenset(),
        )
    raise ValueError(f"dashboard {uid}, panel {panel['title']!r}: unknown datasource {kind!r}")


def queries_of(dashboard: Mapping[str, Any]) -> Iterable[PanelQuery]:
    """The queries of one dashboard's JSON model, in panel order."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", ()):
            yield _query(dashboard["uid"], panel, target)


def check_metrics(dashboard: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the panel if a query reads a series no one produces."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", ()):
            if target["datasource"]["type"] != "prometheus":
                continue
            for name in sorted(metric_names(target["expr"])):
                try:
                    source_of(name)
                except ValueError as err:
                    raise ValueError(
                        f"dashboard {dashboard['uid']}, panel {panel['title']!r}: {err}"
                    ) from None
