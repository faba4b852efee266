"""The tables of the guide that are generated from the code they describe.

* ``dashboard-files`` and ``dashboard-metrics`` (docs/guide/importing-dashboards.md):
  which file is which dashboard, and which metrics the agents must export for
  each one, built from the dashboard models
  (:func:`meshwatch.dashboards.dashboard_models`) and their queries
  (:func:`meshwatch.dashboards.panel_queries`), following recording rules down
  to the catalogue metrics they are computed from.
* ``runbook-index`` (docs/runbooks/README.md): every alert, its default
  severities and its area, from the alert catalogue
  (:data:`meshwatch.alerts.catalogue.ALERT_CATALOGUE`).
* ``stack-urls`` (docs/guide/local-dashboards.md): what ``make up`` starts, in
  which mode, and where, from the endpoints and native components the runner
  itself uses.

Written by hand, they would drift; :func:`render` builds them and the doc test
compares the pages with it (``MESHWATCH_UPDATE_GOLDEN=1`` rewrites the pages).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterable
from typing import Any

import meshwatch.instrumentation
import meshwatch.remediation
from meshwatch.alerts.catalogue import ALERT_CATALOGUE, SLO_ERROR_BUDGET_BURN
from meshwatch.alerts.recording import RECORDING_RULES
from meshwatch.alerts.slos import recording_rules as slo_recording_rules
from meshwatch.commands.shared import STATUS_PAGES
from meshwatch.dashboards import dashboard_models, metric_names, panel_queries, source_of
from meshwatch.dashboards.query_sources import Source
from meshwatch.instrumentation.catalogue import CATALOGUE, MetricDef
from meshwatch.settings import Settings
from meshwatch.stack.ports import endpoints
from meshwatch.stack.runner.native import NATIVE_COMPONENTS

#: What an agent uses to produce the metrics a module of meshwatch.instrumentation declares.
PRODUCERS = {
    "ring_metrics": "`RingMetricsCollector` (`instrument(bus)`)",
    "saga_metrics": "`SagaMetricsCollector` (`instrument(bus)`)",
    "governance": "`GovernanceMetrics`",
    "work_metrics": "`AgentMetrics`",
    "genai": "`invoke_agent`/`execute_tool`/`invoke_workflow` (serve `GENAI_METRICS`)",
    "llm_metrics": "`GenAISpanMetrics` on your tracer provider, or `record_call`/`llm_call`",
    "bus": "`HypervisorEventBus`",
    "audit": "`AuditTrail`",
    "otel": "`configure_tracing` (serve `SPAN_EXPORT_METRICS`)",
    "drops": "meshwatch itself (always served)",
    "stores": "meshwatch itself (always served)",
    "prometheus": "meshwatch itself (always served)",
    "remediation": "the remediation receiver (`start_remediation`)",
}
STACK_SOURCES: dict[Source, str] = {
    "prometheus": "Prometheus",
    "alertmanager": "Alertmanager (scraped)",
    "tempo": "Tempo (scraped)",
    "tempo-metrics-generator": "Tempo's metrics generator (remote write)",
}
_DATASOURCES = {"prometheus": "Prometheus (`$datasource`)", "tempo": "Tempo (`$tempo`)"}
_LABEL_VALUES = re.compile(r"label_values\(\s*(?P<selector>[^,]+),")


def producers() -> dict[str, str]:
    """Catalogue metric name -> who produces it, from the modules that use each MetricDef."""
    found: dict[str, str] = {}
    for package in (meshwatch.instrumentation, meshwatch.remediation):
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
            # A subpackage's modules (audit.writer) produce under the subpackage's name;
            # outside the instrumentation, the package is the producer (remediation).
            name = info.name.removeprefix(f"{package.__name__}.").split(".")[0]
            if package is not meshwatch.instrumentation:
                name = package.__name__.removeprefix("meshwatch.")
            if name == "catalogue":
                continue
            module = importlib.import_module(info.name)
            for value in vars(module).values():
                if isinstance(value, MetricDef) and value.name not in found:
                    if name not in PRODUCERS:
                        raise KeyError(f"say in PRODUCERS who uses {info.name}")
                    found[value.name] = PRODUCERS[name]
    return found


#: Every recording rule of the default settings, the SLOs' included.
_RULES = (*RECORDING_RULES, *slo_recording_rules(Settings().slos))
_RECORDED = {rule.record: rule for rule in _RULES}


def _catalogue_metrics(names: Iterable[str], seen: frozenset[str] = frozenset()) -> set[MetricDef]:
    """The catalogue metrics behind series names, through recording rules (recursively)."""
    metrics: set[MetricDef] = set()
    for name in names:
        if name in CATALOGUE:
            metrics.add(CATALOGUE.get(name))
        elif name in _RECORDED and name not in seen:
            rules = [r for r in _RULES if r.record == name]
            for rule in rules:
                metrics |= _catalogue_metrics(metric_names(rule.expr), seen | {name})
    return metrics


def _datasources(model: dict[str, Any]) -> str:
    kinds = [t["query"] for t in model["templating"]["list"] if t["type"] == "datasource"]
    return ", ".join(_DATASOURCES[k] for k in kinds)


def files_table(settings: Settings) -> str:
    rows = ["| file | dashboard | what it answers | datasources |", "|---|---|---|---|"]
    for model in dashboard_models(settings):
        rows.append(
            f"| `{model['uid']}.json` | {model['title']} | {model['description']} "
            f"| {_datasources(model)} |"
        )
    return "\n".join(rows)


def _variable_metrics(model: dict[str, Any]) -> set[str]:
    """Series the dashboard's query variables read (``label_values(metric, label)``)."""
    names: set[str] = set()
    for variable in model["templating"]["list"]:
        query = variable.get("query")
        if variable["type"] == "query" and isinstance(query, str):
            for match in _LABEL_VALUES.finditer(query):
                names |= metric_names(match.group("selector"))
    return names


