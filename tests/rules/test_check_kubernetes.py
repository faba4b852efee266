"""``meshwatch check DIR`` on a Kubernetes generation: PrometheusRule groups through promtool."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meshwatch import kubernetes
from meshwatch.cli import main
from meshwatch.commands import check
from meshwatch.generated import write_tree
from meshwatch.settings import settings_from_mapping

pytestmark = pytest.mark.promtool

SECRET_FORM = "kubernetes:\n  alertmanager_config: Secret\n"


@pytest.fixture(params=["AlertmanagerConfig", "Secret"])
def out(request: pytest.FixtureRequest, tmp_path: Path, promtool: str, amtool: str) -> Path:
    config = tmp_path / "meshwatch.yaml"
    config.write_text(SECRET_FORM if request.param == "Secret" else "", encoding="utf-8")
    target = tmp_path / "out"
    write_tree(kubernetes.render(settings_from_mapping(yaml.safe_load(config.read_text()))), target)
    return target


def test_check_passes_on_a_kubernetes_generation(
    out: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(out.parent)
    assert main(["check", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"ok   {c.name}" for c in check.KUBERNETES_CHECKS]


def test_check_runs_promtool_on_the_prometheusrule_groups(
    out: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken expression inside the object fails promtool, and the object no longer matches."""
    monkeypatch.chdir(out.parent)
    path = out / "manifests" / "prometheusrule-meshwatch-alerts.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["spec"]["groups"][0]["rules"][0]["expr"] = "sum(rate(x[5m])"
    path.write_text(yaml.safe_dump(doc))
    assert main(["check", str(out)]) == 1
    captured = capsys.readouterr()
    assert "FAIL promtool check rules (PrometheusRule groups)" in captured.out
    assert "FAIL PrometheusRule objects hold the rule files' groups" in captured.out
    assert "ok   promtool check rules\n" in captured.out
    assert (
        "differs from the settings: manifests/prometheusrule-meshwatch-alerts.yaml" in captured.err
    )
