"""Deciding what to do about each alert, doing it, and keeping the record.

:class:`Remediator` takes parsed notifications and, for each alert, makes one
decision, in this order (the first that applies wins):

1. ``resolved``: Alertmanager says it ended. Never acted on.
2. ``duplicate``: this firing (fingerprint, ``startsAt``) was decided before.
   Alertmanager re-sends; a re-send must not act twice. Re-sends are counted
   but neither audited nor logged again.
3. ``no_policy``: the alert is not on the allow-list (no policy names it).
4. ``unknown_action``: the policy names an action nobody registered.
5. ``missing_labels``: the alert lacks a label the action needs (``agent_did``).
6. ``agent_not_allowed``: the policy's agent globs do not match its agent.
7. ``skipped``: the same action was taken (or, in a dry run, planned) for the
   same agent less than ``cooldown`` ago. A two-tier alert fires twice for one
   agent (warning and critical are two alerts), and several alerts may map to
   one action: the agent is handled once, not killed again on restart.
8. ``circuit_open``: the breaker is open, or this action would exceed
   ``max_actions`` per ``window`` (which opens it).
9. ``dry_run`` (the default) records the action's plan; otherwise the action
   runs: ``acted``, or ``failed`` if it raised.

Every decision but a duplicate becomes one ``security.remediation_decided``
event on the bus (so an attached :class:`~meshwatch.instrumentation.AuditTrail`
persists it, and ``meshwatch audit query --remediation`` shows it), one log
line, and one increment of ``meshwatch_remediations_total``.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from meshwatch.instrumentation import EventType, HypervisorEvent, HypervisorEventBus
from meshwatch.instrumentation.catalogue import (
    REMEDIATION_CIRCUIT_OPEN,
    REMEDIATION_DRY_RUN,
    REMEDIATION_REFUSALS,
    REMEDIATION_REQUESTS,
    REMEDIATIONS,
)
from meshwatch.instrumentation.stores import (
    CardinalityGuard,
    CounterStore,
    GaugeStore,
    MetricFamilySnapshot,
)
from meshwatch.remediation.actions import Action, ActionRequest, index_actions
from meshwatch.remediation.guards import CircuitBreaker, RecentlyHandled, SeenAlerts
from meshwatch.remediation.payload import Alert, Notification
from meshwatch.settings.remediation import RemediationPolicy, RemediationSettings

logger = logging.getLogger("meshwatch.remediation")

Result = Literal["acted", "dry_run", "failed", "refused", "skipped"]
RESULTS: tuple[Result, ...] = ("acted", "dry_run", "failed", "refused", "skipped")
REFUSAL_REASONS = (
    "resolved",
    "duplicate",
    "no_policy",
    "unknown_action",
    "missing_labels",
    "agent_not_allowed",
    "circuit_open",
)
# The HTTP answers the receiver gives (see meshwatch.remediation.server).
ANSWERS = (200, 400, 401, 404, 408, 411, 413)
# Who acted, in the audit trail: the receiver, on Alertmanager's behalf.
ACTOR = "meshwatch.remediation"
# The label value for alerts no policy names: alert names come from the request
# body, so only the policies' own names may become label values.
OTHER = "other"
NONE = "none"
# The agent an alert is about, under the two names meshwatch's metrics use.
AGENT_LABELS = ("agent_did", "agent_id")


@dataclass(frozen=True, slots=True)
class Decision:
    """What the receiver did about one alert."""

    alert: Alert
    action: str
    result: Result
    reason: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {
            "alertname": self.alert.name,
            "fingerprint": self.alert.fingerprint,
            "starts_at": self.alert.starts_at,
            "action": self.action,
            "result": self.result,
            "reason": self.reason,
            "detail": self.detail,
        }


def agent_of(alert: Alert) -> str | None:
    """The agent an alert is about, if it names one."""
    for label in AGENT_LABELS:
        value = alert.labels.get(label)
        if value:
            return value
    return None


class Remediator:
    """Policies, actions and guards; thread-safe. A :class:`MetricSource` of its counters.

    ``clock`` is a monotonic clock in seconds (tests pass their own).
    """

    def __init__(
        self,
        settings: RemediationSettings,
        actions: list[Action] | tuple[Action, ...],
        *,
        bus: HypervisorEventBus | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._actions = index_actions(actions)
        self._bus = bus
        self._clock = clock
        self._lock = threading.Lock()
        self._seen = SeenAlerts()
        self._handled = RecentlyHandled(settings.cooldown.seconds)
        self._breaker = CircuitBreaker(
            settings.max_actions, settings.window.seconds, settings.open_for.seconds
        )
        guard = CardinalityGuard(max_series=1_000)
        self._decisions = CounterStore(REMEDIATIONS, guard=guard)
        self._refusals = CounterStore(REMEDIATION_REFUSALS, guard=guard)
        self._requests = CounterStore(REMEDIATION_REQUESTS, guard=guard)
        self._circuit = GaugeStore(REMEDIATION_CIRCUIT_OPEN, guard=guard)
        self._dry_run = GaugeStore(REMEDIATION_DRY_RUN, guard=guard)
        self._dry_run.set((), 1.0 if settings.dry_run else 0.0)
        # Every known label value starts at 0, so a first failure is an increase().
        for reason in REFUSAL_REASONS:
            self._refusals.inc((reason,), 0.0)
        for code in ANSWERS:
            self._requests.inc((str(code),), 0.0)
        for policy in settings.policies:
            for result in RESULTS:
                self._decisions.inc((policy.alert, policy.action, result), 0.0)

    @property
    def settings(self) -> RemediationSettings:
        return self._settings

    def unknown_actions(self) -> list[str]:
        """Actions the policies name that no registered action provides."""
        return sorted({p.action for p in self._settings.policies} - set(self._actions))

    def count_request(self, code: int) -> None:
        """Count one webhook request by its answer (the HTTP server calls this)."""
        self._requests.inc((str(code),))

    def handle(self, notification: Notification) -> list[Decision]:
        """Decide on (and maybe act on) every alert of ``notification``."""
        return [self.decide(alert) for alert in notification.alerts]

    def decide(self, alert: Alert) -> Decision:
        """Decide on one alert; act unless refused or dry run. Never raises for an action."""
        policy = self._settings.policy_for(alert.name)
        with self._lock:
            refusal = self._refusal(alert, policy)
            if refusal == "duplicate":
                self._refusals.inc(("duplicate",))
                return Decision(
                    alert, policy.action if policy else NONE, "refused", "duplicate", ""
                )
            if refusal is None and policy is not None:
                handled = (policy.action, agent_of(alert) or "")
                if not self._handled.claim(handled, self._clock()):
                    return self._record(
                        Decision(alert, policy.action, "skipped", "cooldown", ""), policy
                    )
                # A dry run takes no slot: it does nothing, so it cannot trip the breaker.
                if not self._settings.dry_run and not self._breaker.admit(self._clock()):
                    self._handled.release(handled)
                    refusal = "circuit_open"
        if refusal is not None or policy is None:
            reason = refusal or "no_policy"
            return self._record(
                Decision(alert, policy.action if policy else NONE, "refused", reason, ""),
                policy,
            )
        action = self._actions[policy.action]
        request = ActionRequest(alert=alert, params=dict(policy.params))
        if self._settings.dry_run:
            return self._record(
                Decision(alert, action.name, "dry_run", "", self._plan(action, request)), policy
            )
        try:
            detail = action(request)
        except Exception as exc:  # a failing action is recorded, never raised into the server
            return self._record(
                Decision(alert, action.name, "failed", type(exc).__name__, str(exc)), policy
            )
        return self._record(Decision(alert, action.name, "acted", "", str(detail)), policy)

    def _refusal(self, alert: Alert, policy: RemediationPolicy | None) -> str | None:
        if alert.status != "firing":
            return "resolved"
        if not self._seen.add(alert.key):
            return "duplicate"
        if policy is None:
            return "no_policy"
        action = self._actions.get(policy.action)
        if action is None:
            return "unknown_action"
        if any(not alert.labels.get(label) for label in action.required_labels):
            return "missing_labels"
        agent = agent_of(alert)
        if agent is None or not any(fnmatch.fnmatchcase(agent, p) for p in policy.agents):
            return "agent_not_allowed"
        if self._breaker.is_open(self._clock()):
            return "circuit_open"
        return None

    @staticmethod
    def _plan(action: Action, request: ActionRequest) -> str:
        try:
            return str(action.plan(request))
        except Exception as exc:  # a plan that fails is still a dry run, with the reason
            return f"(plan failed: {type(exc).__name__}: {exc})"

    def _record(self, decision: Decision, policy: RemediationPolicy | None) -> Decision:
        alertname = policy.alert if policy is not None else OTHER
        self._decisions.inc((alertname, decision.action, decision.result))
        if decision.result == "refused":
            self._refusals.inc((decision.reason,))
        log = logger.warning if decision.result in ("acted", "failed") else logger.info
        log(
            "remediation %s: %s %s for %s%s",
            decision.result,
            decision.action,
            agent_of(decision.alert) or "(no agent)",
            decision.alert.name or "(no alertname)",
            f" ({decision.reason or decision.detail})"
            if decision.reason or decision.detail
            else "",
        )
        if self._bus is not None:
            self._bus.emit(
                HypervisorEvent(
                    event_type=EventType.REMEDIATION_DECIDED,
                    agent_did=agent_of(decision.alert),
                    session_id=decision.alert.labels.get("session_id") or None,
                    payload={
                        **decision.to_dict(),
                        "actor": ACTOR,
                        "dry_run": self._settings.dry_run,
                    },
                )
            )
        return decision

    def metric_families(self) -> Iterator[MetricFamilySnapshot]:
        self._circuit.set((), 1.0 if self._breaker.is_open(self._clock()) else 0.0)
        yield self._decisions.snapshot()
        yield self._refusals.snapshot()
        yield self._requests.snapshot()
        yield self._circuit.snapshot()
        yield self._dry_run.snapshot()

    def counts(self) -> Mapping[tuple[str, ...], float]:
        """``meshwatch_remediations_total`` by (alertname, action, result), for tests and tools."""
        return self._decisions.items()
