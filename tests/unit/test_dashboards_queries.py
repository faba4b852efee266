"""Dashboard queries: only metrics someone produces, agent filters on the label each metric
really has, and the panel_queries API. The real promtool parses them in
``tests/rules/test_dashboard_queries_promql.py``."""

from __future__ import annotations

import re

import pytest

from meshwatch.alerts.external_metrics import EXTERNAL_METRICS
from meshwatch.alerts.recording import RECORDING_RULES
from meshwatch.alerts.slos import recording_rules as slo_recording_rules
from meshwatch.dashboards import dashboard_models, panel_queries
from meshwatch.dashboards.query_sources import (
    RECORDED_NAMES,
    PanelQuery,
    check_metrics,
    metric_names,
    source_of,
)
from meshwatch.instrumentation.catalogue import CATALOGUE
from meshwatch.settings import Settings

QUERIES = panel_queries(Settings())
PROM_QUERIES = [q for q in QUERIES if q.datasource == "prometheus"]
# Grafana's interval variables become fixed durations; any other variable sits
# inside a label matcher's regex, where `.*` keeps the expression meaningful.
GRAFANA_DURATIONS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
VARIABLE = re.compile(r"\$\{\w+(?::\w+)?\}|\$\w+")


def as_plain_promql(expr: str) -> str:
    """``expr`` with Grafana variables substituted, as Prometheus would receive it."""
    for variable, value in GRAFANA_DURATIONS.items():
        expr = expr.replace(variable, value)
    return VARIABLE.sub(".*", expr)


def _variable_queries() -> list[tuple[str, str]]:
    """(dashboard uid, metric) of every label_values() variable: its metric must exist too."""
    found = []
    for model in dashboard_models(Settings()):
        for variable in model["templating"]["list"]:
            match = re.fullmatch(r"label_values\((\w+), \w+\)", str(variable["query"]))
            if match:
                found.append((model["uid"], match.group(1)))
    return found


def _query_id(q: PanelQuery) -> str:
    return f"{q.dashboard_uid}/{q.panel_title}/{q.ref_id}"


# --- Grafana variables --------------------------------------------------------------


def test_substitution_leaves_no_grafana_variable() -> None:
    for q in PROM_QUERIES:
        assert "$" not in as_plain_promql(q.expr), _query_id(q)
    assert as_plain_promql('rate(m{a=~"${agent:regex}"}[$__rate_interval])') == (
        'rate(m{a=~".*"}[5m])'
    )


# --- metrics: only those someone produces -------------------------------------------------


@pytest.mark.parametrize("query", PROM_QUERIES, ids=_query_id)
def test_every_metric_is_catalogued_recorded_or_external(query: PanelQuery) -> None:
    assert query.metrics, "a query that reads no metric cannot show data"
    known = CATALOGUE.series_names() | RECORDED_NAMES | EXTERNAL_METRICS.series_names()
    slo_records = {r.record for r in slo_recording_rules(Settings().slos)}
    assert query.metrics <= known | slo_records, sorted(query.metrics - known - slo_records)


def test_variable_metrics_are_catalogue_metrics() -> None:
    for uid, name in _variable_queries():
        assert name in CATALOGUE or name in EXTERNAL_METRICS, (uid, name)


def test_recorded_names_are_the_generated_recording_rules() -> None:
    assert {rule.record for rule in RECORDING_RULES} == RECORDED_NAMES
    used = {m for q in PROM_QUERIES for m in q.metrics if m in RECORDED_NAMES}
    assert used, "panels that mirror an alert read the alert's recorded series"


_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")
_MATCHER = re.compile(r'(\w+)\s*(?:=~|!~|!=|=)\s*"')


# Every label a catalogue metric has: a record name's level is some of them joined by "_".
_LABELS = {"le", *(label for m in CATALOGUE for label in m.all_labels(with_optional=True))}


def _labels_of(series: str) -> set[str] | None:
    """The labels series ``series`` can carry (None when it is no known series)."""
    for catalogue in (CATALOGUE, EXTERNAL_METRICS):
        if series in catalogue:
            metric = catalogue.get(series)
            extra = {"le"} if series.endswith("_bucket") else set()
            return set(metric.all_labels(with_optional=True)) | extra
    for rule in (*RECORDING_RULES, *slo_recording_rules(Settings().slos)):
        if rule.record == series:
            level = rule.record.split(":", 1)[0]
            return {label for label in _LABELS if label in level} | set(rule.labels)
    return None


