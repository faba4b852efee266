"""Saga alerts: failing and compensating sagas, and escalations to a human.

An escalation means compensation could not restore consistency, so any one
pages (``SagaEscalated``, critical, no threshold). ``increase()`` needs two
samples, so it misses the first escalation of an agent whose counter series is
born at 1 (a counter is only exported once incremented); the second arm of the
expression catches a series that appeared with a value above zero within the
window.
"""

from __future__ import annotations

from meshwatch.alerts.catalogue import (
    SAGA_COMPENSATION_RATE_HIGH,
    SAGA_ESCALATED,
    SAGA_FAILURE_RATIO_HIGH,
)
from meshwatch.alerts.model import AlertRule
from meshwatch.alerts.promql import sum_by
from meshwatch.alerts.recording import (
    SAGA_COMPENSATION_RATE,
    SAGA_FAILURE_RATIO,
    sagas_ended_per_second,
)
from meshwatch.alerts.rules.ratios import guarded, volume_note
from meshwatch.alerts.rules.tiers import percent, tiered
from meshwatch.instrumentation.catalogue import SAGA_ESCALATIONS
from meshwatch.settings import AlertsSettings


def alerts(s: AlertsSettings) -> list[AlertRule]:
    window = s.rate_window

    def failures(threshold: float, note: str) -> AlertRule:
        return AlertRule(
            alert=SAGA_FAILURE_RATIO_HIGH.name,
            expr=guarded(
                f"{SAGA_FAILURE_RATIO.at(window)} > {threshold:g}",
                s.saga_failure_ratio,
                ("agent_did",),
                sagas_ended_per_second(window),
                window,
            ),
            for_=s.saga_failure_ratio.for_,
            summary="Sagas run by {{ $labels.agent_did }} are failing",
            description=(
                "{{ $value | humanizePercentage }} of the sagas agent {{ $labels.agent_did }} "
                f"ran over the last {window} failed or escalated instead of completing, "
                f"above {percent(threshold)}{note}."
                + volume_note(s.saga_failure_ratio, "ended sagas")
            ),
        )

    def compensations(threshold: float, note: str) -> AlertRule:
        return AlertRule(
            alert=SAGA_COMPENSATION_RATE_HIGH.name,
            expr=f"{SAGA_COMPENSATION_RATE.at(window)} > {threshold:g}",
            for_=s.saga_compensation_rate.for_,
            summary="Agent {{ $labels.agent_did }} keeps compensating saga steps",
            description=(
                "Agent {{ $labels.agent_did }} started {{ $value | humanize }} compensating "
                f"actions per second over the last {window}, above {threshold:g} per second"
                f"{note}."
            ),
        )

    escalations = SAGA_ESCALATIONS.name
    by_agent = ("agent_did",)
    escalated = AlertRule(
        alert=SAGA_ESCALATED.name,
        expr=(
            f"{sum_by(by_agent, f'increase({escalations}[{window}])')} > 0"
            f" or ({sum_by(by_agent, escalations)} > 0"
            f" unless {sum_by(by_agent, f'{escalations} offset {window}')})"
        ),
        for_=s.saga_escalated.for_,
        summary="A saga run by {{ $labels.agent_did }} was escalated to a human",
        description=(
            "Agent {{ $labels.agent_did }} escalated {{ $value | humanize }} saga(s) in the "
            f"last {window}: compensation could not restore a consistent state, and a person "
            "has to finish or undo the work by hand."
        ),
    )
    return [
        *tiered(SAGA_FAILURE_RATIO_HIGH, s, failures),
        *tiered(SAGA_COMPENSATION_RATE_HIGH, s, compensations),
        escalated,
    ]
