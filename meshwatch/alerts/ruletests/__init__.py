"""promtool unit tests of the rules, generated from the same settings as the rules.

Every alert gets a test file ``prometheus/rules/tests/<AlertName>.test.yml``
with at least one case where it fires (exact labels and annotations) and one
where it stays silent; the recording rules get ``recording.test.yml``. They are
rendered beside the rule files rather than kept only in meshwatch's own test
suite because their inputs are placed relative to the configured thresholds:
``meshwatch check`` then proves the rules a deployment actually runs, with its
thresholds, ``for`` durations and severities, not just the defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from meshwatch.alerts import groups as rule_groups
from meshwatch.alerts.model import AlertRule
from meshwatch.alerts.render import ALERTS_FILE, RECORDING_FILE, RULES_DIR, TESTS_DIR, to_yaml
from meshwatch.alerts.rules import alert_rules
from meshwatch.alerts.ruletests import (
    governance,
    llm,
    meta,
    recording,
    remediation,
    ring,
    sagas,
    slos,
    tasks,
)
from meshwatch.alerts.ruletests.model import Case, UnitTestFile
from meshwatch.alerts.slos import SLO_ALERT
from meshwatch.generated import GeneratedFile
from meshwatch.settings import AlertsSettings, Settings

CaseBuilder = Callable[[AlertsSettings, Mapping[str, list[AlertRule]]], dict[str, list[Case]]]
BUILDERS: tuple[CaseBuilder, ...] = (
    ring.cases,
    governance.cases,
    sagas.cases,
    tasks.cases,
    llm.cases,
    meta.cases,
    remediation.cases,
)
RECORDING_TESTS = "recording"


def _relative(path: str) -> str:
    """A rule file's path as seen from the tests directory."""
    return "../" + path.removeprefix(RULES_DIR + "/")


def alert_cases(settings: AlertsSettings) -> dict[str, list[Case]]:
    """Cases by alert name, for every enabled alert."""
    by_name: dict[str, list[AlertRule]] = {}
    for rule in alert_rules(settings):
        by_name.setdefault(rule.alert, []).append(rule)
    out: dict[str, list[Case]] = {}
    for build in BUILDERS:
        out.update(build(settings, by_name))
    missing = sorted(set(by_name) - set(out))
    if missing:
        raise ValueError(f"alerts without promtool cases: {missing}")
    return out


def unit_test_suite(settings: Settings) -> dict[str, UnitTestFile]:
    """Test files by name (an alert name, or ``recording``).

    The SLO burn-rate alert's cases come from ``settings.slos``; its file is
    left out, like a disabled alert's, when there is no SLO.
    """
    rule_files = [_relative(RECORDING_FILE)]
    order = [group.name for group in rule_groups.recording_file_groups(settings)]
    cases = alert_cases(settings.alerts)
    burn_cases = slos.cases(settings)
    if burn_cases:
        cases[SLO_ALERT] = burn_cases
    if cases:
        rule_files.append(_relative(ALERTS_FILE))
        order.extend(group.name for group in rule_groups.alert_file_groups(settings))
    recorded = (*recording.cases(settings.alerts), *slos.recording_cases(settings.slos))
    files = {RECORDING_TESTS: UnitTestFile(tuple(rule_files), recorded, tuple(order))}
    for name, found in sorted(cases.items()):
        files[name] = UnitTestFile(tuple(rule_files), tuple(found), tuple(order))
    return files


def unit_test_files(settings: Settings) -> list[GeneratedFile]:
    """The promtool test files under ``prometheus/rules/tests/``."""
    return [
        GeneratedFile(f"{TESTS_DIR}/{name}.test.yml", to_yaml(test_file.to_dict()))
        for name, test_file in unit_test_suite(settings).items()
    ]
