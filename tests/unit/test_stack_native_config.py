"""Native mode runs the generated configs with compose addresses rewritten for the host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshwatch.generated import write_tree
from meshwatch.settings import Settings, settings_from_mapping
from meshwatch.stack import render
from meshwatch.stack.runner.native import NativeStack
from meshwatch.stack.runner.native_config import native_configs

RULE = "groups:\n  - name: meshwatch-test\n    rules:\n      - alert: AnyTargetDown\n        expr: up == 0\n"


def _native(settings: Settings, tmp_path: Path) -> dict[str, Any]:
    stack_dir = tmp_path / "stack"
    write_tree(render(settings), stack_dir)
    return {f.path: yaml.safe_load(f.content) for f in native_configs(settings, stack_dir)}


def _targets(doc: dict[str, Any]) -> dict[str, list[str]]:
    return {j["job_name"]: j["static_configs"][0]["targets"] for j in doc["scrape_configs"]}


def test_prometheus_addresses_point_at_host_ports_and_compose_only_jobs_are_dropped(
    tmp_path: Path,
) -> None:
    settings = settings_from_mapping(
        {
            "stack": {
                "ports": {"prometheus": 19090, "alertmanager": 19093, "demo_metrics": 18000},
                "agent_targets": ["localhost:9464", "agents.internal:9464"],
            }
        }
    )
    doc = _native(settings, tmp_path)["prometheus.yml"]
    assert _targets(doc) == {
        "prometheus": ["127.0.0.1:19090"],
        "alertmanager": ["127.0.0.1:19093"],
        "meshwatch-demo": ["127.0.0.1:18000"],
        "agents": ["localhost:9464", "agents.internal:9464"],
    }
    assert doc["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "127.0.0.1:19093"
    ]
    assert doc["rule_files"] == [str(tmp_path / "stack" / "prometheus" / "rules" / "*.yml")]


def test_every_native_component_is_scraped_where_it_listens_on_the_bind_address(
    tmp_path: Path,
) -> None:
    settings = settings_from_mapping(
        {"stack": {"bind_address": "::", "ports": {"prometheus": 19090, "demo_metrics": 18000}}}
    )
    targets = _targets(_native(settings, tmp_path)["prometheus.yml"])
    assert targets["prometheus"] == ["[::1]:19090"]
    assert targets["meshwatch-demo"] == ["[::1]:18000"]
    argv = NativeStack(settings, tmp_path / "work")._argv("demo")
    assert argv[argv.index("--addr") + 1] == "::"


def test_everything_but_addresses_is_the_generated_document(tmp_path: Path) -> None:
    settings = Settings()
    native = _native(settings, tmp_path)["prometheus.yml"]
    compose = yaml.safe_load((tmp_path / "stack" / "prometheus" / "prometheus.yml").read_text())
    # Only what Prometheus 3 alone reads is left out (Debian's 2.42 would refuse it).
    assert compose["global"].pop("metric_name_validation_scheme") == "legacy"
    assert native["global"] == compose["global"]
    assert set(native) == set(compose)


def test_alertmanager_secrets_and_webhooks_point_at_the_host(tmp_path: Path) -> None:
    settings = settings_from_mapping(
        {
            "stack": {
                "receivers": {
                    "critical": {
                        "kind": "slack",
                        "channel": "#pages",
                        "url_file": "/etc/meshwatch/slack",
                    },
                    "warning": {"url": "http://localhost:9099/hook"},
                }
            }
        }
    )
    doc = _native(settings, tmp_path)["alertmanager.yml"]
    receivers = {r["name"]: r for r in doc["receivers"]}
    assert receivers["critical"]["slack_configs"][0]["api_url_file"] == "/etc/meshwatch/slack"
    assert receivers["warning"]["webhook_configs"][0]["url"] == "http://localhost:9099/hook"
    compose = yaml.safe_load((tmp_path / "stack" / "alertmanager" / "alertmanager.yml").read_text())
    assert doc["route"] == compose["route"]
    assert doc["inhibit_rules"] == compose["inhibit_rules"]


def _webhook_urls(doc: dict[str, Any]) -> dict[str, str]:
    return {r["name"]: r["webhook_configs"][0]["url"] for r in doc["receivers"]}


@pytest.mark.parametrize(
    ("stack", "expected"),
    [
        pytest.param(
            {},
            {
                "critical": "http://127.0.0.1:19099/critical",
                "warning": "http://127.0.0.1:19099/warning",
            },
            id="defaults",
        ),
        pytest.param(
            {"bind_address": "::"},
            {"critical": "http://[::1]:19099/critical", "warning": "http://[::1]:19099/warning"},
            id="wildcard-bind",
        ),
        pytest.param(
            {"alert_sink": False},
            {
                "critical": "http://127.0.0.1:19099/critical",
                "warning": "http://127.0.0.1:19099/warning",
            },
            id="sink-run-by-the-user",
        ),
        pytest.param(
            {"receivers": {"critical": {"url": "http://localhost:9099/hook"}}},
            {"critical": "http://localhost:9099/hook", "warning": "http://127.0.0.1:19099/warning"},
            id="one-explicit-webhook",
        ),
    ],
)
def test_receivers_without_a_url_post_to_the_sink_on_the_host(
    tmp_path: Path, stack: dict[str, Any], expected: dict[str, str]
) -> None:
    settings = settings_from_mapping({"stack": {"ports": {"alert_sink": 19099}, **stack}})
    assert _webhook_urls(_native(settings, tmp_path)["alertmanager.yml"]) == expected


def test_native_mode_runs_the_sink_before_alertmanager_only_when_a_receiver_uses_it(
    tmp_path: Path,
) -> None:
    settings = settings_from_mapping({"stack": {"ports": {"alert_sink": 19099}}})
    stack = NativeStack(settings, tmp_path / "work")
    assert stack.components() == ["prometheus", "alert-sink", "alertmanager", "demo"]
    argv = stack._argv("alert-sink")
    assert argv[1:4] == ["-m", "meshwatch", "alert-sink"]
    assert argv[argv.index("--port") + 1] == "19099"
    assert argv[argv.index("--addr") + 1] == "127.0.0.1"
    assert argv[argv.index("--log") + 1] == str(
        tmp_path / "work" / "logs" / "alert-notifications.jsonl"
    )
    assert stack.url("alert-sink") == "http://127.0.0.1:19099"
    for off in (
        {"alert_sink": False},
        {"receivers": {"critical": {"url": "http://a/"}, "warning": {"url": "http://b/"}}},
    ):
        others = NativeStack(settings_from_mapping({"stack": off}), tmp_path / "work")
        assert "alert-sink" not in others.components(), off
