"""The generated configs pass the real tools: ``promtool check config`` and ``amtool check-config``.

promtool also loads every file the ``rule_files`` glob matches, so the check
runs with a rule file in place, as in a real generation. The native runner's
configs (one Prometheus, or two with HA and remote writes) are checked too.
Short runs of the real tools: the rules-and-tools tier.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from meshwatch.generated import GeneratedFile, write_tree
from meshwatch.settings import Settings, settings_from_mapping
from meshwatch.stack import render
from meshwatch.stack.runner.native_config import native_configs
from tests.unit.test_stack_native_config import RULE as NATIVE_RULE
from tests.unit.test_stack_scale_out import _mimir

pytestmark = pytest.mark.promtool

RULE = GeneratedFile(
    "prometheus/rules/meshwatch-test.yml",
    "groups:\n  - name: meshwatch-test\n    rules:\n"
    "      - alert: AnyTargetDown\n        expr: up == 0\n        for: 1m\n"
    "        labels: {severity: critical}\n",
)


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)


def _write(settings: Settings, out: Path) -> Path:
    write_tree([*render(settings), RULE], out)
    return out


# The promtool here is Debian's 2.42: it checks the compose file written for the
# Prometheus 2 pin. The Prometheus 3 file's keys are checked against v3.14.0's own
# config structs (test_stack_versions.py), and its native copy runs in the integration tier.
PROMETHEUS_2 = {"images": {"prometheus": "prom/prometheus:v2.55.1"}}


@pytest.mark.parametrize(
    "stack",
    [
        pytest.param(PROMETHEUS_2, id="defaults"),
        pytest.param(
            {
                **PROMETHEUS_2,
                "agent_targets": ["127.0.0.1:9464", "agents.example:9464"],
                "scrape_interval": "5s",
                "demo": {"enabled": False},
            },
            id="agents-no-demo",
        ),
    ],
)
def test_prometheus_config_passes_promtool(
    tmp_path: Path, promtool: str, stack: dict[str, Any]
) -> None:
    out = _write(settings_from_mapping({"stack": stack}), tmp_path / "out")
    result = _run(promtool, "check", "config", str(out / "prometheus" / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout
    assert "SUCCESS: 1 rules found" in result.stdout


def test_promtool_notices_a_broken_rule_file(tmp_path: Path, promtool: str) -> None:
    """The check above is meaningful: the glob really loads the rule files."""
    out = _write(settings_from_mapping({"stack": PROMETHEUS_2}), tmp_path / "out")
    (out / "prometheus" / "rules" / "broken.yml").write_text("groups: [{name: x, rules: [{}]}]\n")
    result = _run(promtool, "check", "config", str(out / "prometheus" / "prometheus.yml"))
    assert result.returncode != 0


@pytest.mark.parametrize(
    "receivers",
    [
        pytest.param({}, id="default-webhooks"),
        pytest.param(
            {
                "critical": {"kind": "pagerduty", "routing_key_file": "/etc/mw/pd"},
                "warning": {
                    "kind": "slack",
                    "channel": "#alerts",
                    "url_file": "/etc/mw/slack",
                    "send_resolved": False,
                },
            },
            id="pagerduty-slack",
        ),
        pytest.param(
            {
                "critical": {"url": "https://hooks.example.org/meshwatch"},
                "warning": {
                    "kind": "email",
                    "to": "ops@example.org",
                    "from": "meshwatch@example.org",
                    "smarthost": "smtp.example.org:587",
                    "username": "meshwatch",
                    "password_file": "/etc/mw/smtp",
                },
            },
            id="webhook-email",
        ),
    ],
)
def test_alertmanager_config_passes_amtool(
    tmp_path: Path, amtool: str, receivers: dict[str, Any]
) -> None:
    # Webhook `url_file` is left out: Alertmanager reads it from 0.26 on, and the
    # amtool here is 0.25 (the compose image is 0.27).
    settings = settings_from_mapping({"stack": {"receivers": receivers}})
    out = _write(settings, tmp_path / "out")
    result = _run(amtool, "check-config", str(out / "alertmanager" / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 inhibit rules" in result.stdout
    assert "2 receivers" in result.stdout


# --- native mode: the configs the native runner writes ---------------------------------


def test_native_prometheus_config_passes_promtool_with_rules_present(
    tmp_path: Path, promtool: str
) -> None:
    settings = Settings()
    stack_dir = tmp_path / "stack"
    write_tree(
        [*render(settings), GeneratedFile("prometheus/rules/test.yml", NATIVE_RULE)], stack_dir
    )
    native_dir = tmp_path / "native"
    write_tree(native_configs(settings, stack_dir), native_dir)
    result = subprocess.run(
        [promtool, "check", "config", str(native_dir / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


@pytest.mark.parametrize("ha", [False, True], ids=["single", "ha"])
def test_remote_write_and_ha_configs_pass_promtool(tmp_path: Path, promtool: str, ha: bool) -> None:
    (tmp_path / "mimir-password").write_text("s3cret\n")
    (tmp_path / "thanos-token").write_text("t0ken\n")
    settings = _mimir(tmp_path, ha=ha)
    stack_dir = tmp_path / "stack"
    write_tree([*render(settings), RULE], stack_dir)
    native_dir = tmp_path / "native"
    write_tree(native_configs(settings, stack_dir), native_dir)
    for path in sorted(native_dir.glob("prometheus*.yml")):
        result = subprocess.run(
            [promtool, "check", "config", str(path)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    assert len(list(native_dir.glob("prometheus*.yml"))) == (2 if ha else 1)
