"""Alert names are spelled once, in the alert catalogue; record names are derived, never spelled."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from meshwatch.alerts import catalogue
from meshwatch.alerts.catalogue import ALERT_CATALOGUE, ALERT_NAMES, AlertDef, Tier
from meshwatch.alerts.recording import RECORDING_RULES, record_name
from meshwatch.instrumentation.catalogue import GOVERNANCE_LATENCY, RING_BREACHES
from meshwatch.settings import Settings, settings_from_mapping
from tests.unit.test_catalogue import _docstring_nodes

PACKAGE = Path(catalogue.__file__).resolve().parents[1]
WORD_RE = re.compile(r"[A-Za-z0-9]+")
RUNBOOKS = PACKAGE.parent / "docs" / "runbooks"


def _literal_alert_names(path: Path) -> list[tuple[int, str]]:
    """(line, name) of every alert name inside a string literal of ``path``, docstrings aside."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = _docstring_nodes(tree)
    names = set(ALERT_NAMES)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in docstrings:
                continue
            found.extend((node.lineno, w) for w in WORD_RE.findall(node.value) if w in names)
    return found


def test_no_alert_name_is_spelled_outside_the_catalogue() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.resolve() == Path(catalogue.__file__).resolve():
            continue
        for lineno, name in _literal_alert_names(path):
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{lineno}: {name}")
    assert offenders == [], "alert names must come from meshwatch.alerts.catalogue"


def test_the_spelling_check_catches_a_literal(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Docstrings may say TargetDown."""\n'
        'LINK = runbooks(settings, "HighRingBreachRate")\n'
        'TEXT = f"above the limit of TrustScoreLow, {x}"\n'
        'OTHER = "TargetDownstream is another word"\n'
    )
    assert _literal_alert_names(sample) == [(2, "HighRingBreachRate"), (3, "TrustScoreLow")]


@pytest.mark.parametrize("alert", list(ALERT_CATALOGUE), ids=lambda a: a.name)
def test_every_alert_reads_a_settings_entry_of_its_kind(alert: AlertDef) -> None:
    alert.config(Settings().alerts)  # raises TypeError on the wrong kind of entry


def test_names_and_keys_are_unique_and_well_formed() -> None:
    with pytest.raises(ValueError, match="share a name"):
        catalogue.AlertCatalogue(catalogue.TARGET_DOWN, catalogue.TARGET_DOWN)
    with pytest.raises(ValueError, match="share a settings key"):
        catalogue.AlertCatalogue(
            catalogue.TARGET_DOWN, AlertDef("Other", "target_down", "x", "on_event")
        )
    with pytest.raises(ValueError, match="CamelCase"):
        AlertDef("target_down", "target_down", "x", "on_event")
    with pytest.raises(KeyError, match="no alert is named 'Nope'"):
        ALERT_CATALOGUE.get("Nope")


def test_tiers_follow_the_settings() -> None:
    settings = settings_from_mapping(
        {"alerts": {"elevation_too_long": {"threshold": 120, "critical_threshold": 600}}}
    ).alerts
    assert catalogue.ELEVATION_TOO_LONG.tiers(settings) == (
        Tier("warning", 120.0),
        Tier("critical", 600.0),
    )
    assert catalogue.SAGA_ESCALATED.tiers(settings) == (Tier("critical", None),)
    assert catalogue.AGENT_TASK_RATE_ANOMALY.tiers(settings) == (Tier("warning", 3.0),)


def test_only_threshold_alerts_have_a_direction() -> None:
    assert catalogue.TRUST_SCORE_LOW.direction == "below"
    with pytest.raises(TypeError, match="not across a threshold"):
        _ = catalogue.TARGET_DOWN.direction


@pytest.mark.parametrize("alert", list(ALERT_CATALOGUE), ids=lambda a: a.name)
def test_every_alert_has_its_runbook_file(alert: AlertDef) -> None:
    assert (RUNBOOKS / alert.runbook).is_file()
    assert alert.runbook_url(Settings().alerts).endswith(f"/docs/runbooks/{alert.runbook}")


def test_no_record_name_is_spelled_outside_recording_rules() -> None:
    """Record names are derived from the metric they record (``recording.record_name``)."""
    records = {rule.record for rule in RECORDING_RULES}
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = _docstring_nodes(tree)
        for node in ast.walk(tree):
            literal = isinstance(node, ast.Constant) and isinstance(node.value, str)
            if literal and id(node) not in docstrings and any(r in node.value for r in records):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert offenders == []


def test_record_names_say_the_metric_and_window_they_record() -> None:
    assert record_name(("agent_did",), RING_BREACHES, "rate5m") == (
        "agent_did:agent_hypervisor_ring_breaches:rate5m"
    )
    assert record_name((), GOVERNANCE_LATENCY, "rate5m", "_bucket") == (
        ":agent_governance_evaluation_latency_seconds_bucket:rate5m"
    )
