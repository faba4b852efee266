"""``docker-compose.yml``: the four servers, the demo and the alert sink, from the same settings.

Every published port is bound to ``stack.bind_address`` (127.0.0.1 unless the
settings say otherwise), so ``make up`` on a laptop never exposes Grafana or
an unauthenticated Prometheus to the network. Data lives in named volumes;
configuration is mounted read-only from the generated files beside this one.

The demo workload listens on the compose network (``--addr 0.0.0.0`` inside
its container; the host sees it on ``bind_address`` like everything else),
exports spans to Tempo, and is scraped by Prometheus. Its image is built from the
meshwatch source tree this command runs from (``pip install`` of the
project, so the first build needs the Python package index), or from the
package index at this meshwatch version when no source tree is present.

The alert sink (``meshwatch alert-sink``) runs from that same image whenever a
receiver has no URL of its own; Alertmanager posts to it on the compose
network, and it keeps what it receives in a named volume (readable on the host
at ``/notifications`` of its published port).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import meshwatch
from meshwatch.demo import command_line as demo_command_line
from meshwatch.generated import GeneratedFile
from meshwatch.settings import Settings
from meshwatch.stack import (
    alert_sink_command_line,
    alertmanager_config,
    grafana_provisioning,
    prometheus_config,
    remediation_config,
    tempo_config,
)
from meshwatch.stack import secrets as stack_secrets
from meshwatch.stack.alert_sink import NOTIFICATIONS_FILE, READY_PATH
from meshwatch.stack.ports import (
    ALERT_SINK,
    CONTAINER_PORTS,
    DEMO_SERVICE,
    DOCKER_HOST_ALIAS,
    endpoints,
    url_host,
)
from meshwatch.stack.replicas import (
    GOSSIP_CONTAINER_PORT,
    AlertmanagerPeer,
    PrometheusReplica,
    alertmanager_peers,
    host_port,
    prometheus_replicas,
)
from meshwatch.stack.yamlfile import yaml_file

PATH = "docker-compose.yml"
ALERT_SINK_SERVICE = ALERT_SINK
# Where the alert sink's container keeps its notifications (a named volume).
ALERT_SINK_DATA = "/var/lib/meshwatch"
_HOST_GATEWAY = [f"{DOCKER_HOST_ALIAS}:host-gateway"]


def source_dir() -> Path | None:
    """The meshwatch source checkout this package runs from, if it runs from one."""
    root = Path(meshwatch.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    return root if 'name = "meshwatch"' in text else None


def demo_dockerfile(settings: Settings, source: Path | None) -> str:
    """The image of the demo and the alert sink: the python image with meshwatch installed.

    It runs as an unprivileged user, who owns :data:`ALERT_SINK_DATA` (a new
    named volume mounted there takes that ownership, so the sink can write).
    """
    base = settings.stack.images.python
    # A demo on the agent-hypervisor runtime needs that runtime in its image.
    extra = "[agent-hypervisor]" if settings.stack.demo.runtime == "agent-hypervisor" else ""
    if source is not None:
        install = [
            "COPY pyproject.toml README.md /src/",
            "COPY meshwatch /src/meshwatch",
            f"RUN pip install --no-cache-dir '/src{extra}' && rm -rf /src",
        ]
    else:
        install = [f"RUN pip install --no-cache-dir 'meshwatch{extra}=={meshwatch.__version__}'"]
    data = f"RUN mkdir -p {ALERT_SINK_DATA} && chown nobody:nogroup {ALERT_SINK_DATA}"
    return "\n".join(
        [f"FROM {base}", *install, data, "USER nobody", 'ENTRYPOINT ["meshwatch"]', ""]
    )


def _meshwatch_image(settings: Settings, source: Path | None) -> dict[str, Any]:
    """``build`` and ``image`` of a service running meshwatch (the demo, the alert sink)."""
    context = str(source) if source is not None else "."
    return {
        "build": {"context": context, "dockerfile_inline": demo_dockerfile(settings, source)},
        "image": f"{settings.stack.project}-meshwatch:{meshwatch.__version__}",
    }


def _published(settings: Settings, host_port: int, container_port: int) -> str:
    return f"{url_host(settings.stack.bind_address)}:{host_port}:{container_port}"


def _wget_check(port: int, path: str) -> dict[str, Any]:
    return {
        "test": ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{port}{path}"],
        "interval": "5s",
        "timeout": "3s",
        "retries": 30,
        "start_period": "10s",
    }


def _python_check(port: int, path: str, retries: int) -> dict[str, Any]:
    """A healthcheck for the meshwatch image, which has Python but no wget."""
    return {
        "test": [
            "CMD",
            "python",
            "-c",
            f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=3)",
        ],
        "interval": "5s",
        "timeout": "4s",
        "retries": retries,
        "start_period": "10s",
    }


# Tempo images after 2.7.2 are distroless: no shell, no wget, nothing to run a check with.
_TEMPO_WITH_WGET = (2, 7, 2)


def _tempo_has_wget(settings: Settings) -> bool:
    return settings.stack.images.version("tempo") <= _TEMPO_WITH_WGET


def _tempo_health(settings: Settings) -> dict[str, Any]:
    """Tempo's healthcheck where its image can run one; none on a distroless image.

    Without one, ``docker compose up --wait`` waits for the container to run,
    and ``meshwatch status`` probes ``/ready`` from the host.
    """
    if not _tempo_has_wget(settings):
        return {}
    # Tempo 2 reports ready only after its ingester has settled (about 15 s).
    return {
        "healthcheck": {**_wget_check(CONTAINER_PORTS["tempo"], "/ready"), "start_period": "30s"}
    }


def _tempo_condition(settings: Settings) -> dict[str, str]:
    """What a service waiting for Tempo waits for: healthy, or started when it has no check."""
    return {"condition": "service_healthy" if _tempo_has_wget(settings) else "service_started"}


def _healthy(*services: str) -> dict[str, dict[str, str]]:
    return {name: {"condition": "service_healthy"} for name in services}


def demo_command(settings: Settings) -> list[str]:
    """Arguments of ``meshwatch`` in the demo container: listen on the compose network."""
    demo = settings.stack.demo
    remediation = remediation_config.enabled(settings)
    return demo_command_line.argv(
        demo,
        metrics_port=CONTAINER_PORTS["demo"],
        addr="0.0.0.0",
        otlp_endpoint=demo.otlp_endpoint or f"http://tempo:{CONTAINER_PORTS['otlp_http']}",
        remediation_config=remediation_config.CONTAINER_PATH if remediation else None,
    )


def alert_sink_command() -> list[str]:
    """Arguments of ``meshwatch`` in the alert sink's container: listen on the compose network."""
    return alert_sink_command_line.argv(
        port=CONTAINER_PORTS[ALERT_SINK],
        addr="0.0.0.0",
        log=f"{ALERT_SINK_DATA}/{NOTIFICATIONS_FILE}",
    )