def metrics_sections(settings: Settings) -> str:
    by_dashboard: dict[str, set[str]] = {}
    for query in panel_queries(settings):
        by_dashboard.setdefault(query.dashboard_uid, set()).update(query.metrics)
    made_by = producers()
    sections = []
    for model in dashboard_models(settings):
        names = by_dashboard.get(model["uid"], set()) | _variable_metrics(model)
        recorded = sorted(n for n in names if source_of(n) == "recording")
        ours = sorted(_catalogue_metrics(names), key=lambda m: m.name)
        stack: dict[str, list[str]] = {}
        for name in sorted(names):
            source = source_of(name)
            if source in STACK_SOURCES:
                stack.setdefault(STACK_SOURCES[source], []).append(f"`{name}`")
        lines = [
            f"#### `{model['uid']}.json`: {model['title']}",
            "",
            "| metric your agents export | type | produced by |",
            "|---|---|---|",
            *(f"| `{m.name}` | {m.type.value} | {made_by[m.name]} |" for m in ours),
        ]
        if recorded:
            lines += [
                "",
                "Recording rules it reads (load `meshwatch-recording.yml`): "
                + ", ".join(f"`{r}`" for r in recorded)
                + ".",
            ]
        if stack:
            lines += [
                "",
                "From the monitoring stack: "
                + "; ".join(f"{who}: {', '.join(names)}" for who, names in stack.items())
                + ".",
            ]
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


#: What a user does with each component of the stack.
USES = {
    "grafana": "the dashboards; log in as `admin` with the password from `.env`",
    "prometheus": "queries, `/alerts` (rule states), `/targets` (what is scraped); Debian's Prometheus 2.42 (native mode) serves them under `/classic/`",
    "alertmanager": "notifications, grouping, silences; Debian's package (native mode) has no web UI: its API `/api/v2/alerts` and `amtool`",
    "tempo": "the trace API Grafana reads (search traces from Grafana)",
    "demo": "the simulated fleet's `/metrics`",
    "alert-sink": "the newest notifications delivered to receivers without a URL of their own",
}


def stack_urls_table(settings: Settings) -> str:
    stack = settings.stack
    rows = ["| component | URL | runs in | what it is for |", "|---|---|---|---|"]
    for name, endpoint in endpoints(stack).items():
        url = endpoint.host_url(stack) + STATUS_PAGES.get(name, "")
        modes = "compose and native" if name in NATIVE_COMPONENTS else "compose only"
        rows.append(f"| {name} | {url} | {modes} | {USES[name]} |")
    host = endpoints(stack)["tempo"].host_url(stack).rsplit(":", 1)[0]
    rows.append(
        f"| OTLP (Tempo) | {host}:{stack.ports.otlp_http} (HTTP), "
        f"{host.removeprefix('http://')}:{stack.ports.otlp_grpc} (gRPC) | compose only "
        "| where your agents send spans |"
    )
    return "\n".join(rows)


_KIND_NOTES = {"on_forecast": " (forecast)", "off_baseline": " (anomaly)"}


def runbook_index(settings: Settings) -> str:
    rows = ["| Alert | Default severity | Area |", "|---|---|---|"]
    for alert in ALERT_CATALOGUE:
        base, *higher = alert.tiers(settings.alerts)
        severity = base.severity + "".join(f", {t.severity} tier" for t in higher)
        area = alert.area + _KIND_NOTES.get(alert.fires, "")
        rows.append(f"| [{alert.name}]({alert.runbook}) | {severity} | {area} |")
    burn = SLO_ERROR_BUDGET_BURN
    pairs = ", ".join(f"{t.severity} from {t.level:g}x" for t in burn.tiers(settings.slos))
    rows.append(f"| [{burn.name}]({burn.runbook}) | {pairs} (burn-rate pairs) | {burn.area} |")
    return "\n".join(rows)


GENERATORS = {
    "dashboard-files": files_table,
    "dashboard-metrics": metrics_sections,
    "runbook-index": runbook_index,
    "stack-urls": stack_urls_table,
}


def render(name: str, settings: Settings | None = None) -> str:
    """The text of generated region ``name`` (ending in a newline, as the page holds it)."""
    return GENERATORS[name](settings or Settings()) + "\n"
