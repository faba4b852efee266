"""The generated compose stack works end to end: what `make up` gives a user with Docker.

Asserted only through the servers' own HTTP APIs, as a user's browser or a
script would see them: Grafana healthy with every provisioned datasource
passing its health check and every dashboard present by uid, a dashboard
query answered through Grafana, a trace the demo exported found in Tempo by
its id, and Tempo's metrics generator writing service-graph and span metrics
into Prometheus (which the sagas dashboard's service-graph panels read).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from meshwatch.dashboards import queries_of
from meshwatch.dashboards.query_sources import PanelQuery
from meshwatch.instrumentation.catalogue import GOVERNANCE_LATENCY
from meshwatch.stack.grafana_provisioning import DATASOURCES_PATH, PROMETHEUS_UID
from tests.integration.containers.conftest import RunningCompose
from tests.integration.helpers.dashboards import (
    builtin_values,
    default_values,
    load_dashboards,
    substitute,
)
from tests.integration.helpers.grafana import HTTPJSON, GrafanaAPI
from tests.integration.helpers.poll import wait_until
from tests.integration.helpers.prom import PrometheusAPI

# Compose starts, builds the demo image and pulls four images: slow the first time.
pytestmark = [pytest.mark.containers, pytest.mark.timeout(1200)]

# Tempo's metrics generator flushes every 15 s and Prometheus scrapes every 2 s here.
DATA_TIMEOUT = 180.0


@pytest.fixture(scope="module")
def grafana(compose_stack: RunningCompose) -> GrafanaAPI:
    api = GrafanaAPI(compose_stack.url("grafana"), auth=compose_stack.grafana_auth)
    wait_until(api.healthy, timeout=120, what="Grafana /api/health")
    return api


@pytest.fixture(scope="module")
def dashboards(compose_stack: RunningCompose) -> dict[str, dict[str, Any]]:
    return load_dashboards(compose_stack.out_dir / "grafana" / "dashboards")


def _grafana_expr(query: PanelQuery, dashboard: dict[str, Any]) -> str:
    values = default_values(dashboard) | builtin_values(rate_interval="1m", range_seconds=300)
    return substitute(query.expr, values)


def test_grafana_reports_healthy(grafana: GrafanaAPI) -> None:
    status, body = grafana.get("/api/health")
    assert status == 200
    assert body["database"] == "ok"


def test_anonymous_access_is_refused(compose_stack: RunningCompose, grafana: GrafanaAPI) -> None:
    status, _ = HTTPJSON(compose_stack.url("grafana")).get("/api/datasources")
    assert status == 401


def test_every_provisioned_datasource_passes_its_health_check(
    compose_stack: RunningCompose, grafana: GrafanaAPI
) -> None:
    provisioned = yaml.safe_load((compose_stack.out_dir / DATASOURCES_PATH).read_text())
    uids = sorted(ds["uid"] for ds in provisioned["datasources"])
    datasources = {ds["uid"]: ds for ds in grafana.datasources()}
    assert sorted(datasources) == uids

    def healthy(uid: str) -> str:
        ok, detail = grafana.datasource_healthy(datasources[uid])
        if not ok:
            raise AssertionError(detail)  # wait_until reports the last reason
        return detail

    for uid in uids:
        wait_until(lambda uid=uid: healthy(uid), timeout=120, what=f"datasource {uid} healthy")


def test_every_generated_dashboard_is_provisioned_under_its_uid(
    grafana: GrafanaAPI, dashboards: dict[str, dict[str, Any]]
) -> None:
    assert dashboards, "no dashboards were generated"
    for uid, model in dashboards.items():
        status, body = wait_until(
            lambda uid=uid: (lambda r: r if r[0] == 200 else None)(grafana.dashboard(uid)),
            timeout=60,
            what=f"dashboard {uid} provisioned",
        )
        assert status == 200
        assert body["dashboard"]["title"] == model["title"]
        assert len(body["dashboard"]["panels"]) == len(model["panels"])


def test_a_dashboard_query_through_grafana_returns_data(
    grafana: GrafanaAPI, dashboards: dict[str, dict[str, Any]]
) -> None:
    """Grafana's own query path (datasource proxy, variable-free PromQL) answers with data."""
    candidates = [
        (query, model)
        for model in dashboards.values()
        for query in queries_of(model)
        if query.natively_checkable and query.sources == {"meshwatch"}
    ]
    assert candidates, "no dashboard query reads meshwatch metrics"
    query, model = candidates[0]
    expr = _grafana_expr(query, model)
    values = wait_until(
        lambda: grafana.prometheus_query(PROMETHEUS_UID, expr),
        timeout=DATA_TIMEOUT,
        what=f"data for panel {query.panel_title!r} ({expr})",
    )
    assert values


