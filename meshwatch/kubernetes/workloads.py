"""What Prometheus scrapes in the cluster, and the two meshwatch workloads that run there.

* The agents: a ``PodMonitor`` (or ``ServiceMonitor``) selecting your agent
  pods by ``kubernetes.agents.selector``, on the named port and path.
* The demo (when ``stack.demo.enabled``): a Deployment running
  ``meshwatch demo``, its Service, and a ServiceMonitor for it. It exports
  spans to tempo-distributed's distributor over OTLP/HTTP.
* The alert sink (when a receiver has no URL and ``stack.alert_sink`` is on):
  a Deployment running ``meshwatch alert-sink`` and its Service, which the
  Alertmanager's URL-less webhooks post to, as in compose.

Scraped series keep the job names of the compose stack (``agents``,
``meshwatch-demo``) through a relabeling, so a query written against one
deployment reads the same in the other.
"""

from __future__ import annotations

from typing import Any

from meshwatch.demo import command_line as demo_command_line
from meshwatch.generated import GeneratedFile
from meshwatch.kubernetes.objects import (
    MONITORING_V1,
    NAME_LABEL,
    manifest,
    meshwatch_image,
    metadata,
    service_host,
    tempo_fullname,
)
from meshwatch.settings import Settings
from meshwatch.stack.alert_sink import READY_PATH
from meshwatch.stack.compose import ALERT_SINK_DATA, alert_sink_command
from meshwatch.stack.ports import ALERT_SINK, CONTAINER_PORTS
from meshwatch.stack.prometheus_config import JOB_AGENTS, JOB_DEMO

AGENTS = "meshwatch-agents"
DEMO = "meshwatch-demo"
SINK = "meshwatch-alert-sink"
METRICS_PORT = "metrics"
HTTP_PORT = "http"
METRICS_PATH = "/metrics"
#: The meshwatch image's unprivileged user (``nobody``), numeric so runAsNonRoot can be verified.
NOBODY = 65534
OTLP_HTTP_PORT = CONTAINER_PORTS["otlp_http"]


def _job(name: str) -> list[dict[str, Any]]:
    """Relabeling that sets ``job`` to the compose stack's job name."""
    return [{"action": "replace", "targetLabel": "job", "replacement": name}]


def agent_monitor(settings: Settings) -> dict[str, Any]:
    k8s, agents = settings.kubernetes, settings.kubernetes.agents
    endpoint: dict[str, Any] = {
        "port": agents.port,
        "path": agents.path,
        "interval": str(agents.interval or settings.stack.scrape_interval),
        "relabelings": _job(JOB_AGENTS),
    }
    spec: dict[str, Any] = {"selector": {"matchLabels": dict(agents.selector)}}
    if agents.namespaces:
        spec["namespaceSelector"] = {"matchNames": list(agents.namespaces)}
    if agents.kind == "PodMonitor":
        spec["podMetricsEndpoints"] = [endpoint]
    else:
        spec["endpoints"] = [endpoint]
    return {
        "apiVersion": MONITORING_V1,
        "kind": agents.kind,
        "metadata": metadata(k8s, AGENTS, labels=k8s.operator_labels),
        "spec": spec,
    }


def _container(
    settings: Settings, name: str, args: list[str], port: int, probe_path: str
) -> dict[str, Any]:
    port_name = METRICS_PORT if name == DEMO else HTTP_PORT
    return {
        "name": name,
        "image": meshwatch_image(settings),
        "args": args,
        "ports": [{"name": port_name, "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": probe_path, "port": port_name},
            "periodSeconds": 10,
        },
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"memory": "256Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def _deployment(
    settings: Settings, name: str, container: dict[str, Any], volumes: list[dict[str, Any]]
) -> dict[str, Any]:
    selector = {NAME_LABEL: name}
    pod: dict[str, Any] = {
        "containers": [container],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NOBODY,
            "runAsGroup": NOBODY,
            "fsGroup": NOBODY,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if volumes:
        pod["volumes"] = volumes
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(settings.kubernetes, name, labels=selector),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": {**settings.kubernetes.common_labels, **selector}},
                "spec": pod,
            },
        },
    }


def _service(settings: Settings, name: str, port_name: str, port: int) -> dict[str, Any]:
    selector = {NAME_LABEL: name}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(settings.kubernetes, name, labels=selector),
        "spec": {
            "selector": selector,
            "ports": [
                {"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"}
            ],
        },
    }


def demo_otlp_endpoint(settings: Settings) -> str:
    """Where the demo sends spans: the setting, else tempo-distributed's distributor."""
    configured = settings.stack.demo.otlp_endpoint
    host = service_host(settings.kubernetes, f"{tempo_fullname(settings.kubernetes)}-distributor")
    return configured or f"http://{host}:{OTLP_HTTP_PORT}"


def demo_objects(settings: Settings) -> list[GeneratedFile]:
    k8s, port = settings.kubernetes, CONTAINER_PORTS["demo"]
    args = demo_command_line.argv(
        settings.stack.demo,
        metrics_port=port,
        addr="0.0.0.0",
        otlp_endpoint=demo_otlp_endpoint(settings),
    )
    monitor = {
        "apiVersion": MONITORING_V1,
        "kind": "ServiceMonitor",
        "metadata": metadata(k8s, DEMO, labels=k8s.operator_labels),
        "spec": {
            "selector": {"matchLabels": {NAME_LABEL: DEMO}},
            "endpoints": [
                {
                    "port": METRICS_PORT,
                    "path": METRICS_PATH,
                    "interval": str(settings.stack.scrape_interval),
                    "relabelings": _job(JOB_DEMO),
                }
            ],
        },
    }
    container = _container(settings, DEMO, args, port, METRICS_PATH)
    return [
        manifest("demo-deployment", _deployment(settings, DEMO, container, [])),
        manifest("demo-service", _service(settings, DEMO, METRICS_PORT, port)),
        manifest("servicemonitor-demo", monitor),
    ]


def sink_base_url(settings: Settings) -> str:
    """The alert sink Service's base URL, which URL-less webhook receivers post under."""
    return f"http://{service_host(settings.kubernetes, SINK)}:{CONTAINER_PORTS[ALERT_SINK]}"


def sink_objects(settings: Settings) -> list[GeneratedFile]:
    port = CONTAINER_PORTS[ALERT_SINK]
    container = _container(settings, SINK, alert_sink_command(), port, READY_PATH)
    container["volumeMounts"] = [{"name": "data", "mountPath": ALERT_SINK_DATA}]
    volumes = [{"name": "data", "emptyDir": {}}]
    return [
        manifest("alert-sink-deployment", _deployment(settings, SINK, container, volumes)),
        manifest("alert-sink-service", _service(settings, SINK, HTTP_PORT, port)),
    ]


def render(settings: Settings) -> list[GeneratedFile]:
    files = [manifest(f"{settings.kubernetes.agents.kind.lower()}-agents", agent_monitor(settings))]
    if settings.stack.demo.enabled:
        files += demo_objects(settings)
    if settings.stack.runs_alert_sink:
        files += sink_objects(settings)
    return files
