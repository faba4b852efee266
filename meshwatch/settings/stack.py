"""Stack settings: where the generated Prometheus, Alertmanager, Tempo and Grafana listen,
what they scrape, where alerts go, which images run, and where ``meshwatch up`` keeps
its working files.

Secrets never live here: receivers name a file that holds the secret, and the
generated Alertmanager YAML refers to that file (``*_file`` fields), so no
secret is ever written into generated configuration.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Literal

from meshwatch.settings.images import ImageRef
from meshwatch.settings.loader import Duration, check
from meshwatch.settings.scale_out import (
    RemoteWrite,
    check_external_labels,
    check_remote_writes,
    check_secret_path,
)

ReceiverKind = Literal["webhook", "slack", "email", "pagerduty"]

# docker compose project names: lowercase letters, digits, '-' and '_', starting alphanumeric.
_PROJECT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def _check_port(name: str, port: int) -> None:
    check(1 <= port <= 65535, name, f"must be a TCP port (1-65535), got {port}")


def port_argument(text: str) -> int:
    """A ``--port``-style flag's value: a TCP port, or 0 for any free one.

    The argparse type of every meshwatch command line that takes a port (the
    demo's, the alert sink's), so a bad one is argparse's one-line error and
    exit 2, never an unhandled error from ``bind()``.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65_535:
        raise argparse.ArgumentTypeError(f"must be 0 to 65535, got {text}")
    return value


@dataclass(frozen=True)
class Ports:
    """Host ports (published on ``bind_address``) of each component.

    Native mode listens on the same ports, so ``meshwatch status`` and the URLs
    it prints are the same in both modes. The ``*_replica`` ports are the
    second Prometheus and Alertmanager of ``ha: true``; the ``*_gossip`` ports
    are where the two Alertmanagers gossip (TCP and UDP; on the host in native
    mode only, inside the compose network they use the image's 9094).
    """

    prometheus: int = 9090
    prometheus_replica: int = 9091
    alertmanager: int = 9093
    alertmanager_replica: int = 9095
    alertmanager_gossip: int = 9094
    alertmanager_replica_gossip: int = 9096
    grafana: int = 3000
    tempo: int = 3200
    otlp_grpc: int = 4317
    otlp_http: int = 4318
    demo_metrics: int = 8000
    alert_sink: int = 9099

    def __post_init__(self) -> None:
        seen: dict[int, str] = {}
        for name, port in vars(self).items():
            _check_port(name, port)
            check(port not in seen, name, f"port {port} is already used by {seen.get(port)}")
            seen[port] = name


# Which receiver fields hold a secret, and the Alertmanager key that reads it from a file.
SECRET_FILE_FIELDS: dict[str, str] = {
    "url_file": "url",
    "password_file": "password",
    "routing_key_file": "routing_key",
}


