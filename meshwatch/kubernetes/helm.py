"""Helm values overlays for the two charts a team runs: kube-prometheus-stack and tempo-distributed.

An overlay holds only what meshwatch needs changed from the chart's defaults,
for the chart version in :data:`CHARTS` (its keys are checked against that
version's ``values.yaml`` by the test suite):

* kube-prometheus-stack: the operator selects our PrometheusRules, monitors
  and AlertmanagerConfig by ``kubernetes.operator_labels``; Prometheus stores
  exemplars and accepts remote writes (Tempo's metrics generator writes its
  span and service-graph metrics that way); the AlertmanagerConfig is not
  confined to alerts carrying its namespace; Grafana's sidecar loads our
  dashboards into their folder and our datasources. ``stack.remote_write``,
  ``stack.external_labels`` and ``stack.ha`` become the Prometheus spec's
  ``remoteWrite`` (credentials as references into
  ``kubernetes.remote_write_secret``), ``externalLabels``, and two replicas
  of Prometheus (told apart by ``stack.replica_label``, which the operator
  drops from alerts) and of Alertmanager (which the operator clusters).
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
from meshwatch.settings.scale_out import RemoteWrite
from meshwatch.stack.ports import CONTAINER_PORTS
from meshwatch.stack.prometheus_config import remote_write_secret
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


#: Our queue settings' names -> the operator's ``queueConfig`` keys.
_QUEUE_KEYS = {
    "capacity": "capacity",
    "min_shards": "minShards",
    "max_shards": "maxShards",
    "max_samples_per_send": "maxSamplesPerSend",
    "batch_send_deadline": "batchSendDeadline",
    "min_backoff": "minBackoff",
    "max_backoff": "maxBackoff",
}
HA_REPLICAS = 2


def username_key(index: int) -> str:
    """The key of the remote write Secret holding remote write ``index``'s basic-auth username.

    The operator reads the username from a Secret too (a ``SecretKeySelector``).
    """
    return f"meshwatch_remote_write_{index}_username"


def remote_write_spec(settings: Settings, index: int, write: RemoteWrite) -> dict[str, Any]:
    """One entry of the Prometheus spec's ``remoteWrite``, secrets as references."""
    secret = settings.kubernetes.remote_write_secret

    def ref(key: str) -> dict[str, str]:
        return {"name": secret, "key": key}

    spec: dict[str, Any] = {"url": write.url, "sendExemplars": write.send_exemplars}
    if write.name is not None:
        spec["name"] = write.name
    if write.headers:
        spec["headers"] = dict(write.headers)
    if write.remote_timeout is not None:
        spec["remoteTimeout"] = str(write.remote_timeout)
    if write.username is not None:
        spec["basicAuth"] = {
            "username": ref(username_key(index)),
            "password": ref(remote_write_secret(index, "password_file")),
        }
    if write.bearer_token_file is not None:
        spec["authorization"] = {
            "type": "Bearer",
            "credentials": ref(remote_write_secret(index, "bearer_token_file")),
        }
    queue = {_QUEUE_KEYS[k]: v for k, v in write.queue.config().items()}
    if queue:
        spec["queueConfig"] = queue
    return spec


def remote_write_secret_command(settings: Settings) -> str | None:
    """The kubectl command creating ``remote_write_secret``, or None when nothing needs it."""
    parts = []
    for i, write in enumerate(settings.stack.remote_write):
        if write.username is not None:
            parts.append(f"--from-literal={username_key(i)}={write.username}")
        for field_name, path in sorted(write.secret_files().items()):
            parts.append(f"--from-file={remote_write_secret(i, field_name)}={path}")
    if not parts:
        return None
    k8s = settings.kubernetes
    return (
        f"kubectl -n {k8s.namespace} create secret generic {k8s.remote_write_secret} "
        + " ".join(parts)
    )


def _prometheus_spec(settings: Settings) -> dict[str, Any]:
    k8s, stack = settings.kubernetes, settings.stack
    select = {"matchLabels": dict(k8s.operator_labels)}
    spec: dict[str, Any] = {
        "ruleSelector": select,
        "serviceMonitorSelector": select,
        "podMonitorSelector": select,
        "scrapeInterval": str(stack.scrape_interval),
        "evaluationInterval": str(stack.evaluation_interval),
        "enableFeatures": [EXEMPLAR_STORAGE],
        "enableRemoteWriteReceiver": True,
    }
    if stack.external_labels:
        spec["externalLabels"] = dict(stack.external_labels)
    if stack.remote_write:
        spec["remoteWrite"] = [
            remote_write_spec(settings, i, w) for i, w in enumerate(stack.remote_write)
        ]
    if stack.ha:
        spec["replicas"] = HA_REPLICAS
        spec["replicaExternalLabelName"] = stack.replica_label
    return spec


def kube_prometheus_stack_values(settings: Settings) -> dict[str, Any]:
    k8s = settings.kubernetes
    select = {"matchLabels": dict(k8s.operator_labels)}
    alertmanager_spec: dict[str, Any] = {
        "alertmanagerConfigSelector": select,
        "alertmanagerConfigMatcherStrategy": {"type": "None"},
    }
    if k8s.alertmanager_config == "Secret":
        alertmanager_spec["configSecret"] = CONFIG_SECRET
        alertmanager_spec["secrets"] = [k8s.receiver_secret]
    if settings.stack.ha:
        alertmanager_spec["replicas"] = HA_REPLICAS
    sidecar = k8s.grafana
    return {
        "prometheus": {"prometheusSpec": _prometheus_spec(settings)},
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


def _comment(chart: Chart, release: str, namespace: str, first: str | None = None) -> str:
    before = f"First create the remote write credentials:\n{first}\n" if first else ""
    return (
        f"Values overlay for the {chart.name} chart {chart.version} ({chart.app_version}).\n"
        f"{before}helm repo add {chart.repository_name} {chart.repository_url}\n"
        f"helm upgrade --install {release} {chart.repository_name}/{chart.name} "
        f"--version {chart.version} -n {namespace} --create-namespace -f {chart.values_path}"
    )


def render(settings: Settings) -> list[GeneratedFile]:
    k8s = settings.kubernetes
    return [
        yaml_file(
            KUBE_PROMETHEUS_STACK.values_path,
            kube_prometheus_stack_values(settings),
            comment=_comment(
                KUBE_PROMETHEUS_STACK,
                k8s.prometheus_release,
                k8s.namespace,
                remote_write_secret_command(settings),
            ),
        ),
        yaml_file(
            TEMPO_DISTRIBUTED.values_path,
            tempo_distributed_values(settings),
            comment=_comment(TEMPO_DISTRIBUTED, k8s.tempo_release, k8s.namespace),
        ),
    ]
