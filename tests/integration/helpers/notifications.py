"""An Alertmanager webhook notification as Alertmanager 0.25 sends it, for the sink's tests."""

from __future__ import annotations

FIRING = {
    "version": "4",
    "groupKey": '{}/{severity="critical"}:{alertname="SagaEscalated", agent_did="did:mesh:publisher"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "critical",
    "groupLabels": {"alertname": "SagaEscalated", "agent_did": "did:mesh:publisher"},
    "commonLabels": {"alertname": "SagaEscalated", "severity": "critical"},
    "commonAnnotations": {},
    "externalURL": "http://127.0.0.1:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "SagaEscalated",
                "severity": "critical",
                "agent_did": "did:mesh:publisher",
            },
            "annotations": {
                "summary": "A saga run by did:mesh:publisher was escalated to a human",
                "description": "Agent did:mesh:publisher escalated 1 saga(s).",
                "runbook_url": "https://example.org/runbooks/SagaEscalated.md",
            },
            "startsAt": "2026-01-01T10:00:00.000Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://127.0.0.1:9090/graph",
            "fingerprint": "0123456789abcdef",
        }
    ],
}
