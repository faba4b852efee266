"""Metrics meshwatch reads but does not expose: the monitoring stack's own self-metrics.

Meta-monitoring alerts and the stack-health dashboard query series that
Prometheus (``up`` and its self-metrics), Alertmanager and Tempo export. They
are declared here once, as :class:`~meshwatch.instrumentation.catalogue.MetricDef`
values, so the rule and dashboard code never spells a name twice and a test can
prove that every metric a rule reads is either ours (the catalogue), theirs
(this module) or a recording rule.

The names were checked against what Prometheus 2.42 and Alertmanager 0.25
serve on ``/metrics``; the Tempo names are those of Tempo 2.x's distributor and
ingester (the ones the tempo-mixin reads).
"""

from __future__ import annotations

from meshwatch.instrumentation.catalogue import Catalogue, MetricDef, MetricType

_C, _G = MetricType.COUNTER, MetricType.GAUGE

# --- Synthetic per-target series Prometheus writes on every scrape -------------
UP = MetricDef(
    "up", _G, "1 if the last scrape of the target succeeded, else 0.", ("job", "instance")
)
SCRAPE_DURATION = MetricDef(
    "scrape_duration_seconds",
    _G,
    "How long the last scrape of the target took.",
    ("job", "instance"),
    unit="seconds",
)
SCRAPE_SAMPLES_SCRAPED = MetricDef(
    "scrape_samples_scraped",
    _G,
    "Samples the target exposed in the last scrape.",
    ("job", "instance"),
)

# --- Prometheus self-metrics -----------------------------------------------------
PROMETHEUS_RULE_EVALUATIONS = MetricDef(
    "prometheus_rule_evaluations_total",
    _C,
    "Rule evaluations, by rule group.",
    ("rule_group",),
)
PROMETHEUS_RULE_EVALUATION_FAILURES = MetricDef(
    "prometheus_rule_evaluation_failures_total",
    _C,
    "Rule evaluations that failed, by rule group.",
    ("rule_group",),
)
PROMETHEUS_RULE_GROUP_LAST_DURATION = MetricDef(
    "prometheus_rule_group_last_duration_seconds",
    _G,
    "How long the last evaluation of the rule group took.",
    ("rule_group",),
    unit="seconds",
)
PROMETHEUS_RULE_GROUP_INTERVAL = MetricDef(
    "prometheus_rule_group_interval_seconds",
    _G,
    "The rule group's evaluation interval.",
    ("rule_group",),
    unit="seconds",
)
PROMETHEUS_RULE_GROUP_ITERATIONS_MISSED = MetricDef(
    "prometheus_rule_group_iterations_missed_total",
    _C,
    "Rule group evaluations skipped because the previous one ran too long.",
    ("rule_group",),
)
PROMETHEUS_SD_DISCOVERED_TARGETS = MetricDef(
    "prometheus_sd_discovered_targets",
    _G,
    "Targets service discovery currently finds, by scrape config.",
    ("config", "name"),
)
PROMETHEUS_CONFIG_LAST_RELOAD_SUCCESSFUL = MetricDef(
    "prometheus_config_last_reload_successful",
    _G,
    "1 if the last configuration reload succeeded.",
)
PROMETHEUS_NOTIFICATIONS_DROPPED = MetricDef(
    "prometheus_notifications_dropped_total",
    _C,
    "Alerts Prometheus dropped instead of sending them to Alertmanager.",
)
PROMETHEUS_NOTIFICATIONS_ALERTMANAGERS_DISCOVERED = MetricDef(
    "prometheus_notifications_alertmanagers_discovered",
    _G,
    "Alertmanagers Prometheus currently sends alerts to.",
)
PROMETHEUS_TSDB_HEAD_SERIES = MetricDef(
    "prometheus_tsdb_head_series",
    _G,
    "Series in the TSDB head block (the active series count).",
)

