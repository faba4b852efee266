"""``meshwatch generate --target kubernetes``: what each object holds, from which setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshwatch import alerts, dashboards, kubernetes
from meshwatch.cli import main
from meshwatch.kubernetes import helm
from meshwatch.settings import Settings, SettingsError, settings_from_mapping

SECRET_RECEIVERS = {
    "stack": {
        "receivers": {
            "critical": {"kind": "pagerduty", "routing_key_file": "/secrets/pd-key"},
            "warning": {"kind": "slack", "url_file": "/secrets/slack-url", "channel": "#ops"},
        }
    }
}


def _files(settings: Settings) -> dict[str, str]:
    return {f.path: f.content for f in kubernetes.render(settings)}


def _objects(settings: Settings) -> dict[str, dict[str, Any]]:
    return {f.path: yaml.safe_load(f.content) for f in kubernetes.manifests(settings)}


def _one(settings: Settings, kind: str) -> dict[str, Any]:
    found = [d for d in _objects(settings).values() if d["kind"] == kind]
    assert len(found) == 1, kind
    return found[0]


def test_rendering_is_deterministic() -> None:
    assert _files(Settings()) == _files(Settings())


def test_the_kustomization_lists_every_manifest_with_namespace_and_labels() -> None:
    settings = settings_from_mapping(
        {"kubernetes": {"namespace": "obs", "common_labels": {"team": "agents"}}}
    )
    doc = yaml.safe_load(_files(settings)[kubernetes.KUSTOMIZATION])
    assert doc["resources"] == sorted(_objects(settings))
    assert doc["namespace"] == "obs"
    assert doc["labels"] == [{"pairs": {"team": "agents"}, "includeSelectors": False}]
    for path, obj in _objects(settings).items():
        assert obj["metadata"]["namespace"] == "obs", path
        assert obj["metadata"]["labels"]["team"] == "agents", path


def test_prometheus_rules_hold_exactly_the_rule_files_groups() -> None:
    settings = Settings()
    files = _files(settings)
    rules = {
        d["metadata"]["name"]: d
        for d in _objects(settings).values()
        if d["kind"] == "PrometheusRule"
    }
    rule_files = {
        p: c for p, c in files.items() if p.startswith(alerts.RULES_DIR + "/") and p.count("/") == 2
    }
    assert sorted(rules) == sorted(Path(p).stem for p in rule_files)
    for path, content in rule_files.items():
        assert rules[Path(path).stem]["spec"]["groups"] == yaml.safe_load(content)["groups"]
        assert rules[Path(path).stem]["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_operator_labels_go_on_every_selected_object_and_into_the_selectors() -> None:
    settings = settings_from_mapping({"kubernetes": {"operator_labels": {"prometheus": "main"}}})
    selected = {"PrometheusRule", "PodMonitor", "ServiceMonitor", "AlertmanagerConfig"}
    for obj in _objects(settings).values():
        if obj["kind"] in selected:
            assert obj["metadata"]["labels"]["prometheus"] == "main"
            assert "release" not in obj["metadata"]["labels"]
    values = helm.kube_prometheus_stack_values(settings)
    spec = values["prometheus"]["prometheusSpec"]
    for key in ("ruleSelector", "serviceMonitorSelector", "podMonitorSelector"):
        assert spec[key] == {"matchLabels": {"prometheus": "main"}}
    am = values["alertmanager"]["alertmanagerSpec"]
    assert am["alertmanagerConfigSelector"] == {"matchLabels": {"prometheus": "main"}}
    assert am["alertmanagerConfigMatcherStrategy"] == {"type": "None"}


@pytest.mark.parametrize("kind", ["PodMonitor", "ServiceMonitor"])
def test_the_agent_monitor_comes_from_the_settings(kind: str) -> None:
    settings = settings_from_mapping(
        {
            "kubernetes": {
                "agents": {
                    "kind": kind,
                    "selector": {"app": "agent"},
                    "namespaces": ["fleet"],
                    "port": "prom",
                    "path": "/m",
                    "interval": "7s",
                }
            }
        }
    )
    monitor = next(
        d for d in _objects(settings).values() if d["metadata"]["name"] == "meshwatch-agents"
    )
    assert monitor["kind"] == kind
    assert monitor["spec"]["selector"] == {"matchLabels": {"app": "agent"}}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["fleet"]}
    endpoints = monitor["spec"]["podMetricsEndpoints" if kind == "PodMonitor" else "endpoints"]
    assert endpoints[0]["port"] == "prom"
    assert endpoints[0]["path"] == "/m"
    assert endpoints[0]["interval"] == "7s"
    assert endpoints[0]["relabelings"] == [
        {"action": "replace", "targetLabel": "job", "replacement": "agents"}
    ]


def test_the_agent_interval_defaults_to_the_scrape_interval() -> None:
    settings = settings_from_mapping({"stack": {"scrape_interval": "20s"}})
    monitor = _one(settings, "PodMonitor")
    assert monitor["spec"]["podMetricsEndpoints"][0]["interval"] == "20s"


def test_the_demo_is_deployed_and_scraped_only_when_enabled() -> None:
    on = _objects(Settings())
    demo = next(d for d in on.values() if d["kind"] == "ServiceMonitor")
    assert demo["spec"]["endpoints"][0]["relabelings"][0]["replacement"] == "meshwatch-demo"
    deployment = next(
        d
        for d in on.values()
        if d["metadata"]["name"] == "meshwatch-demo" and d["kind"] == "Deployment"
    )
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--otlp-endpoint") + 1] == "http://tempo-distributor.monitoring.svc:4318"
    off = _objects(settings_from_mapping({"stack": {"demo": {"enabled": False}}}))
    assert not [d for d in off.values() if "demo" in d["metadata"]["name"]]


def test_receiver_secrets_are_referenced_never_inlined() -> None:
    settings = settings_from_mapping(SECRET_RECEIVERS)
    config = _one(settings, "AlertmanagerConfig")
    receivers = {r["name"]: r for r in config["spec"]["receivers"]}
    assert receivers["critical"]["pagerdutyConfigs"][0]["routingKey"] == {
        "name": "meshwatch-receivers",
        "key": "meshwatch_critical_routing_key",
    }
    assert receivers["warning"]["slackConfigs"][0]["apiURL"] == {
        "name": "meshwatch-receivers",
        "key": "meshwatch_warning_url",
    }
    text = "".join(f.content for f in kubernetes.manifests(settings))
    # The files' paths appear only in the kubectl command that creates the Secret.
    command = "--from-file=meshwatch_critical_routing_key=/secrets/pd-key"
    assert command in text
    assert text.count("/secrets/pd-key") == 1


def test_the_secret_form_mounts_the_receiver_secret() -> None:
    settings = settings_from_mapping(
        {**SECRET_RECEIVERS, "kubernetes": {"alertmanager_config": "Secret"}}
    )
    secret = _one(settings, "Secret")
    config = yaml.safe_load(secret["stringData"]["alertmanager.yaml"])
    pagerduty = config["receivers"][0]["pagerduty_configs"][0]
    expected = "/etc/alertmanager/secrets/meshwatch-receivers/meshwatch_critical_routing_key"
    assert pagerduty["routing_key_file"] == expected
    am = helm.kube_prometheus_stack_values(settings)["alertmanager"]["alertmanagerSpec"]
    assert am["configSecret"] == secret["metadata"]["name"]
    assert am["secrets"] == ["meshwatch-receivers"]
    assert not [d for d in _objects(settings).values() if d["kind"] == "AlertmanagerConfig"]


def test_dashboards_are_configmaps_for_the_sidecar() -> None:
    settings = settings_from_mapping(
        {
            "dashboards": {"title_prefix": "Agents"},
            "kubernetes": {"grafana": {"dashboard_label": "dash", "dashboard_label_value": "yes"}},
        }
    )
    maps = [
        d
        for d in _objects(settings).values()
        if d["kind"] == "ConfigMap" and "dash" in d["metadata"]["labels"]
    ]
    assert len(maps) == len(dashboards.render(settings))
    for cm in maps:
        assert cm["metadata"]["labels"]["dash"] == "yes"
        assert cm["metadata"]["annotations"] == {"grafana_folder": "Agents"}
        ((name, content),) = cm["data"].items()
        assert name.endswith(".json")
        assert '"uid"' in content
    sidecar = helm.kube_prometheus_stack_values(settings)["grafana"]["sidecar"]["dashboards"]
    assert (sidecar["label"], sidecar["labelValue"], sidecar["folderAnnotation"]) == (
        "dash",
        "yes",
        "grafana_folder",
    )


def test_tempo_overlay_remote_writes_generator_metrics_with_exemplars() -> None:
    values = helm.tempo_distributed_values(
        settings_from_mapping({"kubernetes": {"namespace": "obs"}})
    )
    generator = values["metricsGenerator"]
    assert generator["enabled"] is True
    assert generator["config"]["storage"]["remote_write"] == [
        {"url": "http://prometheus-operated.obs.svc:9090/api/v1/write", "send_exemplars": True}
    ]
    assert values["overrides"]["defaults"]["metrics_generator"]["processors"] == [
        "service-graphs",
        "span-metrics",
    ]
    kps = helm.kube_prometheus_stack_values(Settings())["prometheus"]["prometheusSpec"]
    assert kps["enableRemoteWriteReceiver"] is True
    assert "exemplar-storage" in kps["enableFeatures"]


def test_overlays_name_the_chart_versions() -> None:
    files = _files(Settings())
    for chart in helm.CHARTS:
        assert f"--version {chart.version}" in files[chart.values_path]


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"kubernetes": {"namespace": "Monitoring"}}, "kubernetes.namespace"),
        ({"kubernetes": {"agents": {"port": "9464"}}}, "kubernetes.agents.port"),
        ({"kubernetes": {"agents": {"selector": {}}}}, "kubernetes.agents.selector"),
        ({"kubernetes": {"agents": {"kind": "Probe"}}}, "kubernetes.agents.kind"),
        ({"kubernetes": {"common_labels": {"team": "a b"}}}, "kubernetes.common_labels"),
        ({"kubernetes": {"operator_labels": {}}}, "kubernetes.operator_labels"),
        ({"kubernetes": {"demo_image": "meshwatch:latest"}}, "kubernetes.demo_image"),
        (
            {"kubernetes": {"grafana": {"folder_annotation": "a/b/c"}}},
            "kubernetes.grafana.folder_annotation",
        ),
    ],
)
def test_bad_kubernetes_settings_name_the_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from_mapping(data)
    assert caught.value.key == key


def test_cli_writes_the_kubernetes_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "k8s"
    assert main(["generate", "--target", "kubernetes", "--out", str(out)]) == 0
    assert (out / kubernetes.KUSTOMIZATION).is_file()
    assert not (out / "docker-compose.yml").exists()
    # An earlier Kubernetes generation is replaced, as a compose one is.
    assert main(["generate", "--target", "kubernetes", "--out", str(out)]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(
        _files(Settings())
    )


def test_cli_rejects_a_sink_receiver_without_the_sink_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "meshwatch.yaml"
    config.write_text("stack:\n  alert_sink: false\n", encoding="utf-8")
    out = tmp_path / "k8s"
    assert (
        main(["generate", "--target", "kubernetes", "--out", str(out), "--config", str(config)])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "stack.receivers.critical" in err
    assert not out.exists()
