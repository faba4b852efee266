"""Stack health: is the monitoring itself working, end to end?

Questions it answers:

* Is every scrape target up (``TargetDown``), and how long do scrapes take
  compared with the scrape interval?
* Do Prometheus rule evaluations fail (``PrometheusRuleEvaluationFailures``),
  and does any rule group take longer than its interval?
* How many alerts fire, by severity?
* Does Alertmanager deliver notifications, and do any fail
  (``AlertmanagerNotificationsFailing``)?
* Does Tempo receive spans and bytes, and does it discard any?
* Does meshwatch's own pipeline lose data: spans dropped before export,
  events dropped for bad payloads, series folded into overflow by the
  cardinality guard, audit events not persisted?
* What did automatic remediation do about alerts, what did it refuse and why
  (``RemediationFailing``), and has its circuit breaker stopped it
  (``RemediationCircuitOpen``)?

Prometheus' own series (``up``, scrape and rule metrics, ``ALERTS``) exist
wherever Prometheus runs; the Alertmanager and Tempo panels need Prometheus
to scrape those components, as the generated stack does.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from meshwatch.alerts.catalogue import (
    ALERTMANAGER_NOTIFICATIONS_FAILING,
    REMEDIATION_CIRCUIT_OPEN,
    REMEDIATION_FAILING,
    RULE_EVALUATION_FAILURES,
    TARGET_DOWN,
)
from meshwatch.alerts.external_metrics import (
    ALERTMANAGER_NOTIFICATIONS,
    ALERTMANAGER_NOTIFICATIONS_FAILED,
    ALERTS,
    PROMETHEUS_RULE_EVALUATION_FAILURES,
    PROMETHEUS_RULE_GROUP_INTERVAL,
    PROMETHEUS_RULE_GROUP_LAST_DURATION,
    SCRAPE_DURATION,
    TEMPO_DISCARDED_SPANS,
    TEMPO_DISTRIBUTOR_BYTES_RECEIVED,
    TEMPO_DISTRIBUTOR_SPANS_RECEIVED,
    UP,
)
from meshwatch.dashboards.common import (
    BYTES_PER_SECOND,
    COUNT,
    OPS,
    RATE,
    RATIO,
    REQPS,
    SECONDS,
    Grid,
    alert_marks,
    dashboard,
    datasource_variable,
    label_variable,
    prom,
    runbooks,
    sel,
    stat,
    table,
    timeseries,
)
from meshwatch.dashboards.panels import ThresholdStep, ValueText
from meshwatch.instrumentation.catalogue import (
    AUDIT_EVENTS_DROPPED,
    AUDIT_QUEUE_DEPTH,
    EVENTS_DROPPED,
    REMEDIATION_REFUSALS,
    REMEDIATIONS,
    SERIES_OVERFLOW,
    SPANS_DROPPED,
    SPANS_EXPORTED,
)
from meshwatch.instrumentation.catalogue import REMEDIATION_CIRCUIT_OPEN as CIRCUIT_OPEN
from meshwatch.settings import Settings

SLUG = "stack-health"
JOB = 'job=~"$job"'
_UP_STEPS = [ThresholdStep("red"), ThresholdStep("green", 1)]
_UP_NAMES = [
    ValueText("0", "DOWN", color="red", index=0),
    ValueText("1", "UP", color="green", index=1),
]


def _scrape_panels(settings: Settings, grid: Grid) -> None:
    interval = settings.stack.scrape_interval.seconds
    grid.row("Scraping")
    grid.add(
        stat(
            "Targets down",
            f"Scrape targets whose last scrape failed. Red where {TARGET_DOWN.name} fires (after its 'for').",
            [prom(f"count({sel(UP.name, JOB)} == 0) or vector(0)", "down")],
            unit=COUNT,
            **alert_marks(settings, TARGET_DOWN),
        ),
        w=4,
        h=8,
    )
    grid.add(
        table(
            "Scrape targets",
            "Every target Prometheus scrapes, and whether its last scrape succeeded.",
            [prom(sel(UP.name, JOB), table=True)],
            unit=COUNT,
            steps=_UP_STEPS,
            mappings=_UP_NAMES,
            rename={"job": "Job", "instance": "Instance", "Value": "State"},
            hide=("Time", "__name__"),
            sort_by="State",
            sort_desc=False,
            cell="color-background",
            links=runbooks(settings, TARGET_DOWN),
        ),
        w=10,
        h=8,
    )
    grid.add(
        timeseries(
            "Scrape duration",
            "How long the slowest scrape of each job takes. Past the dashed line (the scrape "
            "interval) a scrape overlaps the next one.",
            [prom(f"max by (job) ({sel(SCRAPE_DURATION.name, JOB)})", "{{job}}")],
            unit=SECONDS,
            steps=[ThresholdStep("green"), ThresholdStep("orange", interval)],
        ),
        w=10,
        h=8,
    )


def _rule_and_alert_panels(settings: Settings, grid: Grid) -> None:
    failures = PROMETHEUS_RULE_EVALUATION_FAILURES.name
    last = PROMETHEUS_RULE_GROUP_LAST_DURATION.name
    interval = PROMETHEUS_RULE_GROUP_INTERVAL.name
    firing = sel(ALERTS.name, 'alertstate="firing"')
    grid.row("Rules, alerts and notifications")
    grid.add(
        timeseries(
            "Rule evaluation failures",
            "Failed rule evaluations per rule group in each interval. Any failure fires "
            f"{RULE_EVALUATION_FAILURES.name}: an alert that cannot evaluate cannot fire.",
            [prom(f"sum by (rule_group) (increase({failures}[{RATE}]))", "{{rule_group}}")],
            unit=COUNT,
            **alert_marks(settings, RULE_EVALUATION_FAILURES),
        ),
        w=6,
        h=8,
    )
    grid.add(
        timeseries(
            "Rule group evaluation time / interval",
            "How much of its interval each rule group's last evaluation used. At 100% "
            "evaluations start to be skipped.",
            [prom(f"max by (rule_group) ({last} / {interval})", "{{rule_group}}")],
            unit=RATIO,
            steps=[ThresholdStep("green"), ThresholdStep("orange", 0.8), ThresholdStep("red", 1)],
        ),
        w=6,
        h=8,
    )
    grid.add(
        timeseries(
            "Alerts firing by severity",
            "Alert instances firing now, by severity label (zero when none fires).",
            [
                prom(
                    f"sum by (severity) ({firing})"
                    ' or on () label_replace(vector(0), "severity", "none", "", "")',
                    "{{severity}}",
                )
            ],
            unit=COUNT,
            stack=True,
        ),
        w=6,
        h=8,
    )
    sent = ALERTMANAGER_NOTIFICATIONS.name
    failed = ALERTMANAGER_NOTIFICATIONS_FAILED.name
    grid.add(
        timeseries(
            "Notifications sent and failed",
            "Notifications Alertmanager attempted and those that failed, per integration. "
            f"Failures fire {ALERTMANAGER_NOTIFICATIONS_FAILING.name}: alerts are not reaching anyone.",
            [
                prom(f"sum by (integration) (rate({sent}[{RATE}]))", "sent {{integration}}"),
                prom(f"sum by (integration) (rate({failed}[{RATE}]))", "failed {{integration}}"),
            ],
            unit=REQPS,
            links=runbooks(settings, ALERTMANAGER_NOTIFICATIONS_FAILING),
        ),
        w=6,
        h=8,
    )


def _tempo_panels(grid: Grid) -> None:
    grid.row("Tracing backend (Tempo)")
    grid.add(
        timeseries(
            "Spans received",
            "Spans Tempo's distributor accepts per second.",
            [prom(f"sum(rate({TEMPO_DISTRIBUTOR_SPANS_RECEIVED.name}[{RATE}]))", "spans")],
            unit=REQPS,
        ),
        w=8,
        h=8,
    )
    grid.add(
        timeseries(
            "Bytes received",
            "Span bytes Tempo's distributor receives per second.",
            [prom(f"sum(rate({TEMPO_DISTRIBUTOR_BYTES_RECEIVED.name}[{RATE}]))", "bytes")],
            unit=BYTES_PER_SECOND,
        ),
        w=8,
        h=8,
    )
    grid.add(
        timeseries(
            "Spans discarded by Tempo",
            "Spans Tempo dropped per second, by reason (rate limit, trace too large, ...).",
            [
                prom(
                    f"sum by (reason) (rate({TEMPO_DISCARDED_SPANS.name}[{RATE}]))"
                    ' or on () label_replace(vector(0), "reason", "none", "", "")',
                    "{{reason}}",
                )
            ],
            unit=REQPS,
        ),
        w=8,
        h=8,
    )


def _pipeline_panels(grid: Grid) -> None:
    grid.row("meshwatch pipeline")
    grid.add(
        timeseries(
            "Spans exported and dropped",
            "Spans meshwatch handed to the exporter per second, and those dropped before export.",
            [
                prom(f"sum(rate({SPANS_EXPORTED.name}[{RATE}]))", "exported"),
                prom(f"sum by (reason) (rate({SPANS_DROPPED.name}[{RATE}]))", "dropped {{reason}}"),
            ],
            unit=OPS,
        ),
        w=8,
        h=8,
    )
    grid.add(
        timeseries(
            "Data lost at the source",
            "Events ignored for malformed payloads (by component and reason) and observations "
            "folded into an overflow series because a metric hit its series cap.",
            [
                prom(
                    f"sum by (component, reason) (rate({EVENTS_DROPPED.name}[{RATE}]))",
                    "dropped {{component}}/{{reason}}",
                ),
                prom(
                    f"sum by (metric) (rate({SERIES_OVERFLOW.name}[{RATE}]))",
                    "overflow {{metric}}",
                ),
            ],
            unit=OPS,
        ),
        w=8,
        h=8,
    )
    grid.add(
        timeseries(
            "Audit trail",
            "Events waiting for the audit writer, and events per second it could not persist.",
            [
                prom(f"sum({AUDIT_QUEUE_DEPTH.name})", "queued"),
                prom(
                    f"sum by (reason) (rate({AUDIT_EVENTS_DROPPED.name}[{RATE}]))",
                    "dropped/s {{reason}}",
                ),
            ],
            unit=COUNT,
        ),
        w=8,
        h=8,
    )


def _remediation_panels(settings: Settings, grid: Grid) -> None:
    grid.row("Remediation")
    grid.add(
        timeseries(
            "Remediation decisions",
            "What the remediation receiver decided per minute, by alert, action and result "
            "(acted, dry_run, failed, refused). Failed or refused decisions fire "
            f"{REMEDIATION_FAILING.name}: the alert they were for needs a person.",
            [
                prom(
                    f"sum by (alertname, action, result) (increase({REMEDIATIONS.name}[{RATE}]))",
                    "{{alertname}} {{action}} {{result}}",
                )
            ],
            unit=COUNT,
            **alert_marks(settings, REMEDIATION_FAILING),
        ),
        w=12,
        h=8,
    )
    grid.add(
        timeseries(
            "Refusals by reason",
            "Alerts the receiver did not act on per minute, by reason. Re-sends of a decided "
            "firing (duplicate) are normal: Alertmanager repeats notifications.",
            [
                prom(
                    f"sum by (reason) (increase({REMEDIATION_REFUSALS.name}[{RATE}]))",
                    "{{reason}}",
                )
            ],
            unit=COUNT,
        ),
        w=8,
        h=8,
    )
    grid.add(
        stat(
            "Circuit breaker",
            f"1 while the breaker is open and automation refuses to act; {REMEDIATION_CIRCUIT_OPEN.name} pages.",
            [prom(f"max({CIRCUIT_OPEN.name}) or vector(0)", "open")],
            unit=COUNT,
            **alert_marks(settings, REMEDIATION_CIRCUIT_OPEN),
        ),
        w=4,
        h=8,
    )


def build(settings: Settings) -> Dashboard:
    """The stack health dashboard."""
    grid = Grid()
    _scrape_panels(settings, grid)
    _rule_and_alert_panels(settings, grid)
    _tempo_panels(grid)
    _pipeline_panels(grid)
    _remediation_panels(settings, grid)
    return dashboard(
        settings,
        slug=SLUG,
        title="Stack health",
        description=(__doc__ or "").strip().splitlines()[0],
        tags=["stack", "meta-monitoring"],
        grid=grid,
        variables=[datasource_variable(), label_variable("job", "Job", UP.name, "job")],
    )
