"""Dashboards and datasources as ConfigMaps for Grafana's sidecar (as kube-prometheus-stack runs it).

The sidecar watches ConfigMaps carrying ``kubernetes.grafana.dashboard_label``
(``grafana_dashboard: "1"`` by default) and files each dashboard in the folder
named by the ``folder_annotation`` annotation (``dashboards.title_prefix``). The
datasources ConfigMap carries ``datasource_label`` and holds the same
provisioning document as the compose stack, with the cluster's service
addresses and fixed uids, so exemplar and service-graph links work the same.
It is not the default datasource: kube-prometheus-stack provisions its own
default, and Grafana refuses two. The dashboards' datasource variable lists
both, which query the same Prometheus.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from meshwatch import dashboards
from meshwatch.generated import GeneratedFile
from meshwatch.kubernetes.objects import (
    ALERTMANAGER_SERVICE,
    PROMETHEUS_SERVICE,
    manifest,
    metadata,
    service_host,
    tempo_fullname,
)
from meshwatch.settings import Settings
from meshwatch.stack import grafana_provisioning
from meshwatch.stack.ports import CONTAINER_PORTS
from meshwatch.stack.yamlfile import dump_yaml

DATASOURCES = "meshwatch-datasources"
DATASOURCES_KEY = "meshwatch-datasources.yaml"


def datasource_urls(settings: Settings) -> dict[str, str]:
    """Each datasource uid's URL inside the cluster."""
    k8s = settings.kubernetes
    tempo = service_host(k8s, f"{tempo_fullname(k8s)}-query-frontend")
    return {
        grafana_provisioning.PROMETHEUS_UID: f"http://{service_host(k8s, PROMETHEUS_SERVICE)}:"
        f"{CONTAINER_PORTS['prometheus']}",
        grafana_provisioning.TEMPO_UID: f"http://{tempo}:{CONTAINER_PORTS['tempo']}",
        grafana_provisioning.ALERTMANAGER_UID: f"http://{service_host(k8s, ALERTMANAGER_SERVICE)}:"
        f"{CONTAINER_PORTS['alertmanager']}",
    }


def datasources(settings: Settings) -> dict[str, Any]:
    """The compose provisioning document with cluster URLs, named by uid, none the default.

    kube-prometheus-stack already provisions datasources named ``Prometheus``
    and ``Alertmanager``; Grafana requires unique names, so ours are named by
    their uids (which is how dashboards and links find them anyway).
    """
    doc = grafana_provisioning.datasources(settings)
    urls = datasource_urls(settings)
    for source in doc["datasources"]:
        source["url"] = urls[source["uid"]]
        source["name"] = source["uid"]
        source.pop("isDefault", None)
    return doc


def _dashboard(settings: Settings, file: GeneratedFile) -> GeneratedFile:
    sidecar = settings.kubernetes.grafana
    name = PurePosixPath(file.path).stem
    doc = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(
            settings.kubernetes,
            f"{name}-dashboard",
            labels={sidecar.dashboard_label: sidecar.dashboard_label_value},
            annotations={sidecar.folder_annotation: settings.dashboards.title_prefix},
        ),
        "data": {PurePosixPath(file.path).name: file.content},
    }
    return manifest(f"configmap-dashboard-{name}", doc)


def render(settings: Settings) -> list[GeneratedFile]:
    sidecar = settings.kubernetes.grafana
    sources = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(
            settings.kubernetes,
            DATASOURCES,
            labels={sidecar.datasource_label: sidecar.datasource_label_value},
        ),
        "data": {DATASOURCES_KEY: dump_yaml(datasources(settings))},
    }
    return [
        *(_dashboard(settings, f) for f in dashboards.render(settings)),
        manifest("configmap-datasources", sources),
    ]
