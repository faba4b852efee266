"""Every alert has promtool cases that fire and that stay silent; every recorded series is checked."""

from __future__ import annotations

import pytest

from meshwatch import alerts
from meshwatch.alerts.catalogue import ALERT_CATALOGUE
from meshwatch.alerts.recording import recording_rules
from meshwatch.alerts.ruletests import RECORDING_TESTS, alert_cases, unit_test_suite
from meshwatch.alerts.ruletests.model import AlertCheck, ExprCheck
from meshwatch.alerts.slos import SLO_ALERT
from meshwatch.alerts.slos import recording_rules as slo_recording_rules
from meshwatch.settings import settings_from_mapping
from meshwatch.settings.alerts import RatioAlert
from tests.rules.conftest import VARIANTS


@pytest.mark.parametrize("variant", ["defaults", "custom"])
def test_every_alert_has_a_firing_and_a_silent_case(variant: str) -> None:
    suite = unit_test_suite(settings_from_mapping(VARIANTS[variant]))
    cases = {name: f.cases for name, f in suite.items() if name != RECORDING_TESTS}
    assert sorted(cases) == sorted(alerts.ALERT_NAMES)
    for alertname, found in cases.items():
        assert any(c.fires for c in found), f"{alertname} has no case where it fires"
        assert any(c.silent for c in found), f"{alertname} has no case where it stays silent"
        names = [c.name for c in found]
        assert len(names) == len(set(names)), f"{alertname} has two cases with one name"


def test_an_alert_its_settings_make_unable_to_fire_keeps_only_its_silent_cases() -> None:
    cases = alert_cases(settings_from_mapping(VARIANTS["edges"]).alerts)
    trust = cases["TrustScoreLow"]  # "trust score below 0" can never be true
    assert trust and not any(c.fires for c in trust) and all(c.silent for c in trust)
    assert all(
        any(c.fires for c in found) for name, found in cases.items() if name != "TrustScoreLow"
    )


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_guarded_ratio_alert_has_cases_on_both_sides_of_its_minimum(variant: str) -> None:
    settings = settings_from_mapping(VARIANTS[variant]).alerts
    cases = alert_cases(settings)
    guarded = {
        name: cfg
        for name, key in ((a.name, a.key) for a in ALERT_CATALOGUE)
        if isinstance(cfg := getattr(settings, key), RatioAlert)
    }
    assert len(guarded) == 5
    for name, cfg in guarded.items():
        below = [c for c in cases[name] if f"below the minimum {cfg.min_events}" in c.name]
        past = [c for c in cases[name] if f"past the minimum {cfg.min_events}" in c.name]
        if cfg.min_events == 0:  # no guard, nothing to prove
            assert below == past == [], name
            continue
        assert len(below) == 1 and below[0].silent and not below[0].fires, name
        assert len(past) == 1 and past[0].fires, name


def test_firing_cases_expect_exact_labels_and_every_annotation() -> None:
    for alertname, found in alert_cases(settings_from_mapping({}).alerts).items():
        for case in found:
            for check in case.checks:
                assert isinstance(check, AlertCheck) and check.alertname == alertname
                for expected in check.expect:
                    assert expected.labels["severity"] in ("info", "warning", "critical")
                    assert set(expected.annotations) == {"description", "runbook_url", "summary"}
                    assert "{{" not in "".join(expected.annotations.values())


def test_elevation_has_a_case_for_a_long_elevation_that_ended() -> None:
    cases = alert_cases(settings_from_mapping({}).alerts)["ElevationTooLong"]
    ended = [c for c in cases if "already ended" in c.name]
    assert len(ended) == 1 and ended[0].silent and not ended[0].fires


def test_latency_cases_use_two_bucket_layouts() -> None:
    cases = alert_cases(settings_from_mapping({}).alerts)["GovernanceLatencyHigh"]
    layouts = {frozenset(s.labels["le"] for s in case.series) for case in cases if case.fires}
    bucket_counts = {len(layout) for layout in layouts}
    assert len(bucket_counts) >= 2, "the firing cases should differ in bucket count"


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_recording_rule_has_an_expression_case(variant: str) -> None:
    settings = settings_from_mapping(VARIANTS[variant])
    checked = {
        check.expr
        for case in unit_test_suite(settings)[RECORDING_TESTS].cases
        for check in case.checks
        if isinstance(check, ExprCheck)
    }
    every = [*recording_rules(settings.alerts), *slo_recording_rules(settings.slos)]
    missing = [r.selector for r in every if r.selector not in checked]
    assert missing == []


def test_disabled_alerts_have_no_test_file() -> None:
    settings = settings_from_mapping({"alerts": {"disabled": ["TargetDown", SLO_ALERT]}})
    suite = unit_test_suite(settings)
    assert "TargetDown" not in suite and SLO_ALERT not in suite
