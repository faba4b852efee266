"""Every generated key exists in the pinned server version that reads it.

The key lists (tests/unit/data/pinned_config_keys.yaml) were read from each
version's own config structs at its release tag: Prometheus v3.14.0 (the
compose default), v2.55.1 (the previous major, still selectable) and v2.42.0
(Debian's, which native mode runs); Tempo 3.0.3 (the default) and 2.7.2.
Tempo 3 rejects any unknown key at start-up, and Prometheus any unknown key
in every version, so a key missing here is a stack that does not start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshwatch.generated import write_tree
from meshwatch.settings import Settings, SettingsError, settings_from_mapping
from meshwatch.settings.images import ImageRef
from meshwatch.stack import render
from meshwatch.stack.runner.native_config import native_configs

KEYS: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parent / "data" / "pinned_config_keys.yaml").read_text(encoding="utf-8")
)
PROMETHEUS_2 = "prom/prometheus:v2.55.1"
TEMPO_2 = "grafana/tempo:2.7.2"
DEBIAN_PROMETHEUS = "v2.42.0"


def _tag(version: tuple[int, int, int], prefix: str = "") -> str:
    return prefix + ".".join(str(n) for n in version)


def _everything(tmp_path: Path, **images: str) -> Settings:
    """Settings that make every optional key appear: HA, remote write with both auths, agents."""
    return settings_from_mapping(
        {
            "stack": {
                "ha": True,
                "external_labels": {"cluster": "c"},
                "agent_targets": ["127.0.0.1:9464"],
                "alert_resend_delay": "10s",
                "images": images,
                "remote_write": [
                    {
                        "url": "http://127.0.0.1:9009/api/v1/push",
                        "name": "mimir",
                        "username": "u",
                        "password_file": str(tmp_path / "p"),
                        "headers": {"X-Scope-OrgID": "t"},
                        "remote_timeout": "30s",
                        "queue": {
                            "capacity": 10,
                            "min_shards": 1,
                            "max_shards": 2,
                            "max_samples_per_send": 5,
                            "batch_send_deadline": "5s",
                            "min_backoff": "1s",
                            "max_backoff": "5s",
                        },
                    },
                    {"url": "http://127.0.0.1:9010/api/v1/write", "bearer_token_file": "/t"},
                ],
            }
        }
    )


def _unknown_prometheus_keys(doc: dict[str, Any], keys: dict[str, list[str]]) -> list[str]:
    """Dotted paths of keys in a prometheus.yml ``doc`` that ``keys`` (one version) lacks."""
    unknown: list[str] = []

    def check(mapping: dict[str, Any], section: str, where: str) -> None:
        unknown.extend(f"{where}.{k}" for k in mapping if k not in keys[section])

    def relabels(items: list[dict[str, Any]], where: str) -> None:
        for i, item in enumerate(items):
            check(item, "relabel_config", f"{where}[{i}]")

    check(doc, "top", "")
    check(doc.get("global", {}), "global", "global")
    for i, job in enumerate(doc.get("scrape_configs", [])):
        check(job, "scrape_config", f"scrape_configs[{i}]")
        for j, static in enumerate(job.get("static_configs", [])):
            check(static, "static_config", f"scrape_configs[{i}].static_configs[{j}]")
        relabels(job.get("relabel_configs", []), f"scrape_configs[{i}].relabel_configs")
    alerting = doc.get("alerting", {})
    check(alerting, "alerting", "alerting")
    relabels(alerting.get("alert_relabel_configs", []), "alerting.alert_relabel_configs")
    for i, am in enumerate(alerting.get("alertmanagers", [])):
        check(am, "alertmanager_config", f"alerting.alertmanagers[{i}]")
        for j, static in enumerate(am.get("static_configs", [])):
            check(static, "static_config", f"alerting.alertmanagers[{i}].static_configs[{j}]")
    for i, write in enumerate(doc.get("remote_write", [])):
        where = f"remote_write[{i}]"
        check(write, "remote_write", where)
        for sub in ("queue_config", "basic_auth", "authorization"):
            if sub in write:
                check(write[sub], sub, f"{where}.{sub}")
    return unknown


def _unknown_tempo_keys(doc: dict[str, Any], sections: dict[str, Any]) -> list[str]:
    """Dotted paths of keys in a tempo.yaml ``doc`` that no section of one version lists."""
    # Values whose keys are not Tempo's: the OpenTelemetry receivers' own config, a label map
    # (map[string]string), and the Prometheus remote-write entries (checked separately).
    opaque = {
        "distributor.receivers",
        "metrics_generator.registry.external_labels",
        "metrics_generator.storage.remote_write",
    }
    unknown: list[str] = []

    def walk(mapping: dict[str, Any], path: str) -> None:
        section = sections.get(path or "top")
        for key, value in mapping.items():
            child = f"{path}.{key}" if path else key
            if section is None or key not in section["keys"]:
                unknown.append(child)
            elif child not in opaque and isinstance(value, dict) and child in sections:
                walk(value, child)
            elif isinstance(value, dict) and child not in opaque and value:
                unknown.append(f"{child} (no struct listed for its keys)")

    walk(doc, "")
    return unknown


def _prometheus_docs(settings: Settings) -> list[dict[str, Any]]:
    return [
        yaml.safe_load(f.content)
        for f in render(settings)
        if f.path.startswith("prometheus/prometheus")
    ]


def _tempo_doc(settings: Settings) -> dict[str, Any]:
    return yaml.safe_load(next(f.content for f in render(settings) if f.path == "tempo/tempo.yaml"))


def test_the_key_lists_are_for_the_pinned_versions() -> None:
    """Moving a default pin without refreshing the key lists fails here."""
    images = Settings().stack.images
    assert _tag(images.version("prometheus"), "v") in KEYS["prometheus"]
    assert _tag(images.version("tempo"), "v") in KEYS["tempo"]
    assert DEBIAN_PROMETHEUS in KEYS["prometheus"]
    previous = settings_from_mapping(
        {"stack": {"images": {"prometheus": PROMETHEUS_2, "tempo": TEMPO_2}}}
    ).stack.images
    assert _tag(previous.version("prometheus"), "v") in KEYS["prometheus"]
    assert _tag(previous.version("tempo"), "v") in KEYS["tempo"]


@pytest.mark.parametrize(
    ("image", "version"),
    [
        pytest.param(None, "v3.14.0", id="v3.14.0"),
        pytest.param(PROMETHEUS_2, "v2.55.1", id="v2.55.1"),
    ],
)
def test_every_prometheus_key_exists_in_the_pinned_prometheus(
    tmp_path: Path, image: str | None, version: str
) -> None:
    settings = _everything(tmp_path, **({"prometheus": image} if image else {}))
    docs = _prometheus_docs(settings)
    assert len(docs) == 2
    for doc in docs:
        assert _unknown_prometheus_keys(doc, KEYS["prometheus"][version]) == []


def test_the_keys_only_prometheus_3_reads_are_written_for_3_and_only_for_3(tmp_path: Path) -> None:
    three = _prometheus_docs(_everything(tmp_path))[0]
    assert three["global"]["metric_name_validation_scheme"] == "legacy"
    agents = next(j for j in three["scrape_configs"] if j["job_name"] == "agents")
    assert agents["fallback_scrape_protocol"] == "PrometheusText0.0.4"
    # Both keys are unknown to Debian's 2.42: native mode must not pass them on.
    assert _unknown_prometheus_keys(three, KEYS["prometheus"][DEBIAN_PROMETHEUS]) == [
        "global.metric_name_validation_scheme",
        "scrape_configs[5].fallback_scrape_protocol",
    ]
    two = _prometheus_docs(_everything(tmp_path, prometheus=PROMETHEUS_2))[0]
    assert "metric_name_validation_scheme" not in two["global"]
    assert all("fallback_scrape_protocol" not in job for job in two["scrape_configs"])


def test_native_mode_writes_only_keys_debians_prometheus_2_42_reads(tmp_path: Path) -> None:
    settings = _everything(tmp_path)  # the compose pin is Prometheus 3
    stack_dir = tmp_path / "stack"
    write_tree(render(settings), stack_dir)
    natives = [yaml.safe_load(f.content) for f in native_configs(settings, stack_dir)]
    prometheus = [doc for doc in natives if "scrape_configs" in doc]
    assert len(prometheus) == 2
    for doc in prometheus:
        assert _unknown_prometheus_keys(doc, KEYS["prometheus"][DEBIAN_PROMETHEUS]) == []


@pytest.mark.parametrize(
    ("image", "version"),
    [pytest.param(None, "v3.0.3", id="3.0.3"), pytest.param(TEMPO_2, "v2.7.2", id="2.7.2")],
)
def test_every_tempo_key_exists_in_the_pinned_tempo(
    tmp_path: Path, image: str | None, version: str
) -> None:
    doc = _tempo_doc(_everything(tmp_path, **({"tempo": image} if image else {})))
    assert _unknown_tempo_keys(doc, KEYS["tempo"][version]) == []
    remote_write_keys = set(KEYS["prometheus"][DEBIAN_PROMETHEUS]["remote_write"])
    for write in doc["metrics_generator"]["storage"]["remote_write"]:
        assert set(write) <= remote_write_keys


def test_tempo_3_has_no_ingester_or_compactor_and_keeps_the_retention() -> None:
    three = _tempo_doc(settings_from_mapping({"stack": {"trace_retention": "72h"}}))
    assert "ingester" not in three and "compactor" not in three
    assert three["backend_worker"] == {"compaction": {"block_retention": "72h"}}
    # The same document is one Tempo 2 rejects: the check itself tells the majors apart.
    assert "backend_worker" in _unknown_tempo_keys(three, KEYS["tempo"]["v2.7.2"])
    two = _tempo_doc(
        settings_from_mapping({"stack": {"trace_retention": "72h", "images": {"tempo": TEMPO_2}}})
    )
    assert two["compactor"] == {"compaction": {"block_retention": "72h"}}
    assert "ingester" in _unknown_tempo_keys(two, KEYS["tempo"]["v3.0.3"])


def test_healthchecks_run_only_what_each_image_ships() -> None:
    """Prometheus, Alertmanager (busybox) and Grafana (Alpine) have wget; Tempo 3 has nothing."""

    def services(**images: str) -> dict[str, Any]:
        settings = settings_from_mapping({"stack": {"images": images}})
        compose = next(f for f in render(settings) if f.path == "docker-compose.yml")
        return dict(yaml.safe_load(compose.content)["services"])

    current = services()
    assert "healthcheck" not in current["tempo"]
    assert current["grafana"]["depends_on"]["tempo"] == {"condition": "service_started"}
    for name in ("prometheus", "alertmanager", "grafana"):
        assert current[name]["healthcheck"]["test"][:2] == ["CMD", "wget"]
    previous = services(tempo=TEMPO_2)
    assert previous["tempo"]["healthcheck"]["test"][:2] == ["CMD", "wget"]
    assert previous["grafana"]["depends_on"]["tempo"] == {"condition": "service_healthy"}


def test_default_images_are_pinned_to_a_version_and_a_digest() -> None:
    images = Settings().stack.images
    for name in ("prometheus", "alertmanager", "tempo", "grafana"):
        ref = ImageRef.parse(getattr(images, name))
        assert ref.version is not None and ref.digest is not None, name
    assert images.version("prometheus")[0] == 3
    assert images.version("tempo")[0] == 3
    assert images.version("grafana")[0] in (12, 13)


@pytest.mark.parametrize(
    ("images", "key", "fragment"),
    [
        pytest.param(
            {"tempo": "grafana/tempo:1.5.0"}, "stack.images.tempo", "major version 2 or 3"
        ),
        pytest.param(
            {"prometheus": "prom/prometheus:v3.14.0@sha256:beef"},
            "stack.images.prometheus",
            "64 hex digits",
        ),
        pytest.param(
            {"alertmanager": "prom/alertmanager:v0.25.0"}, "stack.images.alertmanager", "0.26"
        ),
        pytest.param({"grafana": "grafana/grafana:main"}, "stack.images.grafana", "major version"),
    ],
)
def test_unsupported_images_are_refused_with_the_key(
    images: dict[str, str], key: str, fragment: str
) -> None:
    with pytest.raises(SettingsError) as info:
        settings_from_mapping({"stack": {"images": images}})
    assert info.value.key == key
    assert fragment in str(info.value)


def test_every_grafana_provisioning_key_exists_in_grafanas_provisioning_format() -> None:
    keys = KEYS["grafana"]["provisioning-v1"]
    files = {f.path: yaml.safe_load(f.content) for f in render(Settings())}
    datasources = files["grafana/provisioning/datasources/meshwatch.yml"]
    assert set(datasources) <= set(keys["datasources_file"])
    for datasource in datasources["datasources"]:
        assert set(datasource) <= set(keys["datasource"]), datasource["name"]
    [dashboards] = [doc for path, doc in files.items() if "provisioning/dashboards/" in path]
    assert set(dashboards) <= set(keys["dashboards_file"])
    for provider in dashboards["providers"]:
        assert set(provider) <= set(keys["provider"])
        assert set(provider["options"]) <= set(keys["provider_options"])
