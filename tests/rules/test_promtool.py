"""The generated rules pass ``promtool check rules`` and their promtool unit tests pass.

The unit tests are rendered from settings (see ``meshwatch.alerts.ruletests``); the
last tests here show they discriminate: run against rules built differently, they fail.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from meshwatch import alerts
from meshwatch.alerts.render import rule_file
from meshwatch.settings import settings_from_mapping
from tests.rules.conftest import VARIANTS, run_promtool

pytestmark = pytest.mark.promtool


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_promtool_check_rules_is_clean(
    promtool: str, rendered: Callable[[str], Path], variant: str
) -> None:
    rules = rendered(variant) / alerts.RULES_DIR
    files = sorted(rules.glob("*.yml"))
    assert [f.name for f in files] == ["meshwatch-alerts.yml", "meshwatch-recording.yml"]
    done = run_promtool(promtool, "check", "rules", *files)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(files)


@pytest.mark.parametrize("alertname", alerts.ALERT_NAMES)
def test_each_alert_passes_its_promtool_cases(
    promtool: str, rendered: Callable[[str], Path], alertname: str
) -> None:
    test_file = rendered("defaults") / alerts.TESTS_DIR / f"{alertname}.test.yml"
    done = run_promtool(promtool, "test", "rules", test_file)
    assert done.returncode == 0, done.stdout + done.stderr


def test_recording_rules_pass_their_promtool_cases(
    promtool: str, rendered: Callable[[str], Path]
) -> None:
    done = run_promtool(
        promtool, "test", "rules", rendered("defaults") / alerts.TESTS_DIR / "recording.test.yml"
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("variant", ["custom", "edges"])
def test_cases_rendered_for_other_settings_pass_too(
    promtool: str, rendered: Callable[[str], Path], variant: str
) -> None:
    files = sorted((rendered(variant) / alerts.TESTS_DIR).glob("*.test.yml"))
    assert len(files) == len(alerts.ALERT_NAMES) + 1
    done = run_promtool(promtool, "test", "rules", *files)
    assert done.returncode == 0, done.stdout + done.stderr


def _copy(rendered: Path, tmp_path: Path) -> Path:
    target = tmp_path / "out"
    shutil.copytree(rendered, target)
    return target / alerts.RULES_DIR


def _failing_cases(promtool: str, test_file: Path) -> str:
    done = run_promtool(promtool, "test", "rules", test_file)
    assert done.returncode != 0, "the cases should have caught the changed rules"
    return done.stdout + done.stderr


def test_cases_fail_against_rules_with_another_threshold(
    promtool: str, rendered: Callable[[str], Path], tmp_path: Path
) -> None:
    rules = _copy(rendered("defaults"), tmp_path)
    other = settings_from_mapping(
        {"alerts": {"ring_breach_rate": {"threshold": 3.0, "critical_threshold": None}}}
    )
    (rules / "meshwatch-alerts.yml").write_text(rule_file(alerts.alert_groups(other.alerts)))
    output = _failing_cases(promtool, rules / "tests" / "HighRingBreachRate.test.yml")
    assert "fires warning when an agent's breach rate over its sessions is 1.25" in output


RATIO_ALERTS = (
    "AgentTaskErrorRateHigh",
    "AgentTaskSuccessRateLow",
    "GovernanceDenialRatioHigh",
    "SagaFailureRatioHigh",
)
GUARD = re.compile(r" and on\([a-z_]*\) \(.*\) \* 300 >= 10$", re.MULTILINE)


def _failed_case_names(output: str) -> set[str]:
    return set(re.findall(r"^\s*name: (.*),$", output, re.MULTILINE))


@pytest.mark.parametrize("mistake", ["no-guard", "higher-minimum"])
@pytest.mark.parametrize("alertname", RATIO_ALERTS)
def test_ratio_cases_catch_a_missing_or_different_volume_guard(
    promtool: str, rendered: Callable[[str], Path], tmp_path: Path, alertname: str, mistake: str
) -> None:
    """Exactly the cases around the minimum fail, so the others prove the threshold alone.

    Without the guard, the low-volume agent pages (and, for a per-agent ratio,
    so does the low-volume agent beside the one that should fire). With a
    minimum of 20 instead of 10, the case with 15 events stays silent.
    """
    rules = _copy(rendered("defaults"), tmp_path)
    path = rules / "meshwatch-alerts.yml"
    text = path.read_text()
    assert len(GUARD.findall(text)) == 5  # 4 alerts, one of them with a critical tier
    if mistake == "no-guard":
        path.write_text(GUARD.sub("", text))
    else:
        path.write_text(text.replace("* 300 >= 10\n", "* 300 >= 20\n"))
    failed = _failed_case_names(_failing_cases(promtool, rules / "tests" / f"{alertname}.test.yml"))
    below = {n for n in failed if n.startswith("stays silent") and "below the minimum 10" in n}
    past = {n for n in failed if n.startswith("fires") and "past the minimum 10" in n}
    if mistake == "higher-minimum":
        assert failed == past and len(past) == 1
    elif alertname == "GovernanceDenialRatioHigh":  # fleet-wide: no second subject
        assert failed == below and len(below) == 1
    else:
        assert failed == below | past and len(below) == len(past) == 1


@pytest.mark.parametrize(
    ("rules_file", "find", "replace", "test_name", "case"),
    [
        pytest.param(
            "meshwatch-alerts.yml",
            " and on(agent_did) agent_hypervisor_ring_elevated == 1",
            "",
            "ElevationTooLong",
            "stays silent after an elevation of 3600s that already ended",
            id="elevation-without-the-still-elevated-guard",
        ),
        pytest.param(
            "meshwatch-alerts.yml",
            " and on(agent_did) (",
            " and on() (",
            "AgentTaskErrorRateHigh",
            "and not for one with only 5",
            id="volume-guard-pooled-over-agents",
        ),
        pytest.param(
            "meshwatch-recording.yml",
            "rate5m_baseline_stddev offset 15m > 0)",
            "rate5m_baseline_stddev offset 15m)",
            "AgentTaskRateAnomaly",
            "stays silent when the baseline is perfectly flat",
            id="zscore-without-the-zero-deviation-guard",
        ),
        pytest.param(
            "meshwatch-recording.yml",
            "sum by (le) (rate(agent_governance_evaluation_latency_seconds_bucket[5m]))",
            "sum by (le, decision) (rate(agent_governance_evaluation_latency_seconds_bucket[5m]))",
            "GovernanceLatencyHigh",
            "fires with a coarser bucket layout",
            id="latency-quantile-per-decision-instead-of-summed-by-le",
        ),
        pytest.param(
            "meshwatch-alerts.yml",
            " or (sum by (agent_did) (agent_hypervisor_saga_escalations_total) > 0 unless "
            "sum by (agent_did) (agent_hypervisor_saga_escalations_total offset 5m))",
            "",
            "SagaEscalated",
            "fires on an agent's first escalation, whose counter series is born at 1",
            id="escalation-without-the-new-series-arm",
        ),
    ],
)
def test_cases_catch_each_known_mistake(
    promtool: str,
    rendered: Callable[[str], Path],
    tmp_path: Path,
    rules_file: str,
    find: str,
    replace: str,
    test_name: str,
    case: str,
) -> None:
    rules = _copy(rendered("defaults"), tmp_path)
    path = rules / rules_file
    text = path.read_text()
    assert find in text
    path.write_text(text.replace(find, replace))
    assert case in _failing_cases(promtool, rules / "tests" / f"{test_name}.test.yml")
