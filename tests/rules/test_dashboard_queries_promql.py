"""Every dashboard query is valid PromQL, as the real ``promtool`` parses it (rules-and-tools tier)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.test_dashboards_queries import PROM_QUERIES, _variable_queries, as_plain_promql

pytestmark = pytest.mark.promtool


def test_every_prometheus_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    """promtool parses every expression (as a recording rule each) exactly as Prometheus would."""
    exprs = [as_plain_promql(q.expr) for q in PROM_QUERIES]
    exprs += [name for _, name in _variable_queries()]
    rules = [{"record": f"dashboard:check:expr{i}", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout


def test_promtool_check_catches_a_broken_expression(promtool: str, tmp_path: Path) -> None:
    """The check above can fail: a malformed query makes promtool exit non-zero."""
    path = tmp_path / "broken.yml"
    broken = as_plain_promql('sum by (agent_did (rate(x{agent_did=~"$agent"}[$__rate_interval]))')
    rules = [{"record": "dashboard:check:broken", "expr": broken}]
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
