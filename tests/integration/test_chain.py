"""The chain, live: what the agents record is what Prometheus scrapes, the rules evaluate and
the dashboards show.

One session stack (real Prometheus and Alertmanager from the generated
configs, plus the demo) answers every question here through Prometheus' HTTP
API, the way an operator's tools would.
"""

from __future__ import annotations

import subprocess

import pytest

from meshwatch.alerts.recording import recording_rules
from meshwatch.alerts.slos import recording_rules as slo_recording_rules
from meshwatch.instrumentation.catalogue import CATALOGUE
from meshwatch.stack.prometheus_config import JOB_ALERTMANAGER, JOB_DEMO, JOB_PROMETHEUS
from meshwatch.stack.runner.native_config import ALERTMANAGER, PROMETHEUS
from tests.integration.helpers.panel_check import (
    empty_panels,
    history_bound,
    panel_queries,
    recording_rule_queries,
)
from tests.integration.helpers.poll import wait_until
from tests.integration.helpers.report import NOT_CHECKABLE_PANELS, NOT_CHECKABLE_RULES
from tests.integration.helpers.stack import LiveStack

pytestmark = pytest.mark.integration

# The demo promises every catalogue metric within 30 s of its start.
METRICS_TIMEOUT = 45.0
# Rates need two scrapes and recording rules one evaluation after that.
RULES_TIMEOUT = 30.0


def test_every_component_reports_ready(live_stack: LiveStack) -> None:
    statuses = {s.name: s for s in live_stack.native.status()}
    assert set(statuses) == {"prometheus", "alertmanager", "demo"}
    not_ready = {name: s.detail for name, s in statuses.items() if not s.ready}
    assert not not_ready, f"components not ready: {not_ready}"


def test_every_scrape_target_is_up(live_stack: LiveStack) -> None:
    expected = {JOB_PROMETHEUS, JOB_ALERTMANAGER, JOB_DEMO}

    def all_up() -> dict[str, str]:
        targets = live_stack.prometheus.targets()
        health = {t["labels"]["job"]: t["health"] for t in targets}
        return health if set(health) == expected and set(health.values()) == {"up"} else {}

    wait_until(all_up, timeout=20, what=f"targets {sorted(expected)} all up")


def test_prometheus_delivers_alerts_to_the_alertmanager_it_was_generated_with(
    live_stack: LiveStack,
) -> None:
    urls = wait_until(
        lambda: [am["url"] for am in live_stack.prometheus.alertmanagers()],
        timeout=20,
        what="an active Alertmanager in Prometheus",
    )
    port = live_stack.settings.stack.ports.alertmanager
    assert urls == [f"http://127.0.0.1:{port}/api/v2/alerts"]


def test_every_catalogue_metric_reaches_prometheus(live_stack: LiveStack) -> None:
    expected = {series for metric in CATALOGUE for series in metric.series_names}

    def missing() -> set[str]:
        return expected - live_stack.prometheus.metric_names()

    try:
        wait_until(lambda: not missing(), timeout=METRICS_TIMEOUT, what="every catalogue metric")
    except AssertionError:
        pytest.fail(f"catalogue series never scraped from the demo: {sorted(missing())}")


def test_every_recording_rule_yields_series(
    live_stack: LiveStack, request: pytest.FixtureRequest
) -> None:
    """Every recorded series exists, except those that compare against older history.

    A rule reading ``offset D`` (the anomaly z-score against its baseline)
    cannot have data before the stack has run for ``D``; such rules are
    listed in the report with the history they need, and must still evaluate
    without error (``test_every_rule_evaluates_without_error``).
    """
    prometheus = live_stack.prometheus
    rules = recording_rule_queries(prometheus)
    assert set(rules) == {
        r.record
        for r in (
            *recording_rules(live_stack.settings.alerts),
            *slo_recording_rules(live_stack.settings.slos),
        )
    }
    needs_history = history_bound(rules)
    request.config.stash.setdefault(NOT_CHECKABLE_RULES, []).extend(
        f"{name} (reads {', '.join(sorted(offsets))} ago)"
        for name, offsets in sorted(needs_history.items())
    )
    checkable = sorted(set(rules) - set(needs_history))
    assert checkable

    def empty() -> list[str]:
        return [name for name in checkable if not prometheus.query(name)]

    try:
        wait_until(lambda: not empty(), timeout=RULES_TIMEOUT, what="every recording rule")
    except AssertionError:
        pytest.fail(f"recording rules without series: {empty()}")


def test_every_rule_evaluates_without_error(live_stack: LiveStack) -> None:
    """A rule promtool accepts can still fail at run time (many-to-many matches, bad joins)."""
    prometheus = live_stack.prometheus

    def evaluated() -> list[dict]:
        rules = [r for g in prometheus.rule_groups() for r in g["rules"]]
        return rules if all(r.get("health") != "unknown" for r in rules) else []

    rules = wait_until(evaluated, timeout=RULES_TIMEOUT, what="every rule evaluated once")
    failing = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
    assert not failing


def test_every_prometheus_panel_query_returns_data(
    live_stack: LiveStack, request: pytest.FixtureRequest
) -> None:
    """What Grafana would send for each panel, with the dashboard's defaults, is never empty.

    Panels only Tempo or Grafana can feed (trace search, service graph, alert
    list) cannot be answered by this stack; they are listed in the test
    report instead, and the container tier checks them.
    """
    queries = panel_queries(
        live_stack.native.workdir.stack / "grafana" / "dashboards",
        recording_rule_queries(live_stack.prometheus),
    )
    request.config.stash.setdefault(NOT_CHECKABLE_PANELS, []).extend(queries.not_checkable)
    assert queries.checkable
    empty = empty_panels(live_stack.prometheus, queries, timeout=RULES_TIMEOUT)
    if empty:
        pytest.fail("panel queries without data:\n  " + "\n  ".join(empty))


@pytest.mark.parametrize("kind", ["prometheus", "alertmanager"])
def test_the_configs_the_stack_runs_pass_the_real_checkers(
    live_stack: LiveStack, kind: str, promtool: str, amtool: str
) -> None:
    native = live_stack.native.workdir.native
    command = (
        [promtool, "check", "config", str(native / PROMETHEUS)]
        if kind == "prometheus"
        else [amtool, "check-config", str(native / ALERTMANAGER)]
    )
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