def _prometheus_service(
    settings: Settings, replica: PrometheusReplica, secrets: list[str]
) -> dict[str, Any]:
    stack = settings.stack
    config = Path(replica.config_path).name
    data = f"{replica.name}-data"
    service: dict[str, Any] = {
        "image": stack.images.prometheus,
        "command": [
            f"--config.file=/etc/prometheus/{config}",
            "--storage.tsdb.path=/prometheus",
            f"--web.external-url={endpoints(stack)[replica.name].host_url(stack)}",
            *prometheus_config.prometheus_flags(settings),
        ],
        "volumes": ["./prometheus:/etc/prometheus:ro", f"{data}:/prometheus"],
        "ports": [
            _published(
                settings, host_port(stack, replica.host_port_key), CONTAINER_PORTS[replica.name]
            )
        ],
        "extra_hosts": _HOST_GATEWAY,
        "healthcheck": _wget_check(CONTAINER_PORTS[replica.name], "/-/ready"),
        "restart": "unless-stopped",
    }
    if secrets:
        service["secrets"] = secrets
    return service


def _alertmanager_service(
    settings: Settings, peer: AlertmanagerPeer, secrets: list[str]
) -> dict[str, Any]:
    stack = settings.stack
    peers = alertmanager_peers(stack)
    if len(peers) == 1:
        # A single instance: no gossip port to open or protect.
        cluster = ["--cluster.listen-address="]
    else:
        cluster = [
            f"--cluster.listen-address=0.0.0.0:{GOSSIP_CONTAINER_PORT}",
            *(f"--cluster.peer={p.name}:{GOSSIP_CONTAINER_PORT}" for p in peers if p != peer),
        ]
    service: dict[str, Any] = {
        "image": stack.images.alertmanager,
        "command": [
            "--config.file=/etc/alertmanager/alertmanager.yml",
            "--storage.path=/alertmanager",
            *cluster,
            f"--web.external-url={endpoints(stack)[peer.name].host_url(stack)}",
        ],
        "volumes": ["./alertmanager:/etc/alertmanager:ro", f"{peer.name}-data:/alertmanager"],
        "ports": [
            _published(settings, host_port(stack, peer.host_port_key), CONTAINER_PORTS[peer.name])
        ],
        "extra_hosts": _HOST_GATEWAY,
        "healthcheck": _wget_check(CONTAINER_PORTS[peer.name], "/-/ready"),
        "restart": "unless-stopped",
    }
    if secrets:
        service["secrets"] = secrets
    if stack.runs_alert_sink:
        # Notifications sent before the sink listens would fail (and page).
        service["depends_on"] = _healthy(ALERT_SINK_SERVICE)
    return service


