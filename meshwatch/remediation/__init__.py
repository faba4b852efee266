"""Closed-loop remediation: Alertmanager alerts that act on the running agents.

Prometheus fires an alert, Alertmanager posts it here, a policy in
``meshwatch.yaml`` (``remediation:``) maps it to an action, the action changes
the runtime (kills the agent, revokes its elevation, quarantines it), the
metrics show it and the alert resolves. The receiver runs inside the process
that holds the runtime objects it acts on::

    from meshwatch.remediation import start_remediation
    from meshwatch.integrations.agent_hypervisor.remediation import hypervisor_actions

    receiver = start_remediation(
        settings.remediation, hypervisor_actions(kill_switch=ks, hypervisor=hv), bus=bus
    )
    serve_metrics(8000, sources=[bus, ring, receiver])

Safe by default: a dry run unless ``dry_run: false``; only allow-listed alerts
and agents; once per firing; at most ``max_actions`` per ``window``; a bearer
token; loopback only. Teams on other runtimes register their own
:class:`Action`.
"""

from meshwatch.remediation.actions import Action, ActionError, ActionRequest
from meshwatch.remediation.engine import Decision, Remediator
from meshwatch.remediation.payload import Alert, Notification, PayloadError, parse
from meshwatch.remediation.server import (
    RemediationError,
    RemediationReceiver,
    read_token,
    start_remediation,
)

__all__ = [
    "Action",
    "ActionError",
    "ActionRequest",
    "Alert",
    "Decision",
    "Notification",
    "PayloadError",
    "RemediationError",
    "RemediationReceiver",
    "Remediator",
    "parse",
    "read_token",
    "start_remediation",
]
