"""SLO settings and the rules they generate: defaults, edits, removal, and refused settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from meshwatch import alerts
from meshwatch.alerts import slos
from meshwatch.alerts.slis import SliEvents
from meshwatch.cli import main
from meshwatch.instrumentation.catalogue import GOVERNANCE_LATENCY
from meshwatch.settings import Duration, Settings, SettingsError, settings_from_mapping

TASKS = {"name": "tasks", "sli": "task_success", "objective": 99.9}


def _rules(settings: Settings, path: str) -> list[dict]:
    files = {f.path: f.content for f in alerts.render(settings)}
    return [rule for group in yaml.safe_load(files[path])["groups"] for rule in group["rules"]]


def _burn_rules(settings: Settings) -> list[dict]:
    return [r for r in _rules(settings, alerts.ALERTS_FILE) if r["alert"] == slos.SLO_ALERT]


def test_the_defaults_are_a_governance_latency_and_a_task_success_slo() -> None:
    objectives = Settings().slos.objectives
    assert [(s.name, s.sli, s.objective, s.window) for s in objectives] == [
        ("governance-latency", "governance_latency", 99.0, "28d"),
        ("task-success", "task_success", 95.0, "28d"),
    ]
    assert objectives[0].latency_target in GOVERNANCE_LATENCY.buckets


def test_the_default_alerts_are_the_workbook_pairs_for_every_slo() -> None:
    rules = _burn_rules(Settings())
    pairs = [
        (r["labels"]["slo"], r["labels"]["long_window"], r["labels"]["short_window"]) for r in rules
    ]
    workbook = [("1h", "5m"), ("6h", "30m"), ("1d", "2h"), ("3d", "6h")]
    assert pairs == [(slo, *w) for slo in ("governance-latency", "task-success") for w in workbook]
    severities = [r["labels"]["severity"] for r in rules[:4]]
    assert severities == ["critical", "critical", "warning", "warning"]
    assert rules[0]["expr"] == (
        'slo:sli_error:ratio_rate1h{slo="governance-latency"} / 0.01 > 14.4 and '
        'slo:sli_error:ratio_rate5m{slo="governance-latency"} / 0.01 > 14.4'
    )
    assert "for" not in rules[0]
    assert rules[0]["annotations"]["runbook_url"].endswith("/SLOErrorBudgetBurn.md")


def test_every_window_is_recorded_once_per_slo_and_read_by_the_alerts() -> None:
    recorded = [
        (r["record"], r["labels"]["slo"])
        for r in _rules(Settings(), alerts.RECORDING_FILE)
        if r["record"].startswith("slo:")
    ]
    assert len(recorded) == len(set(recorded))
    windows = [name for name, slo in recorded if slo == "task-success" and "ratio_rate" in name]
    assert windows == [
        f"slo:sli_error:ratio_rate{w}" for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
    ]
    read = {m for r in _burn_rules(Settings()) for m in re.findall(r"slo:[a-z_:0-9]+", r["expr"])}
    assert read <= set(windows)


def test_an_edited_slo_and_pairs_reach_the_rules() -> None:
    settings = settings_from_mapping(
        {
            "slos": {
                "objectives": [{**TASKS, "window": "30d"}],
                "burn_rate_alerts": [
                    {"factor": 20, "long_window": "90m", "short_window": "10m", "severity": "info"}
                ],
                "exhaustion_window": "6h",
            }
        }
    )
    (rule,) = _burn_rules(settings)
    assert rule["labels"] == {
        "long_window": "1h30m",
        "short_window": "10m",
        "severity": "info",
        "slo": "tasks",
    }
    assert "/ 0.001 > 20" in rule["expr"] and "ratio_rate1h30m" in rule["expr"]
    recorded = {r["record"]: r["expr"] for r in _rules(settings, alerts.RECORDING_FILE)}
    assert "slo:sli_error:ratio_rate10m" in recorded
    assert "[30d]" in recorded[slos.PERIOD_ERROR_RATIO]
    assert "* 2592000 /" in recorded[slos.BUDGET_EXHAUSTION]
    assert "ratio_rate6h" in recorded[slos.BUDGET_EXHAUSTION]


def test_removing_every_slo_leaves_no_slo_rule_or_test() -> None:
    settings = settings_from_mapping({"slos": {"objectives": []}})
    files = {f.path: f.content for f in alerts.render(settings)}
    assert "slo:" not in files[alerts.RECORDING_FILE]
    assert slos.SLO_ALERT not in files[alerts.ALERTS_FILE]
    assert f"{alerts.TESTS_DIR}/{slos.SLO_ALERT}.test.yml" not in files


def test_disabling_the_burn_alert_keeps_the_slo_series() -> None:
    settings = settings_from_mapping({"alerts": {"disabled": [slos.SLO_ALERT]}})
    assert _burn_rules(settings) == []
    assert "slo:error_budget:remaining_ratio" in {
        r["record"] for r in _rules(settings, alerts.RECORDING_FILE)
    }


@pytest.mark.parametrize(
    ("sli", "bad", "total"),
    [
        (
            "task_success",
            "(sum(rate(agent_tasks_failed_total[1h])) or vector(0))",
            "(sum(rate(agent_tasks_completed_total[1h])) or vector(0)) + "
            "(sum(rate(agent_tasks_failed_total[1h])) or vector(0))",
        ),
        (
            "saga_success",
            '(sum(rate(agent_hypervisor_sagas_total{outcome="escalated"}[1h])) or vector(0))',
            "(sum(rate(agent_hypervisor_sagas_total[1h])) or vector(0))",
        ),
        (
            "llm_success",
            "(sum(rate(agent_llm_call_errors_total[1h])) or vector(0))",
            "(sum(rate(agent_llm_calls_total[1h])) or vector(0))",
        ),
        (
            "governance_latency",
            "(sum(rate(agent_governance_evaluation_latency_seconds_count[1h])) - "
            'sum(rate(agent_governance_evaluation_latency_seconds_bucket{le="1.0"}[1h])) '
            "or vector(0))",
            "(sum(rate(agent_governance_evaluation_latency_seconds_count[1h])) or vector(0))",
        ),
    ],
)
def test_each_sli_counts_bad_and_all_events_fleet_wide(sli: str, bad: str, total: str) -> None:
    target = {"latency_target": 1.0} if sli == "governance_latency" else {}
    slo = settings_from_mapping(
        {"slos": {"objectives": [{"name": "x", "sli": sli, "objective": 99, **target}]}}
    ).slos.objectives[0]
    events = SliEvents(slo)
    assert (events.bad("1h"), events.total("1h")) == (bad, total)


@pytest.mark.parametrize(
    ("slo", "key", "message"),
    [
        (
            {"name": "lat", "sli": "governance_latency", "objective": 99, "latency_target": 0.2},
            "slos.objectives[0].latency_target",
            "0.2s is not a bucket bound of agent_governance_evaluation_latency_seconds",
        ),
        (
            {"name": "lat", "sli": "governance_latency", "objective": 99},
            "slos.objectives[0].latency_target",
            "needs a latency_target",
        ),
        ({**TASKS, "latency_target": 0.1}, "slos.objectives[0].latency_target", "only a"),
        ({**TASKS, "window": "7d"}, "slos.objectives[0].window", "must be 28d or 30d"),
        ({**TASKS, "objective": 100}, "slos.objectives[0].objective", "strictly between"),
        ({**TASKS, "objective": 90}, "slos.objectives[0].objective", "raise the objective"),
        ({**TASKS, "name": "Tasks"}, "slos.objectives[0].name", "lowercase"),
        ({**TASKS, "sli": "llm"}, "slos.objectives[0].sli", "must be one of"),
    ],
    ids=[
        "target-between-buckets",
        "latency-without-target",
        "target-on-another-sli",
        "window",
        "objective-100",
        "budget-too-wide-for-14.4x",
        "name",
        "unknown-sli",
    ],
)
def test_bad_slo_settings_are_errors_naming_the_key(slo: dict, key: str, message: str) -> None:
    with pytest.raises(SettingsError) as info:
        alerts.render(settings_from_mapping({"slos": {"objectives": [slo]}}))
    assert info.value.key == key
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("slos_settings", "key"),
    [
        ({"objectives": [TASKS, TASKS]}, "slos.objectives[1].name"),
        (
            {
                "burn_rate_alerts": [
                    {"factor": 2, "long_window": "1h", "short_window": "1h", "severity": "warning"}
                ]
            },
            "slos.burn_rate_alerts[0].short_window",
        ),
        (
            {
                "burn_rate_alerts": [
                    {"factor": 2, "long_window": "1h", "short_window": "5m", "severity": "warning"},
                    {"factor": 9, "long_window": "60m", "short_window": "5m", "severity": "info"},
                ]
            },
            "slos.burn_rate_alerts[1]",
        ),
        (
            {
                "burn_rate_alerts": [
                    {"factor": 0, "long_window": "1h", "short_window": "5m", "severity": "warning"}
                ]
            },
            "slos.burn_rate_alerts[0].factor",
        ),
        (
            {
                "burn_rate_alerts": [
                    {"factor": 2, "long_window": "1h", "short_window": "30s", "severity": "info"}
                ]
            },
            "slos.burn_rate_alerts[0].short_window",
        ),
    ],
    ids=["duplicate-name", "short-not-shorter", "same-pair-twice", "zero-factor", "seconds"],
)
def test_bad_slo_section_settings_are_errors_naming_the_key(slos_settings: dict, key: str) -> None:
    with pytest.raises(SettingsError) as info:
        settings_from_mapping({"slos": slos_settings})
    assert info.value.key == key


def test_generate_refuses_a_latency_target_between_buckets_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "meshwatch.yaml"
    config.write_text(
        "slos:\n  objectives:\n    - {name: lat, sli: governance_latency, objective: 99,"
        " latency_target: 0.3}\n"
    )
    target = tmp_path / "generated"
    assert main(["generate", "--out", str(target), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "slos.objectives[0].latency_target: 0.3s is not a bucket bound" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not target.exists()


def test_slo_record_names_are_recognised_for_any_window() -> None:
    assert slos.is_slo_record("slo:sli_error:ratio_rate1h30m")
    assert slos.is_slo_record(slos.BUDGET_EXHAUSTION)
    assert not slos.is_slo_record("slo:sli_error:ratio_rate")
    assert not slos.is_slo_record("slo:sli_error:ratio_rateX")
    assert slos.ratio_record(Duration("60m")) == "slo:sli_error:ratio_rate1h"
