"""Remote write, external labels and HA: settings errors, and what compose and native generate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshwatch.generated import GeneratedFile, write_tree
from meshwatch.settings import Settings, SettingsError, load_settings, settings_from_mapping
from meshwatch.stack import render
from meshwatch.stack.runner.compose import ComposeStack
from meshwatch.stack.runner.native import NativeStack
from meshwatch.stack.runner.native_config import native_configs

RULE = GeneratedFile(
    "prometheus/rules/meshwatch-test.yml",
    "groups:\n  - name: meshwatch-test\n    rules:\n"
    "      - alert: AnyTargetDown\n        expr: up == 0\n        labels: {severity: critical}\n",
)


@pytest.mark.parametrize(
    ("yaml_text", "key", "fragment"),
    [
        pytest.param(
            "stack:\n  remote_write: [{name: mimir}]\n",
            "stack.remote_write[0].url",
            "is required",
            id="url-required",
        ),
        pytest.param(
            "stack:\n  remote_write: [{url: 'mimir:9009'}]\n",
            "stack.remote_write[0].url",
            "http(s) URL",
            id="url-scheme",
        ),
        pytest.param(
            "stack:\n  remote_write: [{url: 'http://m/', username: u}]\n",
            "stack.remote_write[0].password_file",
            "both username and password_file",
            id="basic-auth-half",
        ),
        pytest.param(
            "stack:\n  remote_write:\n    - {url: 'http://m/', username: u, password_file: /p,"
            " bearer_token_file: /t}\n",
            "stack.remote_write[0].bearer_token_file",
            "not both",
            id="two-kinds-of-auth",
        ),
        pytest.param(
            "stack:\n  remote_write: [{url: 'http://m/', bearer_token_file: token}]\n",
            "stack.remote_write[0].bearer_token_file",
            "absolute path",
            id="relative-token-file",
        ),
        pytest.param(
            "stack:\n  remote_write: [{url: 'http://m/', headers: {Authorization: 'Bearer x'}}]\n",
            "stack.remote_write[0].headers",
            "set by Prometheus itself",
            id="authorization-header",
        ),
        pytest.param(
            "stack:\n  remote_write: [{url: 'http://m/', headers: {'Bad Header': x}}]\n",
            "stack.remote_write[0].headers",
            "not a header name",
            id="header-name",
        ),
        pytest.param(
            "stack:\n  remote_write: [{url: 'http://m/', queue: {min_shards: 8, max_shards: 2}}]\n",
            "stack.remote_write[0].queue.min_shards",
            "must not exceed max_shards",
            id="queue-shards",
        ),
        pytest.param(
            "stack:\n  remote_write: [{url: 'http://m/', queue: {capacity: 0}}]\n",
            "stack.remote_write[0].queue.capacity",
            "at least 1",
            id="queue-capacity",
        ),
        pytest.param(
            "stack:\n  remote_write: [{url: 'http://a/', name: x}, {url: 'http://b/', name: x}]\n",
            "stack.remote_write[1].name",
            "used twice",
            id="duplicate-name",
        ),
        pytest.param(
            "stack:\n  external_labels: {'cluster-name': prod}\n",
            "stack.external_labels",
            "label name",
            id="label-name",
        ),
        pytest.param(
            "stack:\n  external_labels: {cluster: ''}\n",
            "stack.external_labels",
            "must not be empty",
            id="label-value",
        ),
        pytest.param(
            "stack:\n  ha: true\n  external_labels: {replica: a}\n",
            "stack.external_labels",
            "replica label",
            id="replica-label-is-ours-in-ha",
        ),
        pytest.param(
            "stack:\n  replica_label: __replica__\n",
            "stack.replica_label",
            "label name",
            id="replica-label-name",
        ),
        pytest.param(
            "stack:\n  ports: {prometheus_replica: 9093}\n",
            "stack.ports.alertmanager",
            "already used by prometheus_replica",
            id="replica-port-clash",
        ),
    ],
)
def test_bad_scale_out_values_name_the_file_and_key(
    tmp_path: Path, yaml_text: str, key: str, fragment: str
) -> None:
    path = tmp_path / "meshwatch.yaml"
    path.write_text(yaml_text)
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    assert info.value.key == key
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def _mimir(tmp_path: Path, **stack: Any) -> Settings:
    return settings_from_mapping(
        {
            "stack": {
                "external_labels": {"cluster": "prod-eu"},
                "remote_write": [
                    {
                        "url": "http://localhost:9009/api/v1/push",
                        "name": "mimir",
                        "username": "tenant-1",
                        "password_file": str(tmp_path / "mimir-password"),
                        "headers": {"X-Scope-OrgID": "tenant-1"},
                        "queue": {"max_shards": 4, "capacity": 5000, "max_backoff": "10s"},
                    },
                    {
                        "url": "https://thanos.example.org/api/v1/receive",
                        "bearer_token_file": str(tmp_path / "thanos-token"),
                        "remote_timeout": "20s",
                        "send_exemplars": False,
                    },
                ],
                **stack,
            }
        }
    )


def _docs(settings: Settings) -> dict[str, Any]:
    return {f.path: yaml.safe_load(f.content) for f in render(settings) if f.path.endswith("yml")}


def test_remote_write_reads_credentials_from_docker_secrets_in_compose(tmp_path: Path) -> None:
    docs = _docs(_mimir(tmp_path))
    prom = docs["prometheus/prometheus.yml"]
    assert prom["global"]["external_labels"] == {"cluster": "prod-eu"}
    assert prom["remote_write"] == [
        {
            "url": "http://host.docker.internal:9009/api/v1/push",
            "name": "mimir",
            "send_exemplars": True,
            "headers": {"X-Scope-OrgID": "tenant-1"},
            "basic_auth": {
                "username": "tenant-1",
                "password_file": "/run/secrets/meshwatch_remote_write_0_password",
            },
            "queue_config": {"max_shards": 4, "capacity": 5000, "max_backoff": "10s"},
        },
        {
            "url": "https://thanos.example.org/api/v1/receive",
            "send_exemplars": False,
            "remote_timeout": "20s",
            "authorization": {
                "type": "Bearer",
                "credentials_file": "/run/secrets/meshwatch_remote_write_1_bearer_token",
            },
        },
    ]
    compose = docs["docker-compose.yml"]
    assert compose["services"]["prometheus"]["secrets"] == [
        "meshwatch_remote_write_0_password",
        "meshwatch_remote_write_1_bearer_token",
    ]
    assert compose["secrets"]["meshwatch_remote_write_1_bearer_token"] == {
        "file": str(tmp_path / "thanos-token")
    }
    assert "secrets" not in compose["services"]["alertmanager"]
    text = "".join(f.content for f in render(_mimir(tmp_path)))
    assert "tenant-1" in text and str(tmp_path / "mimir-password") in text  # the path, never...
    assert "Bearer x" not in text  # ...a secret: none is known to the generator at all


def test_native_remote_write_uses_the_host_url_and_secret_files(tmp_path: Path) -> None:
    settings = _mimir(tmp_path)
    stack_dir = tmp_path / "stack"
    write_tree(render(settings), stack_dir)
    native = yaml.safe_load(native_configs(settings, stack_dir)[0].content)
    first, second = native["remote_write"]
    assert first["url"] == "http://localhost:9009/api/v1/push"
    assert first["basic_auth"]["password_file"] == str(tmp_path / "mimir-password")
    assert second["authorization"]["credentials_file"] == str(tmp_path / "thanos-token")
    assert native["global"]["external_labels"] == {"cluster": "prod-eu"}


def test_ha_runs_two_prometheus_replicas_that_differ_only_in_the_replica_label() -> None:
    settings = settings_from_mapping({"stack": {"ha": True, "external_labels": {"cluster": "c"}}})
    docs = _docs(settings)
    one, two = docs["prometheus/prometheus.yml"], docs["prometheus/prometheus-2.yml"]
    assert one["global"]["external_labels"] == {"cluster": "c", "replica": "1"}
    assert two["global"]["external_labels"] == {"cluster": "c", "replica": "2"}
    del one["global"]["external_labels"], two["global"]["external_labels"]
    assert one == two
    assert one["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093",
        "alertmanager-2:9093",
    ]
    assert one["alerting"]["alert_relabel_configs"] == [{"action": "labeldrop", "regex": "replica"}]
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in one["scrape_configs"]}
    assert jobs["prometheus"] == ["prometheus:9090", "prometheus-2:9090"]
    assert jobs["alertmanager"] == ["alertmanager:9093", "alertmanager-2:9093"]
    tempo = yaml.safe_load(
        next(f.content for f in render(settings) if f.path == "tempo/tempo.yaml")
    )
    assert [w["url"] for w in tempo["metrics_generator"]["storage"]["remote_write"]] == [
        "http://prometheus:9090/api/v1/write",
        "http://prometheus-2:9090/api/v1/write",
    ]


def test_without_ha_there_is_one_of_each_and_no_replica_label() -> None:
    docs = _docs(Settings())
    assert "prometheus/prometheus-2.yml" not in docs
    prom = docs["prometheus/prometheus.yml"]
    assert "external_labels" not in prom["global"]
    assert "alert_relabel_configs" not in prom["alerting"]
    assert "remote_write" not in prom
    services = docs["docker-compose.yml"]["services"]
    assert "prometheus-2" not in services and "alertmanager-2" not in services
    assert "--cluster.listen-address=" in services["alertmanager"]["command"]


def test_compose_ha_runs_an_alertmanager_gossip_cluster_and_a_second_prometheus() -> None:
    settings = settings_from_mapping(
        {
            "stack": {
                "ha": True,
                "ports": {"prometheus_replica": 19091, "alertmanager_replica": 19095},
            }
        }
    )
    compose = _docs(settings)["docker-compose.yml"]
    services, volumes = compose["services"], compose["volumes"]
    one, two = services["alertmanager"]["command"], services["alertmanager-2"]["command"]
    assert "--cluster.listen-address=0.0.0.0:9094" in one
    assert "--cluster.peer=alertmanager-2:9094" in one and "--cluster.peer=alertmanager:9094" in two
    assert services["alertmanager-2"]["ports"] == ["127.0.0.1:19095:9093"]
    assert "--config.file=/etc/prometheus/prometheus-2.yml" in services["prometheus-2"]["command"]
    assert services["prometheus-2"]["ports"] == ["127.0.0.1:19091:9090"]
    assert "prometheus-2-data:/prometheus" in services["prometheus-2"]["volumes"]
    assert {"prometheus-2-data", "alertmanager-2-data"} <= set(volumes)
    runner = ComposeStack(settings, "/nonexistent")
    assert runner.services[:4] == ["prometheus", "prometheus-2", "alertmanager", "alertmanager-2"]


def test_native_ha_gossips_on_loopback_with_each_peer_pointing_at_the_other(tmp_path: Path) -> None:
    settings = settings_from_mapping(
        {
            "stack": {
                "ha": True,
                "ports": {
                    "prometheus_replica": 19091,
                    "alertmanager_replica": 19095,
                    "alertmanager_gossip": 19094,
                    "alertmanager_replica_gossip": 19096,
                },
            }
        }
    )
    native = NativeStack(settings, tmp_path)
    assert native.components()[:2] == ["prometheus", "prometheus-2"]
    one, two = native._argv("alertmanager"), native._argv("alertmanager-2")
    assert "--cluster.listen-address=127.0.0.1:19094" in one
    assert "--cluster.peer=127.0.0.1:19096" in one and "--cluster.peer=127.0.0.1:19094" in two
    assert "--web.listen-address=127.0.0.1:19095" in two
    prom2 = native._argv("prometheus-2")
    assert f"--config.file={tmp_path / 'native' / 'prometheus-2.yml'}" in prom2
    assert f"--storage.tsdb.path={tmp_path / 'data' / 'prometheus-2'}" in prom2
    stack_dir = tmp_path / "stack"
    write_tree(render(settings), stack_dir)
    docs = {f.path: yaml.safe_load(f.content) for f in native_configs(settings, stack_dir)}
    assert set(docs) == {"prometheus.yml", "prometheus-2.yml", "alertmanager.yml"}
    targets = docs["prometheus-2.yml"]["alerting"]["alertmanagers"][0]["static_configs"][0]
    assert targets["targets"] == ["127.0.0.1:9093", "127.0.0.1:19095"]
    jobs = {
        j["job_name"]: j["static_configs"][0]["targets"]
        for j in docs["prometheus.yml"]["scrape_configs"]
    }
    assert jobs["prometheus"] == ["127.0.0.1:9090", "127.0.0.1:19091"]
