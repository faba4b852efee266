"""Where each component listens: its name inside the compose network, and on the host.

Inside compose, components reach each other by service name on fixed container
ports (``alertmanager:9093``); the host reaches them on ``bind_address`` at the
ports from settings. Native mode runs on the host ports, so both modes print
the same URLs. Addresses users give for things on their own machine
(``127.0.0.1:9464`` agent targets, a webhook on ``localhost``) mean the
container itself once inside compose, so they are rewritten to Docker's
``host.docker.internal`` there (the services that need it map that name to the
host gateway).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from meshwatch.settings import StackSettings

DOCKER_HOST_ALIAS = "host.docker.internal"
ALERT_SINK = "alert-sink"
# The demo's compose service (and port name): AM reaches its remediation receiver there.
DEMO_SERVICE = "demo"
_LOOPBACK_NAMES = ("localhost",)

# Fixed ports inside the compose network (and the images' defaults). Every
# Prometheus and Alertmanager replica listens on its image's port.
CONTAINER_PORTS: dict[str, int] = {
    "prometheus": 9090,
    "prometheus-2": 9090,
    "alertmanager": 9093,
    "alertmanager-2": 9093,
    "grafana": 3000,
    "tempo": 3200,
    "otlp_grpc": 4317,
    "otlp_http": 4318,
    "demo": 8000,
    ALERT_SINK: 9099,
}


@dataclass(frozen=True)
class Endpoint:
    """One component's HTTP endpoint: compose service, ports and readiness path."""

    name: str
    service: str
    container_port: int
    host_port: int
    health_path: str

    def host_url(self, stack: StackSettings) -> str:
        """The base URL a user (or ``meshwatch status``) opens on the host."""
        return f"http://{url_host(connect_host(stack.bind_address))}:{self.host_port}"

    def health_url(self, stack: StackSettings) -> str:
        return self.host_url(stack) + self.health_path


def endpoints(stack: StackSettings) -> dict[str, Endpoint]:
    """Every component with an HTTP endpoint, in the order they are started and reported.

    The second Prometheus and Alertmanager are listed only with ``stack.ha``.
    """
    p = stack.ports
    host_ports: dict[str, tuple[int, str]] = {"prometheus": (p.prometheus, "/-/ready")}
    if stack.ha:
        host_ports["prometheus-2"] = (p.prometheus_replica, "/-/ready")
    host_ports["alertmanager"] = (p.alertmanager, "/-/ready")
    if stack.ha:
        host_ports["alertmanager-2"] = (p.alertmanager_replica, "/-/ready")
    host_ports |= {
        "tempo": (p.tempo, "/ready"),
        "grafana": (p.grafana, "/api/health"),
        "demo": (p.demo_metrics, "/metrics"),
        ALERT_SINK: (p.alert_sink, "/-/ready"),
    }
    return {
        name: Endpoint(name, name, CONTAINER_PORTS[name], port, path)
        for name, (port, path) in host_ports.items()
    }


def alert_sink_url(stack: StackSettings, receiver: str, *, in_compose: bool) -> str:
    """Where a receiver without a URL posts: the built-in alert sink's ``/<receiver>``.

    Inside compose that is the ``alert-sink`` service when the stack runs one,
    or else the sink port on the user's machine (``host.docker.internal``),
    where the user may run ``meshwatch alert-sink`` themselves. On the host
    (native mode) it is the sink's own address, like every other component's.
    """
    if in_compose and stack.runs_alert_sink:
        base = f"http://{ALERT_SINK}:{CONTAINER_PORTS[ALERT_SINK]}"
    elif in_compose:
        base = f"http://{DOCKER_HOST_ALIAS}:{stack.ports.alert_sink}"
    else:
        base = endpoints(stack)[ALERT_SINK].host_url(stack)
    return f"{base}/{receiver}"


def connect_host(bind_address: str) -> str:
    """The address to connect to something listening on ``bind_address``.

    A wildcard bind (``0.0.0.0``, ``::``) is reached on loopback; any other
    address is reached on itself.
    """
    ip = ipaddress.ip_address(bind_address)
    if ip.is_unspecified:
        return "::1" if ip.version == 6 else "127.0.0.1"
    return bind_address


def url_host(host: str) -> str:
    """``host`` as it goes into a URL or ``host:port`` (IPv6 literals in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def is_loopback(host: str) -> bool:
    """True for names and addresses that mean "this machine"."""
    host = host.strip("[]")
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def in_container_target(target: str) -> str:
    """A ``host:port`` on the user's machine as a container sees it."""
    host, _, port = target.rpartition(":")
    return f"{DOCKER_HOST_ALIAS}:{port}" if is_loopback(host) else target


def in_container_url(url: str) -> str:
    """A URL on the user's machine as a container sees it."""
    parts = urlsplit(url)
    if parts.hostname is None or not is_loopback(parts.hostname):
        return url
    netloc = DOCKER_HOST_ALIAS + (f":{parts.port}" if parts.port is not None else "")
    if parts.username is not None:
        netloc = parts.netloc.rpartition("@")[0] + "@" + netloc
    return urlunsplit(parts._replace(netloc=netloc))
