"""Stack settings: where the generated Prometheus, Alertmanager, Tempo and Grafana listen,
what they scrape, where alerts go, and which images run.

Secrets never live here: receivers name a file or an environment variable that
holds the secret, and the generated YAML refers to it the same way.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from meshwatch.settings.loader import Duration, check

ReceiverKind = Literal["webhook", "slack", "email", "pagerduty"]


def _check_port(name: str, port: int) -> None:
    check(1 <= port <= 65535, name, f"must be a TCP port (1-65535), got {port}")


@dataclass(frozen=True)
class Ports:
    """Host ports (published on ``bind_address``) of each component."""

    prometheus: int = 9090
    alertmanager: int = 9093
    grafana: int = 3000
    tempo: int = 3200
    otlp_grpc: int = 4317
    otlp_http: int = 4318
    demo_metrics: int = 8000

    def __post_init__(self) -> None:
        seen: dict[int, str] = {}
        for name, port in vars(self).items():
            _check_port(name, port)
            check(port not in seen, name, f"port {port} is already used by {seen.get(port)}")
            seen[port] = name


@dataclass(frozen=True)
class Receiver:
    """Where one severity's notifications go.

    ``webhook`` needs ``url``; ``slack`` needs ``url_file`` (the webhook URL is a
    secret) and ``channel``; ``email`` needs ``to``, ``from_``, ``smarthost`` and
    optionally ``password_file``; ``pagerduty`` needs ``routing_key_file``.
    """

    kind: ReceiverKind = "webhook"
    url: str | None = None
    url_file: str | None = None
    channel: str | None = None
    to: str | None = None
    from_: str | None = field(default=None, metadata={"key": "from"})
    smarthost: str | None = None
    username: str | None = None
    password_file: str | None = None
    routing_key_file: str | None = None
    send_resolved: bool = True

    def __post_init__(self) -> None:
        needs: dict[str, tuple[str, ...]] = {
            "webhook": ("url",),
            "slack": ("url_file", "channel"),
            "email": ("to", "from_", "smarthost"),
            "pagerduty": ("routing_key_file",),
        }
        for attr in needs[self.kind]:
            key = "from" if attr == "from_" else attr
            check(getattr(self, attr) is not None, key, f"is required for a {self.kind} receiver")


def _webhook(path: str):
    return field(default_factory=lambda: Receiver(url=f"http://127.0.0.1:9099/{path}"))


@dataclass(frozen=True)
class Receivers:
    """One receiver per severity; ``info`` alerts go to ``warning``'s receiver."""

    critical: Receiver = _webhook("critical")
    warning: Receiver = _webhook("warning")
    group_wait: Duration = Duration("30s")
    group_interval: Duration = Duration("5m")
    repeat_interval: Duration = Duration("4h")


@dataclass(frozen=True)
class Images:
    """Pinned container images of the compose stack."""

    prometheus: str = "prom/prometheus:v2.54.1"
    alertmanager: str = "prom/alertmanager:v0.27.0"
    tempo: str = "grafana/tempo:2.6.1"
    grafana: str = "grafana/grafana:11.3.0"
    python: str = "python:3.11-slim"

    def __post_init__(self) -> None:
        for name, image in vars(self).items():
            tag = image.rpartition(":")[2]
            check(
                ":" in image and tag not in ("", "latest"),
                name,
                f"must be pinned to a version tag, got {image!r}",
            )


@dataclass(frozen=True)
class DemoSettings:
    """The simulated multi-agent workload that `make up` runs beside the stack."""

    enabled: bool = True
    seed: int = 42
    scenario: Literal["steady", "incident"] = "steady"


@dataclass(frozen=True)
class StackSettings:
    """The generated deployment."""

    bind_address: str = "127.0.0.1"
    ports: Ports = field(default_factory=Ports)
    scrape_interval: Duration = Duration("15s")
    evaluation_interval: Duration = Duration("15s")
    agent_targets: tuple[str, ...] = ()
    workdir: str = ".meshwatch"
    receivers: Receivers = field(default_factory=Receivers)
    grafana_admin_password: str | None = None
    images: Images = field(default_factory=Images)
    demo: DemoSettings = field(default_factory=DemoSettings)

    def __post_init__(self) -> None:
        try:
            ipaddress.ip_address(self.bind_address)
        except ValueError:
            raise ValueError(
                f"bind_address: must be an IP address, got {self.bind_address!r}"
            ) from None
        for i, target in enumerate(self.agent_targets):
            host, sep, port = target.rpartition(":")
            check(
                bool(sep and host and port.isdigit() and 1 <= int(port) <= 65535),
                f"agent_targets[{i}]",
                f"must be host:port, got {target!r}",
            )
        if self.grafana_admin_password is not None:
            check(
                len(self.grafana_admin_password) >= 12
                and self.grafana_admin_password.lower() not in ("admin", "password"),
                "grafana_admin_password",
                "must be at least 12 characters and not a default; omit it to generate one",
            )
