"""The Kubernetes target validates against the pinned upstream schemas, as a cluster would.

* prometheus-operator kinds against the CRD schemas of the pinned operator
  release (v0.93.0), made strict the way the API server's strict field
  validation is: a field the schema does not declare is an error.
* Helm values overlays: every key exists in the pinned chart's values.yaml
  (or lies under a free-form map there, or is read by the chart's templates).

The upstream files are read with ``git show`` from local snapshots
(``tests/rules/upstream.py``), a short run of a real tool per file, so these
tests are in the rules-and-tools tier; the core kinds' checks with
``kubernetes-validate`` run in-process in ``tests/unit/test_kubernetes_core_schemas.py``.

Each validator is also shown to reject a broken document, so a pass means
something.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from meshwatch.kubernetes import helm
from meshwatch.settings import Settings, settings_from_mapping
from tests.rules import upstream
from tests.unit.test_kubernetes_core_schemas import VARIANTS, _docs, _overlay


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


def test_operator_kinds_pass_the_pinned_crd_schemas(
    manifests: list[tuple[str, dict[str, Any]]],
) -> None:
    operator = [(p, d) for p, d in manifests if d["apiVersion"].startswith("monitoring.coreos.com")]
    assert {d["kind"] for _, d in operator} >= {"PrometheusRule", "AlertmanagerConfig"} or {
        d["kind"] for _, d in operator
    } >= {"PrometheusRule"}
    problems = {p: crd_errors(d) for p, d in operator if crd_errors(d)}
    assert not problems


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
