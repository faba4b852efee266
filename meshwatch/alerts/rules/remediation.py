"""Remediation alerts: the receiver that acts on alerts, watched like the rest of the stack.

``RemediationFailing`` fires when a remediation failed or was refused, except
for re-sends of a decided firing (not counted as decisions): an alert the
policies route to automation then needs a person, because automation did not
handle it (the action raised, the agent is not allow-listed, the alert lacks
the label the action needs, or the breaker is open). It keeps ``alertname``
and ``action`` and its value is the count over the window.

``RemediationCircuitOpen`` pages: too many actions in the breaker's window,
so automation has stopped acting at all until the breaker closes.
"""

from __future__ import annotations

from meshwatch.alerts.catalogue import REMEDIATION_CIRCUIT_OPEN, REMEDIATION_FAILING
from meshwatch.alerts.model import AlertRule
from meshwatch.alerts.promql import sum_by
from meshwatch.instrumentation.catalogue import REMEDIATION_CIRCUIT_OPEN as CIRCUIT_OPEN
from meshwatch.instrumentation.catalogue import REMEDIATIONS
from meshwatch.settings import AlertsSettings

# Results that mean automation did not do what its policy says.
NOT_DONE = ("failed", "refused")


def alerts(s: AlertsSettings) -> list[AlertRule]:
    window = s.rate_window
    selector = f'{REMEDIATIONS.name}{{result=~"{"|".join(NOT_DONE)}"}}'
    failing = AlertRule(
        alert=REMEDIATION_FAILING.name,
        expr=sum_by(("alertname", "action"), f"increase({selector}[{window}])") + " > 0",
        for_=s.remediation_failing.for_,
        summary="Automatic remediation of {{ $labels.alertname }} did not act",
        description=(
            "The remediation receiver failed or refused {{ $value | humanize }} time(s) over the "
            f"last {window} to run {{{{ $labels.action }}}} for alert {{{{ $labels.alertname }}}}: "
            "the firing alert it was routed is not handled, so handle it by hand."
        ),
    )
    circuit = AlertRule(
        alert=REMEDIATION_CIRCUIT_OPEN.name,
        expr=f"max by (job, instance) ({CIRCUIT_OPEN.name}) > 0",
        for_=s.remediation_circuit_open.for_,
        summary="Automatic remediation has stopped: its circuit breaker is open",
        description=(
            "The remediation receiver of {{ $labels.job }} at {{ $labels.instance }} reached its "
            "limit of actions per window and refuses to act until the breaker closes: "
            "something is causing far more remediations than normal "
            f"({CIRCUIT_OPEN.name} is {{{{ $value | humanize }}}})."
        ),
    )
    return [failing, circuit]
