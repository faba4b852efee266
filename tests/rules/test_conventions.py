"""Conventions every generated rule follows, each checked on the rendered output."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from meshwatch import alerts
from meshwatch.alerts.catalogue import ALERT_CATALOGUE
from meshwatch.alerts.external_metrics import EXTERNAL_METRICS
from meshwatch.alerts.recording import RECORDING_RULES, recording_rules
from meshwatch.alerts.render import to_yaml
from meshwatch.alerts.slos import SLO_ALERT
from meshwatch.alerts.slos import recording_rules as slo_recording_rules
from meshwatch.instrumentation.catalogue import CATALOGUE
from meshwatch.settings import (
    AnomalyAlert,
    Duration,
    EventAlert,
    PredictiveAlert,
    Settings,
    SettingsError,
    ThresholdAlert,
    settings_from_mapping,
)
from meshwatch.settings.alerts import RatioAlert
from tests.rules.conftest import CUSTOM, VARIANTS

RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks"
RUNBOOK_SECTIONS = ("## Meaning", "## Impact", "## Diagnosis", "## Mitigation")
PROMQL_WORDS = {"and", "or", "unless", "offset", "bool", "inf", "nan"}


def _rendered(settings: Settings) -> dict[str, str]:
    return {f.path: f.content for f in alerts.render(settings)}


def _alert_rules(settings: Settings) -> list[dict]:
    text = _rendered(settings).get(alerts.ALERTS_FILE)
    if text is None:
        return []
    return [rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"]]


def _all_exprs(settings: Settings) -> list[str]:
    files = _rendered(settings)
    exprs = []
    for path in (alerts.RECORDING_FILE, alerts.ALERTS_FILE):
        for group in yaml.safe_load(files[path])["groups"]:
            exprs.extend(rule["expr"] for rule in group["rules"])
    return exprs


def metric_names(expr: str) -> set[str]:
    """The series names an expression selects (strings, ranges, matchers, groupings removed)."""
    stripped = re.sub(r'"[^"]*"', "", expr)
    stripped = re.sub(r"\[[^\]]*\]", "", stripped)
    stripped = re.sub(r"\{[^}]*\}", "", stripped)
    stripped = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", stripped
    )
    names = set()
    for match in re.finditer(r"(?<![\w.:])[a-zA-Z_:][a-zA-Z0-9_:]*", stripped):
        is_call = re.match(r"\s*\(", stripped[match.end() :])
        if not is_call and match.group().lower() not in PROMQL_WORDS:
            names.add(match.group())
    return names


def test_the_metric_name_scanner_finds_names_and_nothing_else() -> None:
    expr = (
        'sum by (agent_did) (rate(foo_total{a="b c"}[5m])) / on(x) bar > 1e-05 '
        "and abs(ns:baz:rate5m offset 15m) > bool 3"
    )
    assert metric_names(expr) == {"foo_total", "bar", "ns:baz:rate5m"}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_no_rule_reads_a_metric_nobody_declares(variant: str) -> None:
    settings = settings_from_mapping(VARIANTS[variant])
    known = (
        CATALOGUE.series_names()
        | EXTERNAL_METRICS.series_names()
        | {r.record for r in recording_rules(settings.alerts)}
        | {r.record for r in slo_recording_rules(settings.slos)}
    )
    unknown = {
        name for expr in _all_exprs(settings) for name in metric_names(expr) if name not in known
    }
    assert unknown == set()


def test_every_alert_has_severity_summary_description_and_runbook_url() -> None:
    settings = Settings()
    rules = _alert_rules(settings)
    assert {r["alert"] for r in rules} == set(alerts.ALERT_NAMES)
    for rule in rules:
        assert rule["labels"]["severity"] in ("info", "warning", "critical")
        annotations = rule["annotations"]
        assert set(annotations) >= {"summary", "description", "runbook_url"}
        assert annotations["runbook_url"] == settings.alerts.runbook_url(rule["alert"])
        assert annotations["runbook_url"].endswith(f"/docs/runbooks/{rule['alert']}.md")
        if rule["alert"] != "TargetDown":  # up == 0: the value says nothing
            assert "{{ $value | humanize" in annotations["description"], rule["alert"]


def test_descriptions_name_the_labels_the_alert_keeps() -> None:
    for rule in _alert_rules(Settings()):
        if "agent_did" in rule["expr"] and "sum(" not in rule["expr"]:
            assert "$labels.agent_did" in rule["annotations"]["description"], rule["alert"]


@pytest.mark.parametrize("alertname", alerts.ALERT_NAMES)
def test_every_alert_has_a_runbook_with_the_four_sections(alertname: str) -> None:
    runbook = RUNBOOKS / f"{alertname}.md"
    assert runbook.is_file()
    text = runbook.read_text()
    assert text.startswith(f"# {alertname}\n")
    positions = [text.find(section + "\n") for section in RUNBOOK_SECTIONS]
    assert -1 not in positions and positions == sorted(positions)
    diagnosis = text[positions[2] : positions[3]]
    assert "```promql" in diagnosis


def test_every_runbook_belongs_to_an_alert() -> None:
    names = {p.stem for p in RUNBOOKS.glob("*.md")} - {"README"}
    assert names == set(alerts.ALERT_NAMES)


def test_every_alert_setting_drives_exactly_one_alert() -> None:
    alert_types = (ThresholdAlert, EventAlert, PredictiveAlert, AnomalyAlert)
    defaults = Settings().alerts
    fields = {
        f.name
        for f in dataclasses.fields(defaults)
        if isinstance(getattr(defaults, f.name), alert_types)
    }
    assert sorted(a.key for a in ALERT_CATALOGUE) == sorted(fields)


def test_rendering_is_deterministic_and_canonical() -> None:
    first, second = alerts.render(Settings()), alerts.render(Settings())
    assert first == second
    assert [f.path for f in first] == sorted(f.path for f in first)
    for f in first:
        assert f.content == to_yaml(yaml.safe_load(f.content)), f"{f.path} is not sorted YAML"


def test_settings_flow_into_thresholds_durations_severities_and_links() -> None:
    settings = settings_from_mapping(CUSTOM)
    rules = {}
    for rule in _alert_rules(settings):
        rules.setdefault(rule["alert"], []).append(rule)
    breach = rules["HighRingBreachRate"]
    assert len(breach) == 1, "critical_threshold: null drops the critical tier"
    assert breach[0]["expr"].endswith("> 1.5") and breach[0]["for"] == "5m"
    assert "[10m]" in breach[0]["expr"], "rate_window 10m computes the rate inline"
    elevation = rules["ElevationTooLong"]
    assert [r["labels"]["severity"] for r in elevation] == ["info", "critical"]
    assert "> 120 " in elevation[0]["expr"] and "> 600 " in elevation[1]["expr"]
    trust = rules["TrustScoreLow"]
    assert [r["expr"] for r in trust] == [
        "agent_governance_trust_score < 500",
        "agent_governance_trust_score < 100",
    ]
    anomaly = rules["AgentTaskRateAnomaly"][0]
    assert anomaly["expr"].endswith("> 4") and anomaly["for"] == "5m"
    forecast = rules["GovernanceLatencyPredictedHigh"][0]
    assert "[30m], 7200) > 0.2" in forecast["expr"]
    assert rules["SagaEscalated"][0]["labels"]["severity"] == "warning"
    assert rules["TargetDown"][0]["annotations"]["runbook_url"] == (
        "https://runbooks.example.com/meshwatch/TargetDown.md"
    )
    recording = _rendered(settings)[alerts.RECORDING_FILE]
    assert "rate5m[2h])" in recording, "the anomaly baseline window comes from settings"
    assert "offset 10m" in recording, "the baseline ends for (5m) + 5m ago"


def _ratio_settings(settings: Settings) -> dict[str, RatioAlert]:
    """Alert name -> its RatioAlert settings entry, for every ratio alert."""
    entries = {
        name: getattr(settings.alerts, key)
        for name, key in ((a.name, a.key) for a in ALERT_CATALOGUE)
    }
    return {name: cfg for name, cfg in entries.items() if isinstance(cfg, RatioAlert)}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_ratio_alert_needs_its_minimum_volume(variant: str) -> None:
    """An alert reading a ratio is a RatioAlert, and its rules guard on min_events events.

    The guard multiplies the denominator rate by the window's seconds, so
    ``min_events`` is a count over ``rate_window`` whatever the window is.
    """
    settings = settings_from_mapping(VARIANTS[variant])
    ratios = _ratio_settings(settings)
    seconds = Duration(settings.alerts.rate_window).seconds
    # At the default window the rules read the recorded ratios by name.
    # The SLO burn-rate alert reads error ratios too, but it compares them with the error
    # budget, not a threshold; a window without events has no ratio at all.
    reading_a_ratio = {
        r["alert"]
        for r in _alert_rules(Settings())
        if "ratio_rate5m" in r["expr"] and r["alert"] != SLO_ALERT
    }
    assert (
        reading_a_ratio
        == set(ratios)
        == {
            "AgentTaskErrorRateHigh",
            "AgentTaskSuccessRateLow",
            "GovernanceDenialRatioHigh",
            "LLMErrorRatioHigh",
            "SagaFailureRatioHigh",
        }
    )
    for rule in _alert_rules(settings):
        cfg = ratios.get(rule["alert"])
        if cfg is None:
            continue
        guard = f") * {seconds:g} >= {cfg.min_events}"
        if cfg.min_events == 0:
            assert guard not in rule["expr"] and " and on(" not in rule["expr"], rule["alert"]
            continue
        assert rule["expr"].endswith(guard), rule["alert"]
        on = {
            "GovernanceDenialRatioHigh": "on() (",
            "LLMErrorRatioHigh": "on(gen_ai_request_model) (",
        }.get(rule["alert"], "on(agent_did) (")
        assert f" and {on}" in rule["expr"], rule["alert"]
        assert f"needs at least {cfg.min_events} " in rule["annotations"]["description"]


def test_the_default_rate_window_reads_recorded_series() -> None:
    breach = next(r for r in _alert_rules(Settings()) if r["alert"] == "HighRingBreachRate")
    assert breach["expr"] == "agent_did:agent_hypervisor_ring_breaches:rate5m > 0.5"


def test_recorded_series_keep_their_labels_when_computed_inline() -> None:
    settings = settings_from_mapping(CUSTOM)
    latency = next(r for r in _alert_rules(settings) if r["alert"] == "GovernanceLatencyHigh")
    assert "label_replace(histogram_quantile(0.99, " in latency["expr"]
    assert '"quantile", "0.99"' in latency["expr"]


def test_disabled_alerts_are_left_out() -> None:
    settings = settings_from_mapping({"alerts": {"disabled": ["TargetDown", "SagaEscalated"]}})
    names = {r["alert"] for r in _alert_rules(settings)}
    assert names == set(alerts.ALERT_NAMES) - {"TargetDown", "SagaEscalated"}
    paths = set(_rendered(settings))
    assert f"{alerts.TESTS_DIR}/TargetDown.test.yml" not in paths


def test_disabling_every_alert_keeps_the_recording_rules() -> None:
    settings = settings_from_mapping({"alerts": {"disabled": list(alerts.ALERT_NAMES)}})
    paths = sorted(_rendered(settings))
    assert paths == [alerts.RECORDING_FILE, f"{alerts.TESTS_DIR}/recording.test.yml"]
    tests = yaml.safe_load(_rendered(settings)[paths[1]])
    assert tests["rule_files"] == ["../meshwatch-recording.yml"]


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"alerts": {"disabled": ["NoSuchAlert"]}}, "alerts.disabled[0]"),
        (
            {"alerts": {"ring_breach_rate": {"threshold": 2.0, "critical_threshold": 1.0}}},
            "alerts.ring_breach_rate.critical_threshold",
        ),
        (
            {"alerts": {"trust_score_low": {"threshold": 300, "critical_threshold": 400}}},
            "alerts.trust_score_low.critical_threshold",
        ),
        (
            {"alerts": {"task_success_rate_low": {"critical_threshold": 0.5}}},
            "alerts.task_success_rate_low.critical_threshold",
        ),
        (
            {"alerts": {"saga_failure_ratio": {"threshold": 1.5}}},
            "alerts.saga_failure_ratio.threshold",
        ),
        (
            {"alerts": {"task_error_rate": {"critical_threshold": 1.5}}},
            "alerts.task_error_rate.critical_threshold",
        ),
        (
            {"alerts": {"governance_denial_ratio": {"min_events": -1}}},
            "alerts.governance_denial_ratio.min_events",
        ),
        (
            {"alerts": {"task_success_rate_low": {"min_events": 2.5}}},
            "alerts.task_success_rate_low.min_events",
        ),
        (
            {"alerts": {"rate_limit_surge": {"min_events": 10}}},
            "alerts.rate_limit_surge.min_events",
        ),
    ],
    ids=[
        "unknown-disabled-name",
        "critical-below-warning",
        "critical-above-a-floor",
        "critical-on-critical",
        "ratio-above-one",
        "ratio-critical-above-one",
        "negative-min-events",
        "fractional-min-events",
        "min-events-on-a-rate-alert",
    ],
)
def test_inconsistent_alert_settings_are_errors_naming_the_key(data: dict, key: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(key)):
        alerts.render(settings_from_mapping(data))


def test_recording_rule_names_follow_level_metric_operations() -> None:
    known = {m.family for m in CATALOGUE} | CATALOGUE.series_names()
    for rule in RECORDING_RULES:
        level, metric, operations = rule.record.split(":")
        assert metric in known or metric.removesuffix("_bucket") in known, rule.record
        assert operations.startswith(
            (
                "rate5m",
                "ratio_rate5m",
                "failure_ratio_rate5m",
                "histogram_quantile_rate5m",
                "per_invocation_rate5m",
                "increase1d",
            )
        ), rule.record
        kept = (
            set(re.findall(r"by \(([^)]*)\)", rule.expr)[0].split(", "))
            if "by (" in rule.expr
            else set()
        )
        if kept:
            assert level == "_".join(sorted(kept, key=rule.record.index)), rule.record


def test_the_tutorial_expressions_are_made_correct() -> None:
    rules = {r["alert"]: r for r in _alert_rules(Settings())}
    assert (
        "and on(agent_did) agent_hypervisor_ring_elevated == 1" in rules["ElevationTooLong"]["expr"]
    )
    assert "_ms" not in rules["GovernanceLatencyHigh"]["expr"]
    recording = _rendered(Settings())[alerts.RECORDING_FILE]
    assert "sum by (le) (rate(agent_governance_evaluation_latency_seconds_bucket[5m]))" in recording
    assert "sum by (agent_did) (rate(agent_hypervisor_ring_breaches_total[5m]))" in recording
