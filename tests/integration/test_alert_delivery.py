"""The three tutorial alerts, from the demo's incident to a webhook, and back to resolved.

The session stack's demo runs the ``incident`` scenario for a bounded time:
a rogue agent breaching its ring (above both tiers of ``HighRingBreachRate``),
an agent stuck elevated for more than 300 s, and a sick policy backend. Each
alert must fire in Prometheus, reach the receiver of its severity through
Alertmanager with the labels Prometheus gave it and every annotation
(runbook_url included), respect inhibition, and resolve, with a resolved
notification, once the incident is over.

Tests here read Prometheus' ``ALERTS`` history rather than only what fires
right now, so they hold whenever in the session they run.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import pytest

from tests.integration.helpers.poll import WaitTimeout, wait_until
from tests.integration.helpers.prom import PrometheusAPI
from tests.integration.helpers.stack import GROUP_WAIT, INTERVAL, LiveStack
from tests.integration.helpers.webhook_receiver import DeliveredAlert

pytestmark = pytest.mark.integration

BREACH = "HighRingBreachRate"
ELEVATION = "ElevationTooLong"
LATENCY = "GovernanceLatencyHigh"
TUTORIAL_ALERTS = (BREACH, ELEVATION, LATENCY)
# The receiver each alert's highest firing tier is routed to.
RECEIVER_OF = {BREACH: "critical", ELEVATION: "warning", LATENCY: "warning"}
# Alerts fire within seconds (1 s intervals, 5 s `for`); leave room for a slow machine.
FIRE_TIMEOUT = 60.0
# From the session's start: the incident's length, the rate window, then delivery.
RESOLVE_TIMEOUT = 150.0


def fired(prometheus: PrometheusAPI, alertname: str, **labels: str) -> list[dict[str, str]]:
    """Label sets of ``alertname`` that were firing at any time in the last 15 minutes."""
    matchers = ",".join(
        [f'alertname="{alertname}"', 'alertstate="firing"']
        + [f'{k}="{v}"' for k, v in labels.items()]
    )
    results = prometheus.query(f"max_over_time(ALERTS{{{matchers}}}[15m])")
    return [
        {k: v for k, v in r["metric"].items() if k not in ("__name__", "alertstate")}
        for r in results
    ]


def delivered(stack: LiveStack, alertname: str, receiver: str, **kw: Any) -> list[DeliveredAlert]:
    return stack.webhook.alerts(path=stack.receiver_path(receiver), alertname=alertname, **kw)


def critical_breach_agent(stack: LiveStack) -> str:
    """The agent whose critical HighRingBreachRate fired (the demo's rogue tool agent)."""
    critical = wait_until(
        lambda: fired(stack.prometheus, BREACH, severity="critical"),
        timeout=FIRE_TIMEOUT,
        what=f"{BREACH} critical firing",
    )
    agents = {alert["agent_did"] for alert in critical}
    assert len(agents) == 1, f"expected one rogue agent, got {sorted(agents)}"
    return agents.pop()


@pytest.mark.parametrize("alertname", TUTORIAL_ALERTS)
def test_tutorial_alert_fires_in_prometheus(live_stack: LiveStack, alertname: str) -> None:
    firing = wait_until(
        lambda: fired(live_stack.prometheus, alertname),
        timeout=FIRE_TIMEOUT,
        what=f"{alertname} firing",
    )
    for labels in firing:
        assert labels["severity"] in ("warning", "critical"), labels
        if alertname != LATENCY:  # ring alerts are per agent; governance latency is fleet-wide
            assert labels.get("agent_did"), labels


def test_both_breach_tiers_fire_for_the_same_agent(live_stack: LiveStack) -> None:
    agent = critical_breach_agent(live_stack)
    warning = wait_until(
        lambda: fired(live_stack.prometheus, BREACH, severity="warning", agent_did=agent),
        timeout=FIRE_TIMEOUT,
        what=f"{BREACH} warning firing for {agent}",
    )
    assert warning


@pytest.mark.parametrize("alertname", TUTORIAL_ALERTS)
def test_alert_reaches_the_receiver_of_its_severity_with_labels_and_annotations(
    live_stack: LiveStack, alertname: str
) -> None:
    receiver = RECEIVER_OF[alertname]
    notified = wait_until(
        lambda: delivered(live_stack, alertname, receiver, status="firing"),
        timeout=FIRE_TIMEOUT,
        what=f"{alertname} delivered to the {receiver} receiver",
    )
    firing_in_prometheus = fired(live_stack.prometheus, alertname, severity=receiver)
    runbook = live_stack.settings.alerts.runbook_url(alertname)
    for alert in notified:
        # Exactly the labels Prometheus fired with: nothing lost or added on the way.
        assert dict(alert.labels) in firing_in_prometheus, (alert.labels, firing_in_prometheus)
        assert alert.labels["severity"] == receiver
        assert alert.annotations["runbook_url"] == runbook
        assert alert.annotations["summary"].strip()
        assert alert.annotations["description"].strip()
        if "agent_did" in alert.labels:  # the description names the offending agent
            assert alert.labels["agent_did"] in alert.annotations["description"]
    other = "warning" if receiver == "critical" else "critical"
    misrouted = [
        a for a in delivered(live_stack, alertname, other) if a.labels["severity"] == receiver
    ]
    assert not misrouted, f"{receiver} alerts delivered to the {other} receiver: {misrouted}"


def test_the_critical_breach_inhibits_the_warning_for_the_same_agent(live_stack: LiveStack) -> None:
    """Alertmanager mutes the warning tier while the critical fires; nothing reaches the receiver."""
    agent = critical_breach_agent(live_stack)
    wait_until(
        lambda: delivered(
            live_stack, BREACH, "critical", status="firing", labels={"agent_did": agent}
        ),
        timeout=FIRE_TIMEOUT,
        what=f"critical {BREACH} for {agent} delivered",
    )

    def inhibited_warning() -> dict[str, Any] | None:
        for alert in live_stack.alertmanager.alerts():
            labels = alert["labels"]
            if (
                labels.get("alertname") == BREACH
                and labels.get("severity") == "warning"
                and labels.get("agent_did") == agent
                and alert["status"]["inhibitedBy"]
            ):
                return alert
        return None

    try:
        warning = wait_until(
            inhibited_warning, timeout=FIRE_TIMEOUT, what=f"warning {BREACH} for {agent} inhibited"
        )
    except WaitTimeout:
        assert_no_warning_while_critical(live_stack, agent)  # the clearer failure, if it leaked
        raise
    # Give the warning's group every chance to notify: its group_wait and two
    # group_intervals past the moment Alertmanager got it.
    settle = _seconds(GROUP_WAIT) + 2 * _seconds(INTERVAL) + 1
    started = _parse_time(warning["startsAt"])
    wait_until(
        lambda: time.time() > started + settle, timeout=settle + 5, what="warning group flush"
    )
    assert inhibited_warning() is not None or _critical_resolved_at(live_stack, agent), (
        "the warning stopped being inhibited while the critical still fires"
    )
    assert_no_warning_while_critical(live_stack, agent)


def _critical_resolved_at(stack: LiveStack, agent: str) -> float | None:
    resolved = delivered(stack, BREACH, "critical", status="resolved", labels={"agent_did": agent})
    return resolved[0].received_at if resolved else None


def assert_no_warning_while_critical(stack: LiveStack, agent: str) -> None:
    """No firing warning for ``agent`` was delivered before its critical was resolved.

    Once the incident ends the rate falls through the critical threshold first;
    the warning, no longer inhibited, may then be notified on its own. The two
    groups flush independently, so a warning up to two group intervals ahead
    of the critical's resolved notification is that case, not a leak.
    """
    resolved_at = _critical_resolved_at(stack, agent)
    slack = 2 * _seconds(INTERVAL)
    leaked = [
        a
        for a in delivered(stack, BREACH, "warning", status="firing", labels={"agent_did": agent})
        if resolved_at is None or a.received_at < resolved_at - slack
    ]
    assert not leaked, f"warning delivered while the critical fired (inhibition failed): {leaked}"


@pytest.mark.parametrize("alertname", TUTORIAL_ALERTS)
def test_alert_resolves_when_the_incident_ends(live_stack: LiveStack, alertname: str) -> None:
    receiver = RECEIVER_OF[alertname]
    # The incident lasts a bounded time; the rate window then moves past it.
    resolved = wait_until(
        lambda: delivered(live_stack, alertname, receiver, status="resolved"),
        timeout=RESOLVE_TIMEOUT,
        what=f"resolved {alertname} delivered to {receiver}",
    )
    assert resolved[0].annotations["runbook_url"] == live_stack.settings.alerts.runbook_url(
        alertname
    )
    if alertname == BREACH:  # inhibition held for the whole incident
        assert_no_warning_while_critical(live_stack, critical_breach_agent(live_stack))
    wait_until(
        lambda: not live_stack.prometheus.firing(alertname),
        timeout=FIRE_TIMEOUT,
        what=f"{alertname} no longer firing in Prometheus",
    )


def _seconds(duration: str) -> float:
    assert duration.endswith("s"), duration
    return float(duration[:-1])


def _parse_time(text: str) -> float:
    """An RFC 3339 timestamp from Alertmanager (nanosecond precision) as Unix seconds."""
    match = re.fullmatch(r"(.+T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text)
    assert match is not None, f"not an RFC 3339 time: {text!r}"
    zone = "+00:00" if match[3] == "Z" else match[3]
    return datetime.fromisoformat(match[1] + zone).timestamp() + float("0" + (match[2] or ".0"))
