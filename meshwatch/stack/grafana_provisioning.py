"""``grafana/provisioning/``: datasources with fixed uids and the dashboard provider.

Fixed uids are what make the rest reproducible: dashboards, exemplar links and
Tempo's trace-to-metrics links refer to datasources by uid, never by name or
auto-assigned id. Prometheus is the default datasource, so the generated
dashboards' ``datasource`` template variable starts on it.
"""

from __future__ import annotations

from typing import Any

from meshwatch.alerts.external_metrics import TEMPO_SPANMETRICS_CALLS
from meshwatch.generated import GeneratedFile
from meshwatch.instrumentation.stores import EXEMPLAR_TRACE_ID_LABEL
from meshwatch.settings import Settings
from meshwatch.stack.ports import CONTAINER_PORTS
from meshwatch.stack.yamlfile import yaml_file

PROMETHEUS_UID = "meshwatch-prometheus"
TEMPO_UID = "meshwatch-tempo"
ALERTMANAGER_UID = "meshwatch-alertmanager"
DATASOURCES_PATH = "grafana/provisioning/datasources/meshwatch.yml"
DASHBOARDS_PROVIDER_PATH = "grafana/provisioning/dashboards/meshwatch.yml"
# Where the compose service mounts the generated grafana/dashboards/ directory.
DASHBOARDS_MOUNT = "/etc/meshwatch/dashboards"
# Exemplar label names that carry a trace id: OpenTelemetry-style and Tempo's own.
EXEMPLAR_TRACE_ID_LABELS = (EXEMPLAR_TRACE_ID_LABEL, "traceID")


def datasources(settings: Settings) -> dict[str, Any]:
    """The datasources provisioning document."""
    prometheus = {
        "name": "Prometheus",
        "type": "prometheus",
        "uid": PROMETHEUS_UID,
        "access": "proxy",
        "url": f"http://prometheus:{CONTAINER_PORTS['prometheus']}",
        "isDefault": True,
        "editable": False,
        "jsonData": {
            "httpMethod": "POST",
            "timeInterval": str(settings.stack.scrape_interval),
            "exemplarTraceIdDestinations": [
                {"name": label, "datasourceUid": TEMPO_UID} for label in EXEMPLAR_TRACE_ID_LABELS
            ],
        },
    }
    tempo = {
        "name": "Tempo",
        "type": "tempo",
        "uid": TEMPO_UID,
        "access": "proxy",
        "url": f"http://tempo:{CONTAINER_PORTS['tempo']}",
        "editable": False,
        "jsonData": {
            "tracesToMetrics": {
                "datasourceUid": PROMETHEUS_UID,
                "spanStartTimeShift": "-5m",
                "spanEndTimeShift": "5m",
                "tags": [{"key": "service.name", "value": "service"}],
                "queries": [
                    {
                        "name": "Span rate",
                        # $$ is a literal $ (Grafana expands $VARS in provisioning files).
                        "query": f"sum(rate({TEMPO_SPANMETRICS_CALLS.name}{{$$__tags}}[5m]))",
                    }
                ],
            },
            "serviceMap": {"datasourceUid": PROMETHEUS_UID},
            "nodeGraph": {"enabled": True},
            "search": {"hide": False},
            "streamingEnabled": {"search": True},
        },
    }
    alertmanager = {
        "name": "Alertmanager",
        "type": "alertmanager",
        "uid": ALERTMANAGER_UID,
        "access": "proxy",
        "url": f"http://alertmanager:{CONTAINER_PORTS['alertmanager']}",
        "editable": False,
        "jsonData": {"implementation": "prometheus", "handleGrafanaManagedAlerts": False},
    }
    return {
        "apiVersion": 1,
        "datasources": [prometheus, tempo, alertmanager],
    }


def dashboard_provider(settings: Settings) -> dict[str, Any]:
    """The dashboards provisioning document: one file provider for the generated dashboards."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "meshwatch",
                "orgId": 1,
                "folder": settings.dashboards.title_prefix,
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": DASHBOARDS_MOUNT, "foldersFromFilesStructure": False},
            }
        ],
    }


def render(settings: Settings) -> list[GeneratedFile]:
    return [
        yaml_file(DATASOURCES_PATH, datasources(settings)),
        yaml_file(DASHBOARDS_PROVIDER_PATH, dashboard_provider(settings)),
    ]
