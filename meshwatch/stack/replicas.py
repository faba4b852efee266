"""The Prometheus and Alertmanager instances of a stack: one of each, or two with ``stack.ha``.

Every target and runner asks here which instances exist, so the compose
services, the native processes, the scrape jobs and the alerting targets
always name the same set. The first instance of each keeps the plain name
(``prometheus``, ``alertmanager``) and the stack's main ports, so Grafana,
Tempo and ``meshwatch status`` find it exactly as without HA; the second is
``prometheus-2`` / ``alertmanager-2`` on the ``*_replica`` ports.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshwatch.settings import StackSettings


@dataclass(frozen=True)
class PrometheusReplica:
    """One Prometheus: its service (and native component) name, replica label value and config."""

    name: str
    label: str
    config_path: str
    host_port_key: str


@dataclass(frozen=True)
class AlertmanagerPeer:
    """One Alertmanager: its service name and the settings keys of its HTTP and gossip ports."""

    name: str
    host_port_key: str
    gossip_port_key: str


PROMETHEUS_REPLICAS = (
    PrometheusReplica("prometheus", "1", "prometheus/prometheus.yml", "prometheus"),
    PrometheusReplica("prometheus-2", "2", "prometheus/prometheus-2.yml", "prometheus_replica"),
)
ALERTMANAGER_PEERS = (
    AlertmanagerPeer("alertmanager", "alertmanager", "alertmanager_gossip"),
    AlertmanagerPeer("alertmanager-2", "alertmanager_replica", "alertmanager_replica_gossip"),
)
# Alertmanager's own default gossip port, used inside the compose network.
GOSSIP_CONTAINER_PORT = 9094


def prometheus_replicas(stack: StackSettings) -> tuple[PrometheusReplica, ...]:
    """The Prometheus instances this stack runs."""
    return PROMETHEUS_REPLICAS if stack.ha else PROMETHEUS_REPLICAS[:1]


def alertmanager_peers(stack: StackSettings) -> tuple[AlertmanagerPeer, ...]:
    """The Alertmanager instances this stack runs."""
    return ALERTMANAGER_PEERS if stack.ha else ALERTMANAGER_PEERS[:1]


def host_port(stack: StackSettings, key: str) -> int:
    """The host port a ``*_port_key`` names in ``stack.ports``."""
    port: int = getattr(stack.ports, key)
    return port


def external_labels(stack: StackSettings, replica: PrometheusReplica) -> dict[str, str]:
    """The external labels of ``replica``: the configured ones, plus the replica label in HA."""
    labels = dict(stack.external_labels)
    if stack.ha:
        labels[stack.replica_label] = replica.label
    return labels
