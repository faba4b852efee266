"""The closed loop, live: a ring breach fires, Alertmanager posts it, the agent is killed, it resolves.

A native stack (real Prometheus and Alertmanager) runs the demo's incident,
once on the simulated fleet and once on the real agent-hypervisor runtime
(where ``kill_agent`` goes through the runtime's ``KillSwitch`` and ends the
session on the ``Hypervisor``), with remediation acting (``dry_run: false``): ``HighRingBreachRate`` fires for
the rogue agent, Alertmanager's first route posts it to the demo's receiver
with the bearer token, the policy's ``kill_agent`` ends the agent's session,
its breaches stop, and the alert resolves while the rest of the incident (the
stuck elevation, the slow policy backend) runs on. The audit trail has the
decision and the kill, and the time from the first breach to the kill is
reported. Then Alertmanager's own notification for that firing, replayed,
is refused as a duplicate: a re-send never acts twice.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshwatch.demo.world import TOOL_CODE
from meshwatch.instrumentation import AuditReader, EventType
from meshwatch.instrumentation.audit.query import AuditFilter
from meshwatch.instrumentation.catalogue import RING_BREACHES
from tests.integration.helpers.poll import wait_until
from tests.integration.helpers.stack import LiveStack, running_stack
from tests.integration.helpers.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.integration

BREACH = "HighRingBreachRate"
POLICY = {"alert": BREACH, "action": "kill_agent", "agents": ["did:mesh:*"]}
# Firing takes the rate window and `for` (seconds in the test stack), then delivery.
KILL_TIMEOUT = 90.0
RESOLVE_TIMEOUT = 120.0


@pytest.fixture(
    scope="module", params=[None, "agent-hypervisor"], ids=["simulated", "agent-hypervisor"]
)
def acting_stack(
    native_binaries: None,
    webhook: WebhookReceiver,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[LiveStack]:
    with running_stack(
        tmp_path_factory.mktemp("remediation-stack"),
        webhook,
        scenario="incident",
        runtime=request.param,
        remediation={"dry_run": False, "policies": [POLICY]},
    ) as stack:
        yield stack


def _audit(stack: LiveStack) -> AuditReader:
    return AuditReader(stack.native.workdir.data / "demo-audit" / "audit.db")


def _acted(stack: LiveStack) -> float:
    return (
        stack.prometheus.value(
            f'sum(meshwatch_remediations_total{{alertname="{BREACH}", result="acted"}})'
        )
        or 0.0
    )


def test_a_ring_breach_alert_kills_the_agent_and_resolves(acting_stack: LiveStack) -> None:
    stack = acting_stack
    wait_until(lambda: _acted(stack) >= 1, timeout=KILL_TIMEOUT, what="the kill_agent remediation")
    with _audit(stack) as audit:
        [kill] = wait_until(
            lambda: audit.query(AuditFilter(event_type=EventType.AGENT_KILLED)),
            timeout=10,
            what="the kill in the audit trail",
        )
        decisions = audit.query(AuditFilter(event_type=EventType.REMEDIATION_DECIDED))
        first_breach = audit.query(
            AuditFilter(event_type=EventType.RING_BREACH_DETECTED, agent_did=TOOL_CODE.did),
            limit=1,
            offset=audit.count(
                AuditFilter(event_type=EventType.RING_BREACH_DETECTED, agent_did=TOOL_CODE.did)
            )
            - 1,
        )[0]
    assert kill.agent_did == TOOL_CODE.did
    acted = [d for d in decisions if d.payload["result"] == "acted"]
    assert [d.payload["action"] for d in acted] == ["kill_agent"]
    # Anything else decided for the agent is a tier of the same alert, within the cooldown.
    assert {d.payload["reason"] for d in decisions if d not in acted} <= {"cooldown"}
    seconds = (kill.timestamp - first_breach.timestamp).total_seconds()
    runtime = stack.settings.stack.demo.runtime
    print(f"\nremediation ({runtime}): first breach to kill of {TOOL_CODE.did}: {seconds:.1f} s")
    assert seconds > 0

    # The breaches stop, so the alert resolves in Prometheus.
    breaching = f'sum(rate({RING_BREACHES.name}{{agent_did="{TOOL_CODE.did}"}}[5s]))'
    wait_until(
        lambda: (stack.prometheus.value(breaching) or 0.0) == 0.0,
        timeout=RESOLVE_TIMEOUT,
        what="the rogue agent's breaches to stop",
    )
    wait_until(
        lambda: not stack.prometheus.firing(BREACH, agent_did=TOOL_CODE.did),
        timeout=RESOLVE_TIMEOUT,
        what=f"{BREACH} to resolve",
    )
    # One kill for the agent (the critical tier, if it fired too, is skipped), nothing failed.
    assert _acted(stack) == 1
    failed = stack.prometheus.value('sum(meshwatch_remediations_total{result="failed"})')
    assert failed == 0


def test_alertmanagers_notification_replayed_is_a_duplicate(acting_stack: LiveStack) -> None:
    stack = acting_stack
    wait_until(lambda: _acted(stack) >= 1, timeout=KILL_TIMEOUT, what="the kill_agent remediation")
    with _audit(stack) as audit:
        decisions = audit.query(AuditFilter(event_type=EventType.REMEDIATION_DECIDED))
    [decision] = [d for d in decisions if d.payload["result"] == "acted"]
    remediation = stack.settings.remediation
    body = {
        "version": "4",
        "status": "firing",
        "receiver": "remediation",
        "groupKey": "replay",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": BREACH, "agent_did": TOOL_CODE.did, "severity": "warning"},
                "annotations": {},
                "startsAt": decision.payload["starts_at"],
                "fingerprint": decision.payload["fingerprint"],
            }
        ],
    }
    token = Path(remediation.token_file).read_text(encoding="utf-8").strip()
    conn = http.client.HTTPConnection("127.0.0.1", remediation.port, timeout=5)
    try:
        conn.request(
            "POST", "/alerts", body=json.dumps(body), headers={"Authorization": f"Bearer {token}"}
        )
        response = conn.getresponse()
        answer = json.loads(response.read())
    finally:
        conn.close()
    assert response.status == 200
    assert [(d["result"], d["reason"]) for d in answer["decisions"]] == [("refused", "duplicate")]
    assert _acted(stack) == 1