def server_services(settings: Settings) -> list[str]:
    """The compose services of the servers: every Prometheus and Alertmanager, Tempo, Grafana."""
    stack = settings.stack
    return [
        *(r.name for r in prometheus_replicas(stack)),
        *(p.name for p in alertmanager_peers(stack)),
        "tempo",
        "grafana",
    ]


def compose_config(settings: Settings, source: Path | None) -> dict[str, Any]:
    """The docker-compose.yml document."""
    stack, ports, images = settings.stack, settings.stack.ports, settings.stack.images
    am_secrets = alertmanager_config.secret_files(settings)
    prom_secrets = prometheus_config.secret_files(settings)
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    for replica in prometheus_replicas(stack):
        services[replica.name] = _prometheus_service(settings, replica, sorted(prom_secrets))
        volumes[f"{replica.name}-data"] = {}
    for peer in alertmanager_peers(stack):
        services[peer.name] = _alertmanager_service(settings, peer, sorted(am_secrets))
        volumes[f"{peer.name}-data"] = {}
    volumes |= {"tempo-data": {}, "grafana-data": {}}
    services |= {
        "tempo": {
            "image": images.tempo,
            "command": ["-config.file=/etc/tempo/tempo.yaml"],
            "volumes": ["./tempo:/etc/tempo:ro", f"tempo-data:{tempo_config.DATA_DIR}"],
            "ports": [
                _published(settings, ports.tempo, CONTAINER_PORTS["tempo"]),
                _published(settings, ports.otlp_grpc, CONTAINER_PORTS["otlp_grpc"]),
                _published(settings, ports.otlp_http, CONTAINER_PORTS["otlp_http"]),
            ],
            **_tempo_health(settings),
            "depends_on": _healthy("prometheus"),
            "restart": "unless-stopped",
        },
        "grafana": {
            "image": images.grafana,
            "env_file": [stack_secrets.PATH],
            "volumes": [
                "./grafana/provisioning:/etc/grafana/provisioning:ro",
                f"./grafana/dashboards:{grafana_provisioning.DASHBOARDS_MOUNT}:ro",
                "grafana-data:/var/lib/grafana",
            ],
            "ports": [_published(settings, ports.grafana, CONTAINER_PORTS["grafana"])],
            "healthcheck": _wget_check(CONTAINER_PORTS["grafana"], "/api/health"),
            "depends_on": {
                **_healthy("prometheus", "alertmanager"),
                "tempo": _tempo_condition(settings),
            },
            "restart": "unless-stopped",
        },
    }
    if stack.demo.enabled:
        services[DEMO_SERVICE] = {
            **_meshwatch_image(settings, source),
            "command": demo_command(settings),
            "ports": [_published(settings, ports.demo_metrics, CONTAINER_PORTS["demo"])],
            "healthcheck": _python_check(CONTAINER_PORTS["demo"], "/metrics", retries=12),
            "depends_on": {**_healthy("prometheus"), "tempo": _tempo_condition(settings)},
            "restart": "unless-stopped",
        }
        if remediation_config.enabled(settings):
            services[DEMO_SERVICE]["volumes"] = [
                f"./{remediation_config.PATH}:{remediation_config.CONTAINER_PATH}:ro"
            ]
            services[DEMO_SERVICE]["secrets"] = [remediation_config.TOKEN_SECRET]
    if stack.runs_alert_sink:
        services[ALERT_SINK_SERVICE] = {
            **_meshwatch_image(settings, source),
            "command": alert_sink_command(),
            "volumes": [f"alert-sink-data:{ALERT_SINK_DATA}"],
            "ports": [_published(settings, ports.alert_sink, CONTAINER_PORTS[ALERT_SINK])],
            "healthcheck": _python_check(CONTAINER_PORTS[ALERT_SINK], READY_PATH, retries=12),
            "restart": "unless-stopped",
        }
        volumes["alert-sink-data"] = {}
    doc: dict[str, Any] = {"name": stack.project, "services": services, "volumes": volumes}
    secret_files = {**am_secrets, **prom_secrets}
    if secret_files:
        doc["secrets"] = {name: {"file": path} for name, path in sorted(secret_files.items())}
    return doc


def render(settings: Settings) -> list[GeneratedFile]:
    return [yaml_file(PATH, compose_config(settings, source_dir()))]
