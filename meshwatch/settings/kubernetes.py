"""Kubernetes settings: how ``meshwatch generate --target kubernetes`` fits a cluster that runs
kube-prometheus-stack (the Prometheus Operator) and tempo-distributed.

The operator only picks up a ``PrometheusRule``, ``ServiceMonitor``,
``PodMonitor`` or ``AlertmanagerConfig`` whose labels match its selectors, and
Grafana's sidecar only loads ConfigMaps carrying its label. Those labels are
settings here, and the generated Helm values overlay sets the same labels as
the selectors, so the two halves cannot drift apart.

Receiver secrets never appear in generated manifests: they live in one
Kubernetes Secret (:attr:`KubernetesSettings.receiver_secret`) that the
manifests reference by name and key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from meshwatch.settings.loader import Duration, check

MonitorKind = Literal["PodMonitor", "ServiceMonitor"]
AlertmanagerForm = Literal["AlertmanagerConfig", "Secret"]

# Kubernetes name syntax (apimachinery validation): DNS-1123 labels and subdomains,
# label names (optional DNS prefix + 63-character name) and label values.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
# A named container port (IANA_SVC_NAME): at most 15 lowercase letters, digits and '-'.
_PORT_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$")


def _check_label_key(where: str, key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    check(
        bool(_LABEL_NAME.match(name)) and (not slash or bool(_DNS_SUBDOMAIN.match(prefix))),
        where,
        f"{key!r} is not a Kubernetes label name ([prefix/]name, name at most 63 characters)",
    )


def check_labels(where: str, labels: dict[str, str], *, allow_empty: bool = True) -> None:
    """Fail on a label name or value Kubernetes would reject, naming the setting."""
    check(allow_empty or bool(labels), where, "must hold at least one label")
    for key, value in labels.items():
        _check_label_key(where, key)
        check(
            bool(_LABEL_VALUE.match(value)),
            where,
            f"{value!r} (of {key}) is not a Kubernetes label value (at most 63 letters, "
            "digits, '-', '_' or '.', starting and ending alphanumeric)",
        )


def check_dns_label(where: str, value: str) -> None:
    check(
        bool(_DNS_LABEL.match(value)),
        where,
        f"must be a DNS-1123 label (lowercase letters, digits and '-', at most 63), got {value!r}",
    )


@dataclass(frozen=True)
class AgentMonitor:
    """How Prometheus finds your agents' ``/metrics`` in the cluster.

    ``kind`` picks a ``PodMonitor`` (scrapes pods directly: no Service needed)
    or a ``ServiceMonitor`` (scrapes the endpoints of Services). ``selector``
    are the labels your agent pods (or Services) carry; ``port`` is the *name*
    of the container (or Service) port serving metrics; ``namespaces`` lists
    where the agents run (empty: the generated namespace). ``interval`` falls
    back to ``stack.scrape_interval``.
    """

    kind: MonitorKind = "PodMonitor"
    selector: dict[str, str] = field(
        default_factory=lambda: {"app.kubernetes.io/component": "meshwatch-agent"}
    )
    namespaces: tuple[str, ...] = ()
    port: str = "metrics"
    path: str = "/metrics"
    interval: Duration | None = None

    def __post_init__(self) -> None:
        check_labels("selector", self.selector, allow_empty=False)
        for i, namespace in enumerate(self.namespaces):
            check_dns_label(f"namespaces[{i}]", namespace)
        check(
            bool(_PORT_NAME.match(self.port)),
            "port",
            "must be the name of a port (at most 15 lowercase letters, digits and '-'), "
            f"got {self.port!r}",
        )
        check(
            self.path.startswith("/") and " " not in self.path,
            "path",
            f"must be an absolute HTTP path such as /metrics, got {self.path!r}",
        )
        if self.interval is not None:
            check(self.interval.seconds > 0, "interval", "must be positive")


@dataclass(frozen=True)
class GrafanaSidecar:
    """Labels and annotation Grafana's sidecar reads (the chart defaults, unless changed).

    Dashboards go to the folder named ``dashboards.title_prefix`` through
    ``folder_annotation``; the Helm overlay configures the sidecar with the
    same names and values.
    """

    dashboard_label: str = "grafana_dashboard"
    dashboard_label_value: str = "1"
    folder_annotation: str = "grafana_folder"
    datasource_label: str = "grafana_datasource"
    datasource_label_value: str = "1"

    def __post_init__(self) -> None:
        check_labels("dashboard_label", {self.dashboard_label: self.dashboard_label_value})
        check_labels("datasource_label", {self.datasource_label: self.datasource_label_value})
        _check_label_key("folder_annotation", self.folder_annotation)


@dataclass(frozen=True)
class KubernetesSettings:
    """The cluster side of the generated deployment.

    ``namespace`` receives every generated object; ``common_labels`` go on all
    of them. ``operator_labels`` are the labels the operator's rule, monitor
    and AlertmanagerConfig selectors match: kube-prometheus-stack selects
    ``release: <its release name>`` by default. ``prometheus_release`` and
    ``tempo_release`` are the Helm release names, which name the services
    the datasources and the metrics generator talk to.

    ``alertmanager_config`` picks an ``AlertmanagerConfig`` object (v1alpha1)
    or the ``alertmanager.yaml`` Secret the Alertmanager reads as a whole.
    Either way the receivers' secrets stay in ``receiver_secret``, a Secret
    you create from the files named in ``stack.receivers``; the credentials
    of ``stack.remote_write`` stay in ``remote_write_secret``.

    ``demo_image`` is the image running ``meshwatch demo`` and the alert sink
    (the one ``meshwatch up`` builds in compose mode, pushed to your
    registry); unset, it is ``<stack.project>-meshwatch:<version>``.
    """

    namespace: str = "monitoring"
    common_labels: dict[str, str] = field(
        default_factory=lambda: {"app.kubernetes.io/part-of": "meshwatch"}
    )
    operator_labels: dict[str, str] = field(
        default_factory=lambda: {"release": "kube-prometheus-stack"}
    )
    prometheus_release: str = "kube-prometheus-stack"
    tempo_release: str = "tempo"
    agents: AgentMonitor = field(default_factory=AgentMonitor)
    alertmanager_config: AlertmanagerForm = "AlertmanagerConfig"
    receiver_secret: str = "meshwatch-receivers"
    remote_write_secret: str = "meshwatch-remote-write"
    grafana: GrafanaSidecar = field(default_factory=GrafanaSidecar)
    demo_image: str | None = None

    def __post_init__(self) -> None:
        check_dns_label("namespace", self.namespace)
        check_labels("common_labels", self.common_labels)
        check_labels("operator_labels", self.operator_labels, allow_empty=False)
        for name in ("prometheus_release", "tempo_release"):
            check_dns_label(name, getattr(self, name))
        for name in ("receiver_secret", "remote_write_secret"):
            value = getattr(self, name)
            check(
                bool(_DNS_SUBDOMAIN.match(value)),
                name,
                f"must be a Kubernetes object name, got {value!r}",
            )
        if self.demo_image is not None:
            tag = self.demo_image.rpartition(":")[2]
            check(
                ":" in self.demo_image and tag not in ("", "latest") and "/" not in tag,
                "demo_image",
                f"must be pinned to a version tag, got {self.demo_image!r}",
            )
