"""Ring enforcement alerts: the tutorial's two ring alerts, made correct.

The tutorial alerts on ``rate(agent_hypervisor_ring_breaches_total[5m]) > 0.5``,
which is a per-*session* rate (the counter carries ``session_id``): an agent
breaching at 0.4/s in each of three sessions never fires. Here the rate is
summed by ``agent_did`` first (recording rule ``RING_BREACH_RATE``).

The tutorial's ``agent_hypervisor_ring_elevation_duration_seconds > 300`` read
a gauge set only when an elevation *ended*: it could not fire while an agent
was still elevated, and it kept firing forever after a long elevation had been
revoked. meshwatch's gauge grows live while the agent is elevated, and the
alert also requires ``agent_hypervisor_ring_elevated == 1``, so an elevation
that ended, however long it was, is silent.
"""

from __future__ import annotations

from meshwatch.alerts.catalogue import ELEVATION_TOO_LONG, HIGH_RING_BREACH_RATE
from meshwatch.alerts.model import AlertRule
from meshwatch.alerts.recording import RING_BREACH_RATE
from meshwatch.alerts.rules.tiers import tiered
from meshwatch.instrumentation.catalogue import RING_ELEVATED, RING_ELEVATION_DURATION
from meshwatch.settings import AlertsSettings


def alerts(s: AlertsSettings) -> list[AlertRule]:
    window = s.rate_window

    def breach_rate(threshold: float, note: str) -> AlertRule:
        return AlertRule(
            alert=HIGH_RING_BREACH_RATE.name,
            expr=f"{RING_BREACH_RATE.at(window)} > {threshold:g}",
            for_=s.ring_breach_rate.for_,
            summary="Agent {{ $labels.agent_did }} is breaching its ring boundary",
            description=(
                "Agent {{ $labels.agent_did }} called tools above its ring "
                "{{ $value | humanize }} times per second over the last "
                f"{window}, above {threshold:g} per second{note}."
            ),
        )

    def elevation(threshold: float, note: str) -> AlertRule:
        return AlertRule(
            alert=ELEVATION_TOO_LONG.name,
            expr=(
                f"{RING_ELEVATION_DURATION.name} > {threshold:g}"
                f" and on(agent_did) {RING_ELEVATED.name} == 1"
            ),
            for_=s.elevation_too_long.for_,
            summary="Agent {{ $labels.agent_did }} has been elevated for too long",
            description=(
                "Agent {{ $labels.agent_did }} has run above its assigned ring for "
                "{{ $value | humanizeDuration }} and is still elevated; the limit is "
                f"{threshold:g}s{note}."
            ),
        )

    return [
        *tiered(HIGH_RING_BREACH_RATE, s, breach_rate),
        *tiered(ELEVATION_TOO_LONG, s, elevation),
    ]
