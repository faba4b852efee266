"""A stack with the DEFAULT receivers delivers real notifications to the built-in alert sink.

The settings name no receiver URL at all, as on a fresh ``make up``: only the
intervals are short. The demo escalates its first saga about 10 s after it
starts (the first maintenance saga at 1 s, its second step forced "in doubt",
which escalates after the 8 s step timeout), and ``SagaEscalated`` is
critical with ``for: 0s``. So within seconds Alertmanager must deliver that
alert to the sink's ``/critical``: in the notifications file, at
``/notifications`` and in the sink's log, with Alertmanager counting no failed
notification (the failure that used to page as
``AlertmanagerNotificationsFailing`` on every fresh stack).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from meshwatch.alerts.external_metrics import (
    ALERTMANAGER_NOTIFICATIONS,
    ALERTMANAGER_NOTIFICATIONS_FAILED,
)
from meshwatch.rendering import render_all
from meshwatch.settings import Settings, settings_from_mapping
from meshwatch.stack.alert_sink import NOTIFICATIONS_PATH, read_tail
from meshwatch.stack.runner import NativeStack
from tests.integration.helpers.net import LOOPBACK, free_stack_ports
from tests.integration.helpers.poll import wait_until
from tests.integration.helpers.prom import http_get
from tests.integration.helpers.stack import check_no_orphans

pytestmark = pytest.mark.integration

START_TIMEOUT = 60.0
# Escalation at ~10 s, then a scrape, an evaluation and group_wait of 1 s each.
DELIVERY_TIMEOUT = 90.0


def _settings(workdir: Path) -> Settings:
    ports = free_stack_ports()
    return settings_from_mapping(
        {
            "stack": {
                "bind_address": LOOPBACK,
                "ports": ports,
                "scrape_interval": "1s",
                "evaluation_interval": "1s",
                "workdir": str(workdir),
                # No receiver URL: the defaults, only faster.
                "receivers": {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
                "demo": {"enabled": True, "seed": 3, "scenario": "steady"},
            }
        }
    )


@pytest.fixture
def stack(
    tmp_path: Path, prometheus_bin: str, alertmanager_bin: str, promtool: str, amtool: str
) -> Iterator[NativeStack]:
    """A native stack with default receivers; afterwards nothing it started may still run."""
    settings = _settings(tmp_path / "work")
    native = NativeStack(settings, renderer=render_all)
    needles = (str(native.workdir.root), f"--metrics-port {settings.stack.ports.demo_metrics}")
    recorded: set[int] = set()
    try:
        native.start(timeout=START_TIMEOUT)
        recorded.update(record.pid for record in native.records().values())
        yield native
    finally:
        recorded.update(record.pid for record in native.records().values())
        try:
            native.stop()
        finally:
            check_no_orphans(needles, recorded)


def _escalations(notifications: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        alert
        for n in notifications
        if n["receiver"] == "critical"
        for alert in n["alerts"]
        if alert["alertname"] == "SagaEscalated" and alert["status"] == "firing"
    ]


def _alertmanager_counters(url: str) -> dict[str, float]:
    """Alertmanager's notification counters, summed over integrations, from its /metrics."""
    status, body = http_get(f"{url}/metrics")
    assert status == 200
    totals = {ALERTMANAGER_NOTIFICATIONS.name: 0.0, ALERTMANAGER_NOTIFICATIONS_FAILED.name: 0.0}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return totals


def test_default_receivers_deliver_a_real_alert_to_the_sink(stack: NativeStack) -> None:
    assert [s.name for s in stack.status() if s.ready] == [
        "prometheus",
        "alert-sink",
        "alertmanager",
        "demo",
    ]
    notifications_file = stack.workdir.notifications_file

    escalated = wait_until(
        lambda: _escalations(read_tail(notifications_file, 1000)),
        timeout=DELIVERY_TIMEOUT,
        what=f"a firing SagaEscalated notification in {notifications_file}",
    )
    alert = escalated[0]
    assert alert["severity"] == "critical"
    assert alert["labels"]["agent_did"]
    assert alert["summary"].startswith("A saga run by ")
    assert alert["runbook_url"].endswith("SagaEscalated.md")

    status, body = http_get(f"{stack.url('alert-sink')}{NOTIFICATIONS_PATH}?limit=1000")
    assert status == 200
    assert _escalations(json.loads(body)["notifications"]), "/notifications serves it too"
    log = stack.workdir.log_file("alert-sink").read_text(encoding="utf-8")
    assert "/critical FIRING SagaEscalated [critical]" in log

    counters = _alertmanager_counters(stack.url("alertmanager"))
    print(f"alert sink: {len(read_tail(notifications_file, 1000))} notifications; {counters}")
    assert counters[ALERTMANAGER_NOTIFICATIONS.name] >= 1
    assert counters[ALERTMANAGER_NOTIFICATIONS_FAILED.name] == 0, "every notification delivered"