# --- Alertmanager self-metrics ---------------------------------------------------
ALERTMANAGER_NOTIFICATIONS = MetricDef(
    "alertmanager_notifications_total",
    _C,
    "Notifications attempted, by integration (email, slack, webhook, ...).",
    ("integration",),
)
ALERTMANAGER_NOTIFICATIONS_FAILED = MetricDef(
    "alertmanager_notifications_failed_total",
    _C,
    "Notifications that failed, by integration.",
    ("integration",),
)
ALERTMANAGER_ALERTS = MetricDef(
    "alertmanager_alerts",
    _G,
    "Alerts Alertmanager holds, by state (active, suppressed).",
    ("state",),
)
ALERTMANAGER_CONFIG_LAST_RELOAD_SUCCESSFUL = MetricDef(
    "alertmanager_config_last_reload_successful",
    _G,
    "1 if the last configuration reload succeeded.",
)

# --- Tempo self-metrics ----------------------------------------------------------
TEMPO_DISTRIBUTOR_SPANS_RECEIVED = MetricDef(
    "tempo_distributor_spans_received_total",
    _C,
    "Spans the distributor received, by tenant.",
    ("tenant",),
)
TEMPO_DISTRIBUTOR_BYTES_RECEIVED = MetricDef(
    "tempo_distributor_bytes_received_total",
    _C,
    "Bytes of spans the distributor received, by tenant.",
    ("tenant",),
)
TEMPO_DISCARDED_SPANS = MetricDef(
    "tempo_discarded_spans_total",
    _C,
    "Spans Tempo discarded, by reason (rate limited, trace too large, ...).",
    ("reason", "tenant"),
)
TEMPO_INGESTER_LIVE_TRACES = MetricDef(
    "tempo_ingester_live_traces",
    _G,
    "Traces the ingester holds open in memory, by tenant.",
    ("tenant",),
)

# --- Prometheus' synthetic alert series ------------------------------------------------
ALERTS = MetricDef(
    "ALERTS",
    _G,
    "1 for every pending or firing alert instance, with the alert's labels.",
    ("alertname", "alertstate", "severity"),
)

# --- Tempo metrics generator (remote-written into Prometheus) --------------------
# Names and labels of Tempo 2.x's service-graph and span-metrics processors;
# buckets are Tempo's defaults (configurable there, so only indicative here).
TEMPO_SERVICE_GRAPH_REQUESTS = MetricDef(
    "traces_service_graph_request_total",
    _C,
    "Requests between two services, from paired client and server spans.",
    ("client", "server", "connection_type"),
)
TEMPO_SERVICE_GRAPH_REQUEST_FAILURES = MetricDef(
    "traces_service_graph_request_failed_total",
    _C,
    "Failed requests between two services.",
    ("client", "server", "connection_type"),
)
TEMPO_SERVICE_GRAPH_REQUEST_SERVER_SECONDS = MetricDef(
    "traces_service_graph_request_server_seconds",
    MetricType.HISTOGRAM,
    "Request time between two services as seen by the server.",
    ("client", "server", "connection_type"),
    unit="seconds",
    buckets=(0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8),
)
TEMPO_SPANMETRICS_CALLS = MetricDef(
    "traces_spanmetrics_calls_total",
    _C,
    "Spans ended, by service, span name, kind and status code.",
    ("service", "span_name", "span_kind", "status_code"),
)
TEMPO_SPANMETRICS_LATENCY = MetricDef(
    "traces_spanmetrics_latency",
    MetricType.HISTOGRAM,
    "Span duration in seconds, by service, span name, kind and status code.",
    ("service", "span_name", "span_kind", "status_code"),
    buckets=(0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096),
)

#: Every external metric, indexed by series name like the meshwatch catalogue.
EXTERNAL_METRICS = Catalogue(tuple(v for v in dict(globals()).values() if isinstance(v, MetricDef)))

__all__ = [
    "EXTERNAL_METRICS",
    *sorted(name for name, v in dict(globals()).items() if isinstance(v, MetricDef)),
]