@pytest.mark.parametrize("query", PROM_QUERIES, ids=_query_id)
def test_label_filters_use_labels_the_metric_has(query: PanelQuery) -> None:
    """agent_did on hypervisor and work metrics, agent_id on governance metrics: a filter on
    a label the series lacks would match nothing once an agent is selected."""
    for series, matchers in _SELECTOR.findall(query.expr):
        labels = _labels_of(series)
        assert labels is not None, series
        for label in _MATCHER.findall(matchers):
            assert label in labels, f"{series} has no label {label!r}"


def test_the_label_check_catches_the_wrong_agent_label() -> None:
    governance = "agent_governance_tool_calls_blocked_total"
    assert "agent_did" not in (_labels_of(governance) or set())
    assert "agent_id" in (_labels_of(governance) or set())


# --- the metric-name extractor ---------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (agent_did) (rate(a_total{agent_did=~"$agent"}[5m]))', {"a_total"}),
        (
            "histogram_quantile(0.95, sum by (le, outcome) (rate(h_bucket[$__rate_interval])))",
            {"h_bucket"},
        ),
        ("max(x) or vector(0)", {"x"}),
        ("a / on (job) group_left (instance) b offset 15m", {"a", "b"}),
        (
            'sum by (s) (ALERTS{alertstate="firing"}) or on () label_replace(vector(0), "s", "none", "", "")',
            {"ALERTS"},
        ),
        ('level:metric:rate5m{quantile="0.95"} > bool 1e3', {"level:metric:rate5m"}),
        ('count(up{job=~"a|b"} == 0)', {"up"}),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_source_of_each_kind_of_metric() -> None:
    assert source_of("agent_tasks_started_total") == "meshwatch"
    assert source_of("agent_task_duration_seconds_bucket") == "meshwatch"
    assert source_of(RECORDING_RULES[0].record) == "recording"
    assert source_of("up") == "prometheus"
    assert source_of("ALERTS") == "prometheus"
    assert source_of("alertmanager_notifications_failed_total") == "alertmanager"
    assert source_of("tempo_distributor_spans_received_total") == "tempo"
    assert source_of("traces_spanmetrics_calls_total") == "tempo-metrics-generator"
    with pytest.raises(ValueError, match="neither a catalogue metric"):
        source_of("agent_task_duration_ms")


def test_every_external_metric_has_a_known_producer() -> None:
    for metric in EXTERNAL_METRICS:
        for series in metric.series_names:
            source_of(series)


def test_a_dashboard_reading_an_unknown_metric_is_refused() -> None:
    model = dashboard_models(Settings())[0]
    panel = next(
        p for p in model["panels"] if p.get("targets") and p["datasource"]["type"] == "prometheus"
    )
    panel["targets"][0]["expr"] = 'rate(agent_tasks_startd_total{agent_did=~"$agent"}[5m])'
    with pytest.raises(
        ValueError, match=rf"panel {re.escape(repr(panel['title']))}.*agent_tasks_startd_total"
    ):
        check_metrics(model)


# --- panel_queries: what the integration tier runs --------------------------------------------


def test_panel_queries_cover_every_target() -> None:
    targets = sum(
        len(p.get("targets", ())) for m in dashboard_models(Settings()) for p in m["panels"]
    )
    assert len(QUERIES) == targets
    assert len({(q.dashboard_uid, q.panel_title, q.ref_id) for q in QUERIES}) == len(QUERIES)


def test_tempo_fed_queries_are_not_natively_checkable() -> None:
    for q in QUERIES:
        tempo_fed = q.datasource == "tempo" or bool(
            q.sources & {"tempo", "tempo-metrics-generator"}
        )
        assert q.natively_checkable is not tempo_fed, _query_id(q)
    kinds = {(q.datasource, q.query_type) for q in QUERIES if not q.natively_checkable}
    assert kinds == {("tempo", "traceql"), ("tempo", "serviceMap"), ("prometheus", "promql")}


def test_most_prometheus_queries_read_only_what_the_demo_and_prometheus_produce() -> None:
    checkable = [q for q in PROM_QUERIES if q.natively_checkable]
    assert len(checkable) >= 0.75 * len(PROM_QUERIES)
    for q in checkable:
        assert q.sources <= {"meshwatch", "recording", "prometheus", "alertmanager"}
