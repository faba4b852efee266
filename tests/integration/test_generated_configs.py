"""What `meshwatch generate` writes is accepted by the real Prometheus and Alertmanager tools.

Checked for the default settings, for the integration tier's own settings
(1 s intervals, webhook receivers on loopback), and for a deployment using
every receiver kind with its secrets in files, since each changes the YAML.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshwatch.cli import main
from meshwatch.commands import check
from meshwatch.settings import load_settings
from meshwatch.stack.alertmanager_config import PATH as ALERTMANAGER_YML
from meshwatch.stack.prometheus_config import PATH as PROMETHEUS_YML
from tests.integration.helpers.stack import settings_document

pytestmark = pytest.mark.integration


def _all_receiver_kinds(directory: Path) -> dict[str, Any]:
    secrets = {}
    for name in ("slack_url", "routing_key", "smtp_password"):
        path = directory / name
        path.write_text("not-a-real-secret\n", encoding="utf-8")
        secrets[name] = str(path)
    return {
        "stack": {
            "receivers": {
                "critical": {"kind": "pagerduty", "routing_key_file": secrets["routing_key"]},
                "warning": {
                    "kind": "email",
                    "to": "oncall@example.com",
                    "from": "meshwatch@example.com",
                    "smarthost": "smtp.example.com:587",
                    "username": "meshwatch",
                    "password_file": secrets["smtp_password"],
                },
            }
        }
    }


def _settings(kind: str, directory: Path) -> dict[str, Any]:
    if kind == "defaults":
        return {}
    if kind == "integration":
        return settings_document(
            directory,
            name="it-generate",
            webhook_base_url="http://127.0.0.1:9",
            scenario="incident",
            otlp_endpoint="http://127.0.0.1:4318",
            duration=None,
            seed=1,
        )
    return _all_receiver_kinds(directory)


@pytest.fixture(params=["defaults", "integration", "every-receiver-kind"])
def generated(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    config = tmp_path / "meshwatch.yaml"
    config.write_text(yaml.safe_dump(_settings(request.param, tmp_path)), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["generate", "--out", str(out), "--config", str(config)]) == 0
    return out


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}{result.stderr}"


def test_promtool_accepts_the_prometheus_config_and_its_rules(
    generated: Path, promtool: str
) -> None:
    """Debian's promtool (2.42) checks the file the way ``meshwatch check`` does.

    The file is written for the pinned Prometheus 3; a 2.x promtool checks it
    without the two keys only 3.x reads (the keys themselves are checked
    against v3.14.0's config structs in tests/unit/test_stack_versions.py).
    """
    config = generated / PROMETHEUS_YML
    [check_config] = [c for c in check.CHECKS if c.name == "promtool check config"]
    settings = load_settings(generated.parent / "meshwatch.yaml")
    outcome = check_config.run(check.Target(generated, settings))
    assert outcome.ok, outcome.detail
    assert "rule files found" in outcome.detail
    rule_files = sorted((config.parent / "rules").glob("*.yml"))
    assert rule_files, "no rule files were generated next to prometheus.yml"
    _run([promtool, "check", "rules", *map(str, rule_files)])


def test_amtool_accepts_the_alertmanager_config(generated: Path, amtool: str) -> None:
    _run([amtool, "check-config", str(generated / ALERTMANAGER_YML)])
