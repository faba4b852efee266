"""Helm values overlays for the two charts a team runs: kube-prometheus-stack and tempo-distributed.

An overlay holds only what meshwatch needs changed from the chart's defaults,
for the chart version in :data:`CHARTS` (its keys are checked against that
version's ``values.yaml`` by the test suite):

* kube-prometheus-stack: the operator selects our PrometheusRules, monitors
  and AlertmanagerConfig by ``kubernetes.operator_labels``; Prometheus stores
  exemplars and accepts remote writes (Tempo's metrics generator writes its
  span and service-graph metrics that way); the AlertmanagerConfig is not
  confined to alerts carrying its namespace; Grafana's sidecar loads our
  dashboards into their folder and our datasources.
* tempo-distributed: OTLP receivers on, and the metrics generator with the
  ``service-graphs`` and ``span-metrics`` processors remote-writing to the
  operator's Prometheus with exemplars, as the compose stack's Tempo does;
  ServiceMonitors for Tempo itself, selected like ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshwatch.generated import GeneratedFile
from meshwatch.kubernetes.alertmanager import CONFIG_SECRET
from meshwatch.kubernetes.objects import PROMETHEUS_SERVICE, service_host
from meshwatch.settings import Settings
from meshwatch.stack.ports import CONTAINER_PORTS
from meshwatch.stack.tempo_config import PROCESSORS, SPAN_METRIC_DIMENSIONS
from meshwatch.stack.yamlfile import yaml_file

HELM_DIR = "helm"


@dataclass(frozen=True)
class Chart:
    """A Helm chart an overlay was written for: repository, name and version."""

    repository_name: str
    repository_url: str
    name: str
    version: str
    app_version: str

    @property
    def values_path(self) -> str:
        return f"{HELM_DIR}/{self.name}.values.yaml"


KUBE_PROMETHEUS_STACK = Chart(
    "prometheus-community",
    "https://prometheus-community.github.io/helm-charts",
    "kube-prometheus-stack",
    "88.5.3",
    "prometheus-operator v0.93.1",
)
#: The Grafana chart kube-prometheus-stack 88.5.3 depends on (its ``grafana.*`` values).
GRAFANA = Chart(
    "grafana-community",
    "https://grafana-community.github.io/helm-charts",
    "grafana",
    "12.11.1",
    "Grafana 13.2.0",
)
TEMPO_DISTRIBUTED = Chart(
    "grafana-community",
    "https://grafana-community.github.io/helm-charts",
    "tempo-distributed",
    "3.3.0",
    "Tempo 3.0.3",
)
CHARTS = (KUBE_PROMETHEUS_STACK, TEMPO_DISTRIBUTED)
EXEMPLAR_STORAGE = "exemplar-storage"


def remote_write_url(settings: Settings) -> str:
    """The operator's Prometheus remote-write receiver, inside the cluster."""
    host = service_host(settings.kubernetes, PROMETHEUS_SERVICE)
    return f"http://{host}:{CONTAINER_PORTS['prometheus']}/api/v1/write"


def kube_prometheus_stack_values(settings: Settings) -> dict[str, Any]:
    k8s, stack = settings.kubernetes, settings.stack
    select = {"matchLabels": dict(k8s.operator_labels)}
    alertmanager_spec: dict[str, Any] = {
        "alertmanagerConfigSelector": select,
        "alertmanagerConfigMatcherStrategy": {"type": "None"},
    }
    if k8s.alertmanager_config == "Secret":
        alertmanager_spec["configSecret"] = CONFIG_SECRET
        alertmanager_spec["secrets"] = [k8s.receiver_secret]
    sidecar = k8s.grafana
    return {
        "prometheus": {
            "prometheusSpec": {
                "ruleSelector": select,
                "serviceMonitorSelector": select,
                "podMonitorSelector": select,
                "scrapeInterval": str(stack.scrape_interval),
                "evaluationInterval": str(stack.evaluation_interval),
                "enableFeatures": [EXEMPLAR_STORAGE],
                "enableRemoteWriteReceiver": True,
            }
        },
        "alertmanager": {"alertmanagerSpec": alertmanager_spec},
        "grafana": {
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": sidecar.dashboard_label,
                    "labelValue": sidecar.dashboard_label_value,
                    "folderAnnotation": sidecar.folder_annotation,
                    "provider": {"foldersFromFilesStructure": True},
                },
                "datasources": {
                    "enabled": True,
                    "label": sidecar.datasource_label,
                    "labelValue": sidecar.datasource_label_value,
                },
            }
        },
    }


def tempo_distributed_values(settings: Settings) -> dict[str, Any]:
    return {
        "traces": {"otlp": {"grpc": {"enabled": True}, "http": {"enabled": True}}},
        "metricsGenerator": {
            "enabled": True,
            "config": {
                "registry": {"external_labels": {"source": "tempo"}},
                "processor": {"span_metrics": {"dimensions": list(SPAN_METRIC_DIMENSIONS)}},
                "storage": {
                    "remote_write": [{"url": remote_write_url(settings), "send_exemplars": True}]
                },
            },
        },
        "overrides": {"defaults": {"metrics_generator": {"processors": list(PROCESSORS)}}},
        "metaMonitoring": {
            "serviceMonitor": {
                "enabled": True,
                "labels": dict(settings.kubernetes.operator_labels),
            }
        },
    }


def _comment(chart: Chart, release: str, namespace: str) -> str:
    return (
        f"Values overlay for the {chart.name} chart {chart.version} ({chart.app_version}).\n"
        f"helm repo add {chart.repository_name} {chart.repository_url}\n"
        f"helm upgrade --install {release} {chart.repository_name}/{chart.name} "
        f"--version {chart.version} -n {namespace} --create-namespace -f {chart.values_path}"
    )


def render(settings: Settings) -> list[GeneratedFile]:
    k8s = settings.kubernetes
    return [
        yaml_file(
            KUBE_PROMETHEUS_STACK.values_path,
            kube_prometheus_stack_values(settings),
            comment=_comment(KUBE_PROMETHEUS_STACK, k8s.prometheus_release, k8s.namespace),
        ),
        yaml_file(
            TEMPO_DISTRIBUTED.values_path,
            tempo_distributed_values(settings),
            comment=_comment(TEMPO_DISTRIBUTED, k8s.tempo_release, k8s.namespace),
        ),
    ]
