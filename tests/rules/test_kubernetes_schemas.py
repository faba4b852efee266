"""The Kubernetes target validates against real schemas, as a cluster would check it.

* Core kinds (Deployment, Service, ConfigMap, Secret) with the real
  ``kubernetes-validate`` package, strictly (unknown fields rejected, as
  ``kubectl apply`` does by default), for the newest Kubernetes it knows.
* prometheus-operator kinds against the CRD schemas of the pinned operator
  release (v0.93.0), made strict the way the API server's strict field
  validation is: a field the schema does not declare is an error.
* Helm values overlays: every key exists in the pinned chart's values.yaml
  (or lies under a free-form map there, or is read by the chart's templates).

Each validator is also shown to reject a broken document, so a pass means
something.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from meshwatch import kubernetes
from meshwatch.kubernetes import helm
from meshwatch.settings import Settings, settings_from_mapping
from tests.unit import upstream

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


@pytest.fixture(params=sorted(VARIANTS), scope="module")
def manifests(request: pytest.FixtureRequest) -> list[tuple[str, dict[str, Any]]]:
    return _docs(settings_from_mapping(VARIANTS[request.param]))


def _strict(schema: Any) -> Any:
    """The schema with every declared object closed, as strict field validation treats it."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_errors(doc: dict[str, Any]) -> list[str]:
    """Violations of ``doc`` against its kind's CRD schema in the pinned operator release."""
    version = doc["apiVersion"].rpartition("/")[2]
    schema = _strict(upstream.crd_schema(doc["kind"], version))
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


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


def test_operator_kinds_pass_the_pinned_crd_schemas(
    manifests: list[tuple[str, dict[str, Any]]],
) -> None:
    operator = [(p, d) for p, d in manifests if d["apiVersion"].startswith("monitoring.coreos.com")]
    assert {d["kind"] for _, d in operator} >= {"PrometheusRule", "AlertmanagerConfig"} or {
        d["kind"] for _, d in operator
    } >= {"PrometheusRule"}
    problems = {p: crd_errors(d) for p, d in operator if crd_errors(d)}
    assert not problems


def test_every_operator_kind_generated_is_checked() -> None:
    kinds = {
        d["kind"]
        for variant in VARIANTS.values()
        for _, d in _docs(settings_from_mapping(variant))
        if d["apiVersion"].startswith("monitoring.coreos.com")
    }
    assert kinds == {"PrometheusRule", "PodMonitor", "ServiceMonitor", "AlertmanagerConfig"}


@pytest.mark.parametrize(
    ("kind", "break_it"),
    [
        ("PodMonitor", lambda d: d["spec"]["podMetricsEndpoints"][0].update(scrapePath="/x")),
        ("PrometheusRule", lambda d: d["spec"]["groups"][0].update(rules="not a list")),
        ("AlertmanagerConfig", lambda d: d["spec"]["route"].update(groupWait=30)),
        ("AlertmanagerConfig", lambda d: d["spec"]["receivers"][0].update(webhook=[{}])),
    ],
    ids=["misspelled-field", "wrong-type", "duration-as-number", "unknown-receiver-key"],
)
def test_the_crd_check_rejects_a_broken_object(kind: str, break_it: Any) -> None:
    doc = copy.deepcopy(next(d for _, d in _docs(Settings()) if d["kind"] == kind))
    assert not crd_errors(doc)
    break_it(doc)
    assert crd_errors(doc)


def test_the_core_check_rejects_a_broken_object() -> None:
    doc = copy.deepcopy(next(d for _, d in _docs(Settings()) if d["kind"] == "Deployment"))
    doc["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy2"] = "Always"
    assert core_errors(doc)


# Helm values overlays -------------------------------------------------------------------------


def unknown_keys(overlay: Any, values: Any, templates: str, prefix: str = "") -> list[str]:
    """Dotted keys of ``overlay`` the chart does not know.

    A key is known when ``values.yaml`` has it; below a key whose default is
    empty or not a mapping (``ruleSelector: {}``, ``labels: {}``) anything goes,
    since that is a free-form value; a key the templates read as
    ``.Values.<key>`` is known even when values.yaml only mentions it in a comment.
    """
    unknown = []
    for key, value in overlay.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(values, dict) and key in values:
            default = values[key]
            if isinstance(value, dict) and isinstance(default, dict) and default:
                unknown += unknown_keys(value, default, templates, path)
        elif f".Values.{path}" not in templates:
            unknown.append(path)
    return unknown


