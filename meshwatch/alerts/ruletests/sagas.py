"""Cases for the saga alerts: failure ratio, compensations, and escalations that page."""

from __future__ import annotations

from collections.abc import Mapping

from meshwatch.alerts.catalogue import (
    SAGA_COMPENSATION_RATE_HIGH,
    SAGA_ESCALATED,
    SAGA_FAILURE_RATIO_HIGH,
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
from meshwatch.alerts.ruletests.subjects import agent
from meshwatch.alerts.ruletests.threshold import (
    ThresholdProof,
    Volume,
    ratio_proof,
    threshold_cases,
)
from meshwatch.instrumentation.catalogue import SAGA_COMPENSATIONS, SAGA_ESCALATIONS, SAGAS
from meshwatch.settings import AlertsSettings


def _outcomes(value: float, at: int, subject: int, per_second: float) -> list[Series]:
    """``per_second`` sagas end each second; ``value`` of them fail or escalate (half each)."""
    shares = {"completed": 1 - value, "failed": value / 2, "escalated": value / 2}
    return [
        Series(
            SAGAS.name,
            {**agent(subject), "outcome": outcome},
            counter(share * per_second, at + 2),
        )
        for outcome, share in shares.items()
    ]


def _compensations(value: float, at: int, subject: int) -> list[Series]:
    return [Series(SAGA_COMPENSATIONS.name, agent(subject), counter(value, at + 2))]


def _escalation_cases(s: AlertsSettings, rule: AlertRule) -> list[Case]:
    """One escalation must page within the window, even the first of a new counter series."""
    window = minutes(s.rate_window)
    step = 3  # the escalation happens at minute 3
    at = step + minutes(rule.for_) + 1
    quiet_at = 2 * window + 3
    name = rule.alert
    return [
        Case(
            "fires when an agent's escalation counter goes up by one",
            (
                Series(SAGA_ESCALATIONS.name, agent(0), f"0+0x{step - 1} 1+0x{at + 2}"),
                Series(SAGA_ESCALATIONS.name, agent(1), constant(0, at + step + 2)),
            ),
            (AlertCheck(at_minute(at), name, (fired(rule, agent(0), 1.0),)),),
        ),
        Case(
            "fires on an agent's first escalation, whose counter series is born at 1",
            (Series(SAGA_ESCALATIONS.name, agent(0), f"_x{step} 1+0x{at + 2}"),),
            (AlertCheck(at_minute(at), name, (fired(rule, agent(0), 1.0),)),),
        ),
        Case(
            f"stays silent when the last escalation is older than {s.rate_window}",
            (Series(SAGA_ESCALATIONS.name, agent(0), constant(2, quiet_at + 2)),),
            (AlertCheck(at_minute(quiet_at), name),),
        ),
        Case(
            f"resolves {s.rate_window} after an escalation",
            (Series(SAGA_ESCALATIONS.name, agent(0), f"0+0x{step - 1} 1+0x{quiet_at + 2}"),),
            (AlertCheck(at_minute(step + window + 2), name),),
        ),
    ]


def cases(s: AlertsSettings, rules: Mapping[str, list[AlertRule]]) -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {}
    proofs = (
        ratio_proof(
            SAGA_FAILURE_RATIO_HIGH,
            "the share of an agent's sagas not completing",
            Volume("ended sagas", _outcomes, s.rate_window, s.saga_failure_ratio.min_events),
            agent,
        ),
        ThresholdProof(
            SAGA_COMPENSATION_RATE_HIGH,
            "an agent's compensations per second",
            _compensations,
            agent,
            warmup=s.rate_window,
        ),
    )
    for proof in proofs:
        if proof.alert.name in rules:
            out[proof.alert.name] = threshold_cases(proof, s, rules[proof.alert.name])
    if SAGA_ESCALATED.name in rules:
        out[SAGA_ESCALATED.name] = _escalation_cases(s, rules[SAGA_ESCALATED.name][0])
    return out