@dataclass(frozen=True)
class Receiver:
    """Where one severity's notifications go.

    ``webhook`` takes ``url`` (or ``url_file`` when the URL carries a token;
    Alertmanager reads webhook ``url_file`` from version 0.26 on), and without
    either posts to the built-in alert sink (:attr:`posts_to_sink`); ``slack``
    needs ``url_file`` (the webhook URL is a secret) and ``channel``; ``email``
    needs ``to``, ``from``, ``smarthost`` and optionally ``username`` with
    ``password_file``; ``pagerduty`` needs ``routing_key_file``.

    Secret files are absolute paths: the settings file may be read from any
    directory, and a relative path would silently point somewhere else.
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
            "webhook": (),
            "slack": ("url_file", "channel"),
            "email": ("to", "from_", "smarthost"),
            "pagerduty": ("routing_key_file",),
        }
        for attr in needs[self.kind]:
            key = "from" if attr == "from_" else attr
            check(getattr(self, attr) is not None, key, f"is required for a {self.kind} receiver")
        if self.kind == "webhook":
            check(
                self.url is None or self.url_file is None,
                "url",
                "a webhook receiver takes one of url or url_file, not both",
            )
        else:
            check(self.url is None, "url", f"is a secret for a {self.kind} receiver: use url_file")
        if self.url is not None:
            check(
                self.url.startswith(("http://", "https://")),
                "url",
                f"must be an http(s) URL, got {self.url!r}",
            )
        for attr in SECRET_FILE_FIELDS:
            check_secret_path(attr, getattr(self, attr))
        if self.kind == "email" and self.password_file is not None:
            check(self.username is not None, "username", "is required with password_file")

    @property
    def posts_to_sink(self) -> bool:
        """True for a webhook without a URL: it posts to the built-in alert sink.

        The sink's address depends on where Alertmanager runs (the compose
        service, or loopback in native mode), so the stack fills it in.
        """
        return self.kind == "webhook" and self.url is None and self.url_file is None

    def secret_files(self) -> dict[str, str]:
        """The secret files this receiver reads, by settings field name."""
        return {
            attr: getattr(self, attr)
            for attr in SECRET_FILE_FIELDS
            if getattr(self, attr) is not None
        }


@dataclass(frozen=True)
class Receivers:
    """One receiver per severity; ``info`` alerts go to ``warning``'s receiver.

    The defaults are webhooks without a URL (they post to the built-in alert
    sink) rather than webhooks with one, so that switching ``kind`` in
    meshwatch.yaml (which keeps the other defaults of the section) does not
    drag a webhook URL into a Slack receiver.
    """

    critical: Receiver = field(default_factory=Receiver)
    warning: Receiver = field(default_factory=Receiver)
    group_wait: Duration = Duration("30s")
    group_interval: Duration = Duration("5m")
    repeat_interval: Duration = Duration("4h")

    def by_severity(self) -> dict[str, Receiver]:
        """``{"critical": ..., "warning": ...}`` as configured (URL-less webhooks post to the sink)."""
        return {"critical": self.critical, "warning": self.warning}


# The majors each server's generated config is written for: the current one
# (the default) and the previous one, still selectable by setting its image.
SUPPORTED_MAJORS: dict[str, tuple[int, ...]] = {
    "prometheus": (2, 3),
    "tempo": (2, 3),
    "grafana": (11, 12, 13),
    "alertmanager": (0,),
}
# Alertmanager reads webhook ``url_file`` from 0.26 on.
MIN_ALERTMANAGER = (0, 26, 0)


@dataclass(frozen=True)
class Images:
    """Pinned container images of the compose stack: exact versions, and digests.

    The defaults are current releases, each pinned to its version tag and to
    the multi-platform index digest that public deployments of that tag
    record (see docs/stack.md for how each was established):

    * Prometheus v3.14.0. The generated prometheus.yml asks it for the 2.x
      behaviour where 3.0 changed a default that matters here: legacy metric
      and label names (``metric_name_validation_scheme: legacy``, so the
      compose stack accepts exactly what Debian's 2.42 accepts in native
      mode), and a text-format fallback for agent targets that send no
      ``Content-Type`` (3.x refuses such a scrape). Native mode drops those
      keys, so the same settings run Debian's Prometheus 2.42.
    * Alertmanager v0.34.1 reads every ``*_file`` secret field we generate.
    * Tempo 3.0.3: the config has no ``ingester`` or ``compactor`` block
      (removed in 3.0, and 3.x rejects unknown keys); retention is the
      backend worker's. Its image is distroless, with no shell or HTTP client,
      so compose gives it no in-container healthcheck (``meshwatch status``
      probes ``/ready`` from the host).
    * Grafana 13.1.3 (Alpine-based: busybox ``wget`` for the healthcheck).

    The previous majors stay selectable, each getting a config it accepts:
    ``prom/prometheus:v2.55.1`` (the last 2.x), ``grafana/tempo:2.7.2`` (the
    last Alpine-based Tempo; 2.8.0 and 2.8.1 shipped a monolithic metrics
    generator that never joined its ring, grafana/tempo#5423), and
    ``grafana/grafana:12.4.0`` or ``11.6.0``.
    """

    prometheus: str = (
        "prom/prometheus:v3.14.0"
        "@sha256:5ce7540c3c00ef4ab0c9d2c995c6a5b9c421f44b4a115d97a2c7af3b1c21cbb0"
    )
    alertmanager: str = (
        "prom/alertmanager:v0.34.1"
        "@sha256:e9733bafb1bdef9b00e25a21f8f99dc26a22224bf16641ad754d1649f4c3357a"
    )
    tempo: str = (
        "grafana/tempo:3.0.3"
        "@sha256:0296560ac66f8a3600d7fb3014a52c189d4d9c3549ad6ff441bf2409855d68d5"
    )
    grafana: str = (
        "grafana/grafana:13.1.3"
        "@sha256:ab5cb380e3ff3172d6c8bd2e7cfd31cce977d2881b260e1f5bc089bf0b759b43"
    )
    python: str = "python:3.11-slim"

    def __post_init__(self) -> None:
        for name, image in vars(self).items():
            try:
                ref = ImageRef.parse(image)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
            if name not in SUPPORTED_MAJORS:
                continue
            version = ref.version
            majors = SUPPORTED_MAJORS[name]
            check(
                version is not None and version[0] in majors,
                name,
                f"must be a {name} release of major version "
                f"{' or '.join(str(m) for m in majors)} (tag such as "
                f"{ImageRef.parse(getattr(Images, name)).tag}), got {image!r}",
            )
            if name == "alertmanager":
                check(
                    version is not None and version >= MIN_ALERTMANAGER,
                    name,
                    f"must be Alertmanager 0.26 or later (webhook url_file), got {image!r}",
                )

    def version(self, name: str) -> tuple[int, int, int]:
        """The pinned version of server ``name`` (validated when the settings were built)."""
        version = ImageRef.parse(getattr(self, name)).version
        assert version is not None, name
        return version


# What runs the demo fleet: its own simulation, or the real agent-hypervisor runtime.
RUNTIMES = ("simulated", "agent-hypervisor")


@dataclass(frozen=True)
class DemoSettings:
    """The simulated multi-agent workload that `make up` runs beside the stack.

    ``otlp_endpoint`` is where the demo exports spans: by default Tempo in
    compose mode and nowhere in native mode (Tempo needs Docker); set it to
    send spans to any OTLP/HTTP receiver. ``duration`` stops the demo after
    that long (by default it runs until ``meshwatch down``);
    ``incident_duration`` ends the incident scenario after that long while the
    demo keeps running healthy, so its alerts can be seen to resolve.
    ``runtime: agent-hypervisor`` runs the fleet on the real agent-hypervisor
    runtime (``pip install 'meshwatch[agent-hypervisor]'``).
    """

    enabled: bool = True
    seed: int = 42
    scenario: Literal["steady", "incident"] = "steady"
    runtime: Literal["simulated", "agent-hypervisor"] = "simulated"
    otlp_endpoint: str | None = None
    duration: Duration | None = None
    incident_duration: Duration | None = None

    def __post_init__(self) -> None:
        if self.otlp_endpoint is not None:
            check(
                self.otlp_endpoint.startswith(("http://", "https://")),
                "otlp_endpoint",
                f"must be an http(s) URL of an OTLP/HTTP receiver, got {self.otlp_endpoint!r}",
            )
        for name in ("duration", "incident_duration"):
            value = getattr(self, name)
            if value is not None:
                check(value.seconds >= 1, name, "must be at least 1s")


@dataclass(frozen=True)
class StackSettings:
    """The generated deployment and the working directory ``meshwatch up`` runs it from.

    ``workdir`` (relative to the current directory unless absolute) holds the
    generated files (``stack/``), rewritten native configs (``native/``), data,
    logs and pid files; nothing is written into the source tree.
    ``project`` is the docker compose project name. ``alert_resend_delay`` is
    how often Prometheus re-sends a firing alert to Alertmanager (so an
    Alertmanager that was down catches up within that delay); unset, it is
    Prometheus' own default of one minute.

    ``alert_sink`` runs the built-in alert sink (``meshwatch alert-sink``,
    on ``ports.alert_sink``) beside Alertmanager whenever a receiver has no
    URL of its own, so a fresh stack's notifications land in a file instead
    of failing. Turned off, such receivers still post to that port on the
    host, where you may run the sink (or anything else) yourself.

    ``remote_write`` lists the long-term stores every Prometheus of the stack
    writes to, and ``external_labels`` (``cluster`` for one) are attached to
    everything they write. ``ha: true`` runs two Prometheus replicas, told
    apart by ``replica_label`` (``1`` and ``2``; a store such as Mimir or
    Thanos de-duplicates on it), with the same targets and rules, and two
    Alertmanagers in a gossip cluster that notify once per alert group. Both
    replicas send to both Alertmanagers with the replica label dropped, so the
    two copies of an alert are one alert there.
    """

    bind_address: str = "127.0.0.1"
    ports: Ports = field(default_factory=Ports)
    scrape_interval: Duration = Duration("15s")
    evaluation_interval: Duration = Duration("15s")
    agent_targets: tuple[str, ...] = ()
    workdir: str = ".meshwatch"
    project: str = "meshwatch"
    trace_retention: Duration = Duration("48h")
    alert_resend_delay: Duration | None = None
    receivers: Receivers = field(default_factory=Receivers)
    grafana_admin_password: str | None = None
    images: Images = field(default_factory=Images)
    demo: DemoSettings = field(default_factory=DemoSettings)
    alert_sink: bool = True
    remote_write: tuple[RemoteWrite, ...] = ()
    external_labels: dict[str, str] = field(default_factory=dict)
    ha: bool = False
    replica_label: str = "replica"

    @property
    def runs_alert_sink(self) -> bool:
        """True when ``meshwatch up`` runs the alert sink: it is on and a receiver posts to it."""
        return self.alert_sink and any(
            r.posts_to_sink for r in self.receivers.by_severity().values()
        )

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
        check(bool(self.workdir.strip()), "workdir", "must not be empty")
        check_remote_writes(self.remote_write)
        check_external_labels(self.external_labels, self.replica_label, ha=self.ha)
        check(
            bool(_PROJECT_RE.match(self.project)),
            "project",
            "must be lowercase letters, digits, '-' or '_' and start with a letter or digit "
            f"(a docker compose project name), got {self.project!r}",
        )
        check(self.scrape_interval.seconds > 0, "scrape_interval", "must be positive")
        check(self.evaluation_interval.seconds > 0, "evaluation_interval", "must be positive")
        if self.alert_resend_delay is not None:
            check(self.alert_resend_delay.seconds > 0, "alert_resend_delay", "must be positive")
        if self.grafana_admin_password is not None:
            password = self.grafana_admin_password
            check(
                len(password) >= 12 and password.lower() not in ("admin", "password"),
                "grafana_admin_password",
                "must be at least 12 characters and not a default; omit it to generate one",
            )
            check(
                not any(c in password for c in "'\n\r"),
                "grafana_admin_password",
                "must not contain quotes or line breaks (it is written to an env file)",
            )