def _overlay(settings: Settings, chart: helm.Chart) -> dict[str, Any]:
    files = {f.path: f for f in helm.render(settings)}
    values: dict[str, Any] = yaml.safe_load(files[chart.values_path].content)
    return values


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_kube_prometheus_stack_overlay_keys_exist_in_the_pinned_chart(variant: str) -> None:
    pin = upstream.KUBE_PROMETHEUS_STACK_VALUES
    assert upstream.chart_version(pin) == helm.KUBE_PROMETHEUS_STACK.version
    overlay = _overlay(settings_from_mapping(VARIANTS[variant]), helm.KUBE_PROMETHEUS_STACK)
    grafana = overlay.pop("grafana")
    assert not unknown_keys(overlay, upstream.chart_values(pin), upstream.chart_templates(pin))
    # Grafana's keys belong to the grafana subchart at the version kube-prometheus-stack pins.
    chart = yaml.safe_load(upstream.read(pin, "Chart.yaml"))
    dependency = next(d for d in chart["dependencies"] if d["name"] == "grafana")
    assert dependency["version"] == helm.GRAFANA.version
    assert upstream.chart_version(upstream.GRAFANA_VALUES) == helm.GRAFANA.version
    sub = upstream.GRAFANA_VALUES
    assert not unknown_keys(grafana, upstream.chart_values(sub), upstream.chart_templates(sub))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_overlay_specs_pass_the_pinned_prometheus_and_alertmanager_crds(variant: str) -> None:
    """kube-prometheus-stack copies these keys into the Prometheus and Alertmanager objects.

    So the remote writes, external labels, replicas and selectors of the
    overlay must be valid fields of those objects' specs.
    """
    overlay = _overlay(settings_from_mapping(VARIANTS[variant]), helm.KUBE_PROMETHEUS_STACK)
    prometheus = {"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus"}
    alertmanager = {"apiVersion": "monitoring.coreos.com/v1", "kind": "Alertmanager"}
    for doc, spec in (
        (prometheus, overlay["prometheus"]["prometheusSpec"]),
        (alertmanager, overlay["alertmanager"]["alertmanagerSpec"]),
    ):
        assert not crd_errors({**doc, "metadata": {"name": "x"}, "spec": spec})


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


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_tempo_distributed_overlay_keys_exist_in_the_pinned_chart(variant: str) -> None:
    pin = upstream.TEMPO_DISTRIBUTED_VALUES
    assert upstream.chart_version(pin) == helm.TEMPO_DISTRIBUTED.version
    overlay = _overlay(settings_from_mapping(VARIANTS[variant]), helm.TEMPO_DISTRIBUTED)
    assert not unknown_keys(overlay, upstream.chart_values(pin), upstream.chart_templates(pin))


def test_the_values_check_rejects_a_misspelled_key() -> None:
    pin = upstream.KUBE_PROMETHEUS_STACK_VALUES
    overlay = {"prometheus": {"prometheusSpec": {"ruleSelectr": {"matchLabels": {"a": "b"}}}}}
    assert unknown_keys(overlay, upstream.chart_values(pin), upstream.chart_templates(pin)) == [
        "prometheus.prometheusSpec.ruleSelectr"
    ]


def test_the_prometheus_spec_check_rejects_a_misspelled_remote_write_field() -> None:
    overlay = _overlay(
        settings_from_mapping(VARIANTS["ha-remote-write"]), helm.KUBE_PROMETHEUS_STACK
    )
    spec = overlay["prometheus"]["prometheusSpec"]
    spec["remoteWrite"][0]["basicauth"] = spec["remoteWrite"][0].pop("basicAuth")
    doc = {"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus", "metadata": {}}
    assert crd_errors({**doc, "spec": spec})
