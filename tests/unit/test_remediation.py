"""The remediation decisions: policies, allow-lists, idempotency, dry run, the breaker.

Driven through ``Remediator.handle`` with parsed webhook bodies and a clock the
test moves, so every rule of the decision order is shown without a server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meshwatch.cli import main
from meshwatch.instrumentation import AuditTrail, EventType, HypervisorEventBus
from meshwatch.remediation import ActionRequest, PayloadError, Remediator, parse
from meshwatch.remediation.guards import CircuitBreaker, SeenAlerts
from meshwatch.settings import (
    RemediationPolicy,
    RemediationSettings,
    SettingsError,
    settings_from_mapping,
)


class Recording:
    """A user-defined action: records what it was asked to do."""

    name = "pause_agent"
    required_labels = ("agent_did",)

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[ActionRequest] = []
        self.fail = fail

    def plan(self, request: ActionRequest) -> str:
        return f"pause {request.labels['agent_did']}"

    def __call__(self, request: ActionRequest) -> str:
        self.calls.append(request)
        if self.fail:
            raise RuntimeError("runtime said no")
        return f"paused {request.labels['agent_did']}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def body(*alerts: dict[str, Any], status: str = "firing") -> bytes:
    return json.dumps(
        {
            "version": "4",
            "status": status,
            "receiver": "remediation",
            "groupKey": "{}",
            "alerts": list(alerts),
        }
    ).encode()


def alert(
    name: str = "HighRingBreachRate",
    agent: str | None = "did:mesh:rogue",
    *,
    fingerprint: str = "a1b2c3d4e5f60718",
    starts_at: str = "2026-12-01T08:00:00Z",
    status: str = "firing",
) -> dict[str, Any]:
    labels = {"alertname": name, "severity": "critical"}
    if agent is not None:
        labels["agent_did"] = agent
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": "s"},
        "startsAt": starts_at,
        "fingerprint": fingerprint,
    }


def settings(**overrides: Any) -> RemediationSettings:
    values: dict[str, Any] = {
        "dry_run": False,
        "policies": (
            RemediationPolicy(
                alert="HighRingBreachRate", action="pause_agent", agents=("did:mesh:*",)
            ),
        ),
        "max_actions": 3,
    }
    values.update(overrides)
    return RemediationSettings(**values)


def remediator(
    action: Recording, clock: Clock | None = None, **overrides: Any
) -> tuple[Remediator, HypervisorEventBus]:
    bus = HypervisorEventBus()
    return Remediator(settings(**overrides), [action], bus=bus, clock=clock or Clock()), bus


def test_a_firing_allow_listed_alert_runs_the_action_once_and_is_recorded() -> None:
    action = Recording()
    rem, bus = remediator(action)
    [decision] = rem.handle(parse(body(alert())))
    assert (decision.result, decision.action, decision.detail) == (
        "acted",
        "pause_agent",
        "paused did:mesh:rogue",
    )
    assert [c.labels["agent_did"] for c in action.calls] == ["did:mesh:rogue"]
    [event] = bus.query_by_type(EventType.REMEDIATION_DECIDED)
    assert event.agent_did == "did:mesh:rogue"
    assert event.payload["result"] == "acted" and event.payload["actor"] == "meshwatch.remediation"
    assert rem.counts()[("HighRingBreachRate", "pause_agent", "acted")] == 1


def test_alertmanager_resends_of_one_firing_act_once() -> None:
    action, clock = Recording(), Clock()
    rem, bus = remediator(action, clock)
    for _ in range(5):
        rem.handle(parse(body(alert())))
    assert len(action.calls) == 1
    assert len(bus.query_by_type(EventType.REMEDIATION_DECIDED)) == 1
    # A new firing of the same alert (a new startsAt) is a new decision, after the cooldown.
    clock.now += 601
    rem.handle(parse(body(alert(starts_at="2026-12-01T09:00:00Z"))))
    assert len(action.calls) == 2


def test_one_agent_is_handled_once_per_cooldown_whichever_alert_names_it() -> None:
    action, clock = Recording(), Clock()
    rem, _ = remediator(action, clock)
    warning = alert(fingerprint="0" * 16)
    critical = {
        **alert(fingerprint="1" * 16),
        "labels": {**alert()["labels"], "severity": "critical"},
    }
    decisions = rem.handle(parse(body(warning, critical)))
    assert [(d.result, d.reason) for d in decisions] == [("acted", ""), ("skipped", "cooldown")]
    assert len(action.calls) == 1
    clock.now += 601  # past the 10m cooldown
    assert rem.handle(parse(body(alert(fingerprint="2" * 16))))[0].result == "acted"


def test_dry_run_acts_on_nothing_but_records_the_plan() -> None:
    action = Recording()
    rem, bus = remediator(action, dry_run=True)
    [decision] = rem.handle(parse(body(alert())))
    assert action.calls == []
    assert (decision.result, decision.detail) == ("dry_run", "pause did:mesh:rogue")
    [event] = bus.query_by_type(EventType.REMEDIATION_DECIDED)
    assert event.payload["dry_run"] is True and event.payload["result"] == "dry_run"


@pytest.mark.parametrize(
    ("the_alert", "reason"),
    [
        (alert(status="resolved"), "resolved"),
        (alert(name="TargetDown"), "no_policy"),
        (alert(agent=None), "missing_labels"),
        (alert(agent="did:other:x"), "agent_not_allowed"),
    ],
    ids=["resolved", "not-allow-listed-alert", "no-agent-label", "agent-not-allow-listed"],
)
def test_refusals_do_nothing_and_say_why(the_alert: dict[str, Any], reason: str) -> None:
    action = Recording()
    rem, bus = remediator(action)
    [decision] = rem.handle(parse(body(the_alert)))
    assert action.calls == []
    assert (decision.result, decision.reason) == ("refused", reason)
    assert bus.query_by_type(EventType.REMEDIATION_DECIDED)[0].payload["reason"] == reason


def test_an_empty_agent_allow_list_allows_no_agent() -> None:
    action = Recording()
    policy = RemediationPolicy(alert="HighRingBreachRate", action="pause_agent")
    rem, _ = remediator(action, policies=(policy,))
    assert rem.handle(parse(body(alert())))[0].reason == "agent_not_allowed"
    assert action.calls == []


def test_a_policy_naming_an_unregistered_action_refuses() -> None:
    action = Recording()
    policy = RemediationPolicy(alert="HighRingBreachRate", action="kill_agent", agents=("*",))
    rem, _ = remediator(action, policies=(policy,))
    assert rem.unknown_actions() == ["kill_agent"]
    assert rem.handle(parse(body(alert())))[0].reason == "unknown_action"


def test_a_failing_action_is_recorded_as_failed_and_never_raises() -> None:
    action = Recording(fail=True)
    rem, bus = remediator(action)
    [decision] = rem.handle(parse(body(alert())))
    assert (decision.result, decision.reason, decision.detail) == (
        "failed",
        "RuntimeError",
        "runtime said no",
    )
    assert bus.query_by_type(EventType.REMEDIATION_DECIDED)[0].payload["result"] == "failed"


def test_a_flood_of_distinct_alerts_trips_the_breaker_after_max_actions() -> None:
    action, clock = Recording(), Clock()
    rem, _ = remediator(action, clock, max_actions=3)
    flood = [alert(agent=f"did:mesh:a{i}", fingerprint=f"{i:016x}") for i in range(1000)]
    decisions = rem.handle(parse(body(*flood)))
    assert len(action.calls) == 3
    assert [d.result for d in decisions[:3]] == ["acted"] * 3
    assert {d.reason for d in decisions[3:]} == {"circuit_open"}
    circuit = next(f for f in rem.metric_families() if f.metric.name.endswith("circuit_open"))
    assert list(circuit.samples.values()) == [1.0]
    # Past open_for (10m) the breaker closes and acting resumes.
    clock.now += 601
    rem.handle(parse(body(alert(agent="did:mesh:late", fingerprint="f" * 16))))
    assert len(action.calls) == 4


def test_alert_names_from_bodies_never_become_label_values() -> None:
    action = Recording()
    rem, _ = remediator(action)
    for i in range(50):
        rem.handle(parse(body(alert(name=f"Made{i}", fingerprint=f"{i:016x}"))))
    alertnames = {key[0] for key in rem.counts()}
    assert alertnames == {"HighRingBreachRate", "other"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "JSON object"),
        (json.dumps({"version": "3", "status": "firing", "alerts": []}).encode(), "version"),
        (
            json.dumps({"version": "4", "status": "firing", "alerts": {}}).encode(),
            "alerts must be a list",
        ),
        (body({"status": "firing", "labels": {}, "startsAt": "x"}), "fingerprint"),
        (body({**alert(), "labels": {"a": 1}}), "labels must be an object of strings"),
        (b"[" * 100_000, "(not JSON|nested too deeply)"),
    ],
    ids=["garbage", "array", "version", "alerts", "fingerprint", "labels", "deep"],
)
def test_a_malformed_body_is_one_named_error(raw: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse(raw)


def test_seen_alerts_are_bounded() -> None:
    seen = SeenAlerts(capacity=3)
    assert all(seen.add(k) for k in "abcd")
    assert len(seen) == 3
    assert seen.add("a")  # evicted, so new again
    assert not seen.add("d")


def test_the_breaker_slides_its_window() -> None:
    breaker = CircuitBreaker(max_actions=2, window=60, open_for=30)
    assert breaker.admit(0) and breaker.admit(30)
    assert breaker.admit(61)  # the first slot left the window
    assert not breaker.admit(62) and breaker.is_open(62) and breaker.trips == 1
    assert not breaker.is_open(92) and breaker.admit(92)


def test_settings_read_policies_and_name_bad_keys() -> None:
    loaded = settings_from_mapping(
        {
            "remediation": {
                "enabled": True,
                "token_file": "/run/token",
                "policies": [
                    {
                        "alert": "HighRingBreachRate",
                        "action": "kill_agent",
                        "agents": ["did:mesh:*"],
                    }
                ],
            }
        }
    )
    assert loaded.remediation.dry_run is True  # dry run until said otherwise
    assert loaded.remediation.policy_for("HighRingBreachRate") is not None
    with pytest.raises(SettingsError, match=r"remediation\.token_file: is required"):
        settings_from_mapping({"remediation": {"enabled": True}})
    with pytest.raises(
        SettingsError, match=r"remediation\.policies\[1\]\.alert: .*already has a policy"
    ):
        settings_from_mapping(
            {
                "remediation": {
                    "policies": [{"alert": "A", "action": "x"}, {"alert": "A", "action": "y"}]
                }
            }
        )
    with pytest.raises(SettingsError, match=r"remediation\.policies\[0\]\.action"):
        settings_from_mapping(
            {"remediation": {"policies": [{"alert": "A", "action": "Kill Agent"}]}}
        )


def test_the_audit_trail_keeps_every_decision_and_the_cli_shows_who_did_what(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "audit.db"
    action = Recording()
    rem, bus = remediator(action)
    with AuditTrail(db) as trail:
        trail.attach(bus)
        rem.handle(parse(body(alert(), alert(agent="did:other:x", fingerprint="9" * 16))))
        assert trail.flush(timeout=10)
    assert main(["audit", "query", "--db", str(db), "--remediation"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "TIME",
        "ALERT",
        "AGENT",
        "ACTION",
        "RESULT",
        "BY",
        "WHY",
        "/",
        "WHAT",
    ]
    rows = [line.split() for line in lines[1:]]
    assert {(r[2], r[4], r[5], r[6]) for r in rows} == {
        ("did:mesh:rogue", "acted", "meshwatch.remediation", "paused"),
        ("did:other:x", "refused", "meshwatch.remediation", "agent_not_allowed"),
    }
    assert (
        main(["audit", "query", "--db", str(db), "--remediation", "--type", "ring.assigned"]) != 0
    )
    assert "leave out --type" in capsys.readouterr().err
