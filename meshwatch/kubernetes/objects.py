"""What every generated Kubernetes object shares: its metadata, its file and the cluster's names.

Each object is its own file under :data:`MANIFESTS_DIR`, so ``kubectl diff``
and code review show one object per file and ``kustomization.yaml`` lists them.
Every object carries the namespace and the common labels itself, so the
directory also applies without kustomize (``kubectl apply -f manifests/``).
"""

from __future__ import annotations

from typing import Any

import meshwatch
from meshwatch.generated import GeneratedFile
from meshwatch.settings import KubernetesSettings, Settings
from meshwatch.stack.yamlfile import yaml_file

MANIFESTS_DIR = "manifests"
MONITORING_V1 = "monitoring.coreos.com/v1"
MONITORING_V1ALPHA1 = "monitoring.coreos.com/v1alpha1"
#: Label naming each generated object's component, as Kubernetes recommends.
NAME_LABEL = "app.kubernetes.io/name"
# The operator's governing Services, the same whatever the Helm release is called.
PROMETHEUS_SERVICE = "prometheus-operated"
ALERTMANAGER_SERVICE = "alertmanager-operated"


def metadata(
    k8s: KubernetesSettings,
    name: str,
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``metadata`` of an object in the generated namespace, with the common labels."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": k8s.namespace,
        "labels": {**k8s.common_labels, **(labels or {})},
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def manifest(name: str, doc: dict[str, Any], *, comment: str = "") -> GeneratedFile:
    """One object as ``manifests/<name>.yaml``."""
    return yaml_file(f"{MANIFESTS_DIR}/{name}.yaml", doc, comment=comment)


def service_host(k8s: KubernetesSettings, service: str) -> str:
    """The in-cluster DNS name of a Service in the generated namespace."""
    return f"{service}.{k8s.namespace}.svc"


def tempo_fullname(k8s: KubernetesSettings) -> str:
    """The object name prefix of the tempo-distributed release (the chart's ``tempo.fullname``).

    The chart uses the release name when it contains ``tempo``, else
    ``<release>-tempo``, truncated to 63 characters.
    """
    release = k8s.tempo_release
    return (release if "tempo" in release else f"{release}-tempo")[:63].rstrip("-")


def meshwatch_image(settings: Settings) -> str:
    """The image running ``meshwatch`` (demo, alert sink): the compose build's tag by default."""
    image = settings.kubernetes.demo_image
    return image or f"{settings.stack.project}-meshwatch:{meshwatch.__version__}"
