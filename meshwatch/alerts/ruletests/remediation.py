"""Cases for the remediation alerts: remediations not done, and the open circuit breaker."""

from __future__ import annotations

from collections.abc import Mapping

from meshwatch.alerts.catalogue import (
    HIGH_RING_BREACH_RATE,
    REMEDIATION_CIRCUIT_OPEN,
    REMEDIATION_FAILING,
)
from meshwatch.alerts.model import AlertRule
from meshwatch.alerts.ruletests.model import (
    AlertCheck,
    Case,
    Series,
    at_minute,
    constant,
    counter,
    fired,
    minutes,
)
from meshwatch.instrumentation.catalogue import REMEDIATION_CIRCUIT_OPEN as CIRCUIT_OPEN
from meshwatch.instrumentation.catalogue import REMEDIATIONS
from meshwatch.settings import AlertsSettings

RECEIVER = {"job": "meshwatch-demo", "instance": "127.0.0.1:8000"}
POLICY = {"alertname": HIGH_RING_BREACH_RATE.name, "action": "kill_agent"}


def _decisions(result: str, values: str) -> Series:
    return Series(REMEDIATIONS.name, {**RECEIVER, **POLICY, "result": result}, values)


def _failing(s: AlertsSettings, rule: AlertRule) -> list[Case]:
    window = minutes(s.rate_window)
    at = window + minutes(rule.for_) + 3
    # One decision a minute over the whole window: the increase is the window in minutes.
    steady = counter(1 / 60, at + 2)
    return [
        *(
            Case(
                f"fires when remediations keep ending {result}, naming the alert and action",
                (_decisions(result, steady), _decisions("acted", constant(0, at + 2))),
                (AlertCheck(at_minute(at), rule.alert, (fired(rule, POLICY, float(window)),)),),
            )
            for result in ("failed", "refused")
        ),
        Case(
            "stays silent while every remediation acts, is a dry run or was already done",
            (
                _decisions("acted", steady),
                _decisions("dry_run", steady),
                _decisions("skipped", steady),
            ),
            (AlertCheck(at_minute(at), rule.alert),),
        ),
        Case(
            f"stays silent when the last failure is older than {s.rate_window}",
            (_decisions("failed", constant(3, at + 2)),),
            (AlertCheck(at_minute(at), rule.alert),),
        ),
    ]


def _circuit(s: AlertsSettings, rule: AlertRule) -> list[Case]:
    at = minutes(rule.for_) + 3
    return [
        Case(
            "fires while the breaker is open, naming the receiver's job and instance",
            (Series(CIRCUIT_OPEN.name, RECEIVER, f"0 0 1+0x{at}"),),
            (AlertCheck(at_minute(at), rule.alert, (fired(rule, RECEIVER, 1.0),)),),
        ),
        Case(
            "stays silent while the breaker is closed, and resolves once it closes",
            (Series(CIRCUIT_OPEN.name, RECEIVER, f"1 1 0+0x{at}"),),
            (AlertCheck(at_minute(at), rule.alert),),
        ),
    ]


def cases(s: AlertsSettings, rules: Mapping[str, list[AlertRule]]) -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {}
    if REMEDIATION_FAILING.name in rules:
        out[REMEDIATION_FAILING.name] = _failing(s, rules[REMEDIATION_FAILING.name][0])
    if REMEDIATION_CIRCUIT_OPEN.name in rules:
        out[REMEDIATION_CIRCUIT_OPEN.name] = _circuit(s, rules[REMEDIATION_CIRCUIT_OPEN.name][0])
    return out