def test_a_trace_exported_by_the_demo_is_found_in_tempo_by_id(
    compose_stack: RunningCompose,
) -> None:
    tempo = HTTPJSON(compose_stack.url("tempo"))

    def some_trace_ids() -> list[str]:
        now = int(time.time())
        status, body = tempo.get("/api/search", limit=20, start=now - 3600, end=now + 60)
        if status != 200:
            return []
        return [t["traceID"] for t in body.get("traces", [])]

    trace_ids = wait_until(some_trace_ids, timeout=DATA_TIMEOUT, what="traces in Tempo search")
    status, body = tempo.get(f"/api/traces/{trace_ids[0]}")
    assert status == 200, body
    batches = body.get("batches") or body.get("resourceSpans") or []
    spans = [
        span
        for batch in batches
        for scope in batch.get("scopeSpans", batch.get("instrumentationLibrarySpans", []))
        for span in scope.get("spans", [])
    ]
    assert spans, f"trace {trace_ids[0]} has no spans: {body}"


def test_exemplars_link_latency_to_traces_tempo_holds(compose_stack: RunningCompose) -> None:
    """The exemplar trace ids Prometheus stores open real traces (the dashboard's exemplar dots)."""
    prometheus = HTTPJSON(compose_stack.url("prometheus"))
    tempo = HTTPJSON(compose_stack.url("tempo"))

    def exemplar_trace_ids() -> list[str]:
        now = time.time()
        status, body = prometheus.get(
            "/api/v1/query_exemplars",
            query=f"{GOVERNANCE_LATENCY.name}_bucket",
            start=now - 600,
            end=now,
        )
        if status != 200:
            return []
        return [
            labels.get("trace_id") or labels.get("traceID")
            for series in body["data"]
            for labels in (e["labels"] for e in series["exemplars"])
            if labels.get("trace_id") or labels.get("traceID")
        ]

    trace_ids = wait_until(
        exemplar_trace_ids, timeout=DATA_TIMEOUT, what="exemplars with trace ids"
    )
    wait_until(
        lambda: any(tempo.get(f"/api/traces/{tid}")[0] == 200 for tid in trace_ids[-5:]),
        timeout=DATA_TIMEOUT,
        what=f"one of the exemplar traces {trace_ids[-5:]} in Tempo",
    )


def test_service_graph_and_span_metrics_reach_prometheus(
    compose_stack: RunningCompose, dashboards: dict[str, dict[str, Any]]
) -> None:
    """Every dashboard query fed by Tempo's metrics generator returns data from Prometheus."""
    prometheus = PrometheusAPI(compose_stack.url("prometheus"))
    fed_by_tempo = [
        (query, model)
        for model in dashboards.values()
        for query in queries_of(model)
        if query.datasource == "prometheus" and "tempo-metrics-generator" in query.sources
    ]
    assert fed_by_tempo, "no dashboard panel reads Tempo's service-graph or span metrics"
    for query, model in fed_by_tempo:
        expr = _grafana_expr(query, model)
        wait_until(
            lambda expr=expr: prometheus.query(expr),
            timeout=DATA_TIMEOUT,
            what=f"{query.dashboard_uid} / {query.panel_title!r}: {expr}",
        )
