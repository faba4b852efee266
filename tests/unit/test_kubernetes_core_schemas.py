"""The Kubernetes target's core kinds validate against ``kubernetes-validate``, in-process.

Core kinds (Deployment, Service, ConfigMap, Secret) are checked strictly
(unknown fields rejected, as ``kubectl apply`` does by default) for the newest
Kubernetes the package knows. The operator kinds and Helm overlays are checked
against pinned upstream files in ``tests/rules/test_kubernetes_schemas.py``;
the settings variants here are shared with it.
"""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from meshwatch import kubernetes
from meshwatch.kubernetes import helm
from meshwatch.settings import Settings, settings_from_mapping

VARIANTS = {
    "defaults": {},
    "service-monitor-secret-form": {
        "kubernetes": {
            "namespace": "observability",
            "common_labels": {"team": "agents", "app.kubernetes.io/part-of": "fleet"},
            "operator_labels": {"prometheus": "main"},
            "agents": {
                "kind": "ServiceMonitor",
                "selector": {"app": "agent"},
                "namespaces": ["agents-a", "agents-b"],
                "port": "http-metrics",
                "path": "/custom/metrics",
                "interval": "30s",
            },
            "alertmanager_config": "Secret",
            "demo_image": "registry.example/meshwatch:1.2.3",
        },
        "stack": {
            "demo": {"enabled": False},
            "receivers": {
                "critical": {"kind": "pagerduty", "routing_key_file": "/secrets/pd"},
                "warning": {"kind": "slack", "url_file": "/secrets/slack", "channel": "#agents"},
            },
        },
    },
    "ha-remote-write": {
        "stack": {
            "ha": True,
            "external_labels": {"cluster": "eu-1"},
            "remote_write": [
                {
                    "url": "https://mimir.example.org/api/v1/push",
                    "name": "mimir",
                    "username": "agents",
                    "password_file": "/secrets/mimir",
                    "headers": {"X-Scope-OrgID": "agents"},
                    "remote_timeout": "30s",
                    "queue": {"capacity": 10000, "max_shards": 20, "max_backoff": "10s"},
                },
                {"url": "https://thanos.example.org/api/v1/receive", "bearer_token_file": "/s/t"},
            ],
        }
    },
    "email-and-webhook-secret": {
        "stack": {
            "receivers": {
                "critical": {
                    "kind": "email",
                    "to": "oncall@example.org",
                    "from": "meshwatch@example.org",
                    "smarthost": "smtp.example.org:587",
                    "username": "meshwatch",
                    "password_file": "/secrets/smtp",
                },
                "warning": {"url_file": "/secrets/hook"},
            }
        }
    },
}


def _docs(settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    return [(f.path, yaml.safe_load(f.content)) for f in kubernetes.manifests(settings)]


def _overlay(settings: Settings, chart: helm.Chart) -> dict[str, Any]:
    files = {f.path: f for f in helm.render(settings)}
    values: dict[str, Any] = yaml.safe_load(files[chart.values_path].content)
    return values


@pytest.fixture(params=sorted(VARIANTS), scope="module")
def manifests(request: pytest.FixtureRequest) -> list[tuple[str, dict[str, Any]]]:
    return _docs(settings_from_mapping(VARIANTS[request.param]))


def core_errors(doc: dict[str, Any]) -> list[str]:
    try:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [str(exc).splitlines()[0]]
    return []


def test_core_kinds_pass_kubernetes_validate(manifests: list[tuple[str, dict[str, Any]]]) -> None:
    core = [(p, d) for p, d in manifests if not d["apiVersion"].startswith("monitoring.coreos.com")]
    assert {d["kind"] for _, d in core} >= {"ConfigMap"}
    problems = {p: core_errors(d) for p, d in core if core_errors(d)}
    assert not problems


def test_every_operator_kind_generated_is_checked() -> None:
    kinds = {
        d["kind"]
        for variant in VARIANTS.values()
        for _, d in _docs(settings_from_mapping(variant))
        if d["apiVersion"].startswith("monitoring.coreos.com")
    }
    assert kinds == {"PrometheusRule", "PodMonitor", "ServiceMonitor", "AlertmanagerConfig"}


def test_the_core_check_rejects_a_broken_object() -> None:
    doc = copy.deepcopy(next(d for _, d in _docs(Settings()) if d["kind"] == "Deployment"))
    doc["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy2"] = "Always"
    assert core_errors(doc)


def test_ha_and_remote_write_reach_the_prometheus_spec() -> None:
    overlay = _overlay(
        settings_from_mapping(VARIANTS["ha-remote-write"]), helm.KUBE_PROMETHEUS_STACK
    )
    spec = overlay["prometheus"]["prometheusSpec"]
    assert spec["replicas"] == 2
    assert spec["replicaExternalLabelName"] == "replica"
    assert spec["externalLabels"] == {"cluster": "eu-1"}
    mimir, thanos = spec["remoteWrite"]
    assert mimir["headers"] == {"X-Scope-OrgID": "agents"}
    assert mimir["basicAuth"]["password"] == {
        "name": "meshwatch-remote-write",
        "key": "meshwatch_remote_write_0_password",
    }
    assert mimir["queueConfig"] == {"capacity": 10000, "maxShards": 20, "maxBackoff": "10s"}
    assert thanos["authorization"]["credentials"]["key"] == "meshwatch_remote_write_1_bearer_token"
    assert overlay["alertmanager"]["alertmanagerSpec"]["replicas"] == 2
    # No credential is inlined: the files appear only in the command creating the Secret.
    text = {
        f.path: f.content for f in helm.render(settings_from_mapping(VARIANTS["ha-remote-write"]))
    }
    kps = text[helm.KUBE_PROMETHEUS_STACK.values_path]
    assert kps.count("/secrets/mimir") == 1
    assert "--from-file=meshwatch_remote_write_0_password=/secrets/mimir" in kps
