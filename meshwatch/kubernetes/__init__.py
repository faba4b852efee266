"""The Kubernetes target: what a team running the Prometheus Operator deploys, from the same settings.

>>> from meshwatch.settings import Settings
>>> from meshwatch.kubernetes import render
>>> [f.path for f in render(Settings())][:3]
['helm/kube-prometheus-stack.values.yaml', 'helm/tempo-distributed.values.yaml', 'kustomization.yaml']

``meshwatch generate --target kubernetes --out DIR`` writes:

* ``manifests/``: one object a file. ``PrometheusRule`` objects holding the
  rule files' groups (:mod:`~meshwatch.kubernetes.rules`); a PodMonitor or
  ServiceMonitor for the agents, and the demo and alert sink workloads
  (:mod:`~meshwatch.kubernetes.workloads`); the Alertmanager routing as an
  ``AlertmanagerConfig`` or an ``alertmanager.yaml`` Secret
  (:mod:`~meshwatch.kubernetes.alertmanager`); dashboards and datasources as
  ConfigMaps for Grafana's sidecar (:mod:`~meshwatch.kubernetes.grafana`).
* ``helm/``: values overlays for kube-prometheus-stack and tempo-distributed,
  naming the chart versions they were written for (:mod:`~meshwatch.kubernetes.helm`).
* ``kustomization.yaml``: every manifest, the namespace and the common labels.
* ``prometheus/rules/``: the rule files and their promtool unit tests, which
  ``meshwatch check`` runs and compares with the PrometheusRule objects.

Like the other targets, :func:`render` returns files and never writes.
"""

from __future__ import annotations

from typing import Any

from meshwatch import alerts
from meshwatch.generated import GeneratedFile, check_unique
from meshwatch.kubernetes.objects import MANIFESTS_DIR
from meshwatch.settings import Settings
from meshwatch.stack.yamlfile import yaml_file

KUSTOMIZATION = "kustomization.yaml"


def kustomization(settings: Settings, manifests: list[GeneratedFile]) -> dict[str, Any]:
    """The Kustomization listing every manifest, with the namespace and common labels.

    ``includeSelectors: false`` keeps the labels out of the Deployments'
    selectors, which are immutable once applied.
    """
    k8s = settings.kubernetes
    doc: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": k8s.namespace,
        "resources": sorted(f.path for f in manifests),
    }
    if k8s.common_labels:
        doc["labels"] = [{"pairs": dict(k8s.common_labels), "includeSelectors": False}]
    return doc


def manifests(settings: Settings) -> list[GeneratedFile]:
    """Every object under ``manifests/``."""
    from meshwatch.kubernetes import alertmanager, grafana, rules, workloads

    return check_unique(
        [
            *rules.render(settings),
            *workloads.render(settings),
            *alertmanager.render(settings),
            *grafana.render(settings),
        ]
    )


def render(settings: Settings) -> list[GeneratedFile]:
    """Every file of the Kubernetes target, sorted by path."""
    from meshwatch.kubernetes import helm

    objects = manifests(settings)
    assert all(f.path.startswith(f"{MANIFESTS_DIR}/") for f in objects)
    return check_unique(
        [
            *objects,
            yaml_file(KUSTOMIZATION, kustomization(settings, objects)),
            *helm.render(settings),
            *alerts.render(settings),
        ]
    )


__all__ = ["KUSTOMIZATION", "kustomization", "manifests", "render"]
