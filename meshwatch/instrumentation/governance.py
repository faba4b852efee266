"""Governance metrics: the Python counterpart of the tutorial's .NET ``GovernanceMetrics``.

Every policy evaluation is recorded with :meth:`GovernanceMetrics.record_decision`.
The evaluation time is passed in milliseconds, as in the tutorial, and stored
in SECONDS (``agent_governance_evaluation_latency_seconds``), the Prometheus
base unit, with buckets from 0.5 ms to 2.5 s. When a trace is active (an
OpenTelemetry span via the adapter's provider, or a causal trace from
:func:`~meshwatch.instrumentation.context.use_trace`), the latency
observation carries its trace id as an exemplar, so a latency spike in
Grafana links to the trace that caused it.

Label sets are bounded by default: the decision (``allowed``, ``blocked``,
``rate_limited``) and the tool name. The per-agent ``agent_id`` label is
opt-in (``per_agent_labels=True``) because per-agent series, histograms above
all (14 series per agent and decision here), are what ran the upstream's
users' Prometheus out of memory in large fleets. Even when enabled, the
cardinality guard caps series per metric.

A rate-limited call counts as blocked AND as a rate-limit hit; its decision
label is ``rate_limited``. Bad inputs (a negative or NaN time, a tool name that
is not a string) never raise into the policy engine: the call is dropped,
counted in ``meshwatch_events_dropped_total{component="governance"}`` and
logged at DEBUG.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from meshwatch.instrumentation.catalogue import (
    GOVERNANCE_ACTIVE_AGENTS,
    GOVERNANCE_ALLOWED,
    GOVERNANCE_AUDIT_EVENTS,
    GOVERNANCE_BLOCKED,
    GOVERNANCE_DECISIONS,
    GOVERNANCE_LATENCY,
    GOVERNANCE_RATE_LIMIT_HITS,
    GOVERNANCE_TRUST_SCORE,
)
from meshwatch.instrumentation.context import trace_exemplar
from meshwatch.instrumentation.drops import RateLimitedLog, record_event_drop
from meshwatch.instrumentation.stores import (
    CardinalityGuard,
    CounterStore,
    GaugeStore,
    HistogramStore,
    LabelValues,
    MetricFamilySnapshot,
    finite_number,
)

COMPONENT = "governance"
DECISION_ALLOWED = "allowed"
DECISION_BLOCKED = "blocked"
DECISION_RATE_LIMITED = "rate_limited"
DEFAULT_AUDIT_EVENT_TYPE = "policy_decision"

TrustScores = Mapping[str, float] | Iterable[tuple[float, Mapping[str, Any]]]
TrustScoreCallback = Callable[[], TrustScores]
ActiveAgentsCallback = Callable[[], float]

_log = logging.getLogger(__name__)
_callback_log = RateLimitedLog(_log)


class GovernanceMetrics:
    """Policy decision counters, evaluation latency, trust scores and active agents.

    Labels are ``decision`` and ``tool_name`` only, unless
    ``per_agent_labels=True`` adds ``agent_id``: leave it off for large
    fleets, since per-agent series (histograms above all) are what ran the
    upstream's users' Prometheus out of memory. ``guard`` caps series per
    metric either way.

    >>> metrics = GovernanceMetrics()
    >>> metrics.record_decision(True, "did:mesh:a", "file_read", 0.05)
    >>> metrics.record_decision(False, "did:mesh:b", "api_call", 0.01, rate_limited=True)
    >>> metrics.decision_count("rate_limited", "api_call")
    1.0
    """

    def __init__(
        self,
        *,
        per_agent_labels: bool = False,
        guard: CardinalityGuard | None = None,
    ) -> None:
        self._per_agent = bool(per_agent_labels)
        opts: dict[str, Any] = {"with_optional_labels": self._per_agent, "guard": guard}
        self._decisions = CounterStore(GOVERNANCE_DECISIONS, **opts)
        self._allowed = CounterStore(GOVERNANCE_ALLOWED, **opts)
        self._blocked = CounterStore(GOVERNANCE_BLOCKED, **opts)
        self._rate_limited = CounterStore(GOVERNANCE_RATE_LIMIT_HITS, **opts)
        self._latency = HistogramStore(GOVERNANCE_LATENCY, **opts)
        self._audit = CounterStore(GOVERNANCE_AUDIT_EVENTS, guard=guard)
        self._guard = guard
        self._lock = threading.Lock()
        self._trust_callbacks: tuple[TrustScoreCallback, ...] = ()
        self._active_callbacks: tuple[ActiveAgentsCallback, ...] = ()

    @property
    def per_agent_labels(self) -> bool:
        return self._per_agent

    # -- recording -------------------------------------------------------------------

    def record_decision(
        self,
        allowed: bool,
        agent_id: str,
        tool_name: str,
        evaluation_ms: float,
        rate_limited: bool = False,
    ) -> None:
        """Record one policy evaluation that took ``evaluation_ms`` milliseconds."""
        if type(tool_name) is not str:
            self._drop("invalid_tool_name", tool_name)
            return
        if type(evaluation_ms) is float:
            seconds = evaluation_ms / 1000.0
            if not seconds >= 0.0 or seconds == math.inf:  # NaN fails >=
                self._drop("invalid_latency", evaluation_ms)
                return
        else:
            ms = finite_number(evaluation_ms)
            if ms is None or ms < 0:
                self._drop("invalid_latency", evaluation_ms)
                return
            seconds = ms / 1000.0
        if self._per_agent:
            if type(agent_id) is not str:
                self._drop("invalid_agent_id", agent_id)
                return
            agent: tuple[str, ...] = (agent_id,)
        else:
            agent = ()
        if rate_limited:
            decision = DECISION_RATE_LIMITED
        else:
            decision = DECISION_ALLOWED if allowed else DECISION_BLOCKED
        tool = (tool_name, *agent)
        self._decisions.inc((decision, *tool))
        if decision == DECISION_ALLOWED:
            self._allowed.inc(tool)
        else:
            self._blocked.inc(tool)
            if rate_limited:
                self._rate_limited.inc(tool)
        self._latency.observe((decision, *agent), seconds, trace_exemplar(seconds))

    def record_audit_event(
        self, event_type: str = DEFAULT_AUDIT_EVENT_TYPE, count: int = 1
    ) -> None:
        """Count ``count`` audit events of ``event_type`` emitted by the governance layer.

        ``event_type`` may also be an :class:`~meshwatch.instrumentation.events.EventType`
        (its value is used). Keep it to a fixed vocabulary: it is a label.
        """
        value = getattr(event_type, "value", event_type)
        if type(value) is not str or not value:
            self._drop("invalid_event_type", event_type)
            return
        if type(count) is not int or count < 0:
            self._drop("invalid_count", count)
            return
        self._audit.inc((value,), count)

    def _drop(self, reason: str, value: object) -> None:
        record_event_drop(COMPONENT, reason)
        _log.debug("governance metrics dropped a record: %s (%r)", reason, value)

    # -- observable gauges -------------------------------------------------------------

    def register_trust_score_gauge(self, callback: TrustScoreCallback) -> None:
        """Read trust scores (0 to 1000) from ``callback`` at every collection.

        ``callback()`` returns either a mapping ``{agent_id: score}`` or, as the
        .NET API's measurements, an iterable of ``(score, {"agent_id": id})``
        pairs. Invalid entries are skipped and counted; a callback that raises
        is logged (rate-limited) and counted, and the scrape goes on.
        """
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        with self._lock:
            self._trust_callbacks = (*self._trust_callbacks, callback)

    def register_active_agents_gauge(self, callback: ActiveAgentsCallback) -> None:
        """Read the number of active governed agents from ``callback`` at every collection."""
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        with self._lock:
            self._active_callbacks = (*self._active_callbacks, callback)

    def _call(self, callback: Callable[[], Any]) -> Any:
        try:
            return callback()
        except Exception:
            record_event_drop(COMPONENT, "callback_error")
            _callback_log.warning(
                f"callback:{id(callback)}",
                "governance gauge callback %r raised; its values are skipped",
                callback,
                exc_info=True,
            )
            return None

    def trust_scores(self) -> dict[str, float]:
        """Call the trust score callbacks now; ``{agent_id: score}`` (bounded by the guard)."""
        store = GaugeStore(GOVERNANCE_TRUST_SCORE, guard=self._guard)
        for callback in self._trust_callbacks:
            result = self._call(callback)
            if result is None:
                continue
            try:
                for agent_id, score in self._trust_entries(result):
                    store.set((agent_id,), score)
            except Exception:  # a callback's iterable can raise while we iterate it
                record_event_drop(COMPONENT, "callback_error")
                _callback_log.warning(
                    f"callback:{id(callback)}",
                    "iterating trust scores from %r raised; the rest are skipped",
                    callback,
                    exc_info=True,
                )
        return {key[0]: value for key, value in store.items().items()}

    def _trust_entries(self, result: object) -> Iterator[tuple[str, float]]:
        if isinstance(result, Mapping):
            pairs: Iterable[tuple[object, object]] = result.items()
        elif isinstance(result, Iterable) and not isinstance(result, str | bytes):
            pairs = self._measurements(result)
        else:
            record_event_drop(COMPONENT, "invalid_trust_score")
            return
        for agent_id, score in pairs:
            value = finite_number(score)
            if type(agent_id) is not str or value is None:
                record_event_drop(COMPONENT, "invalid_trust_score")
                continue
            yield agent_id, value

    @staticmethod
    def _measurements(items: Iterable[object]) -> Iterator[tuple[object, object]]:
        """``(score, {"agent_id": id})`` pairs as ``(id, score)``; malformed ones as (None, None)."""
        for item in items:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Mapping):
                yield item[1].get("agent_id"), item[0]
            else:
                yield None, None

    def active_agents(self) -> float | None:
        """Call the active-agents callbacks now; their sum, or None if none answered."""
        total: float | None = None
        for callback in self._active_callbacks:
            result = self._call(callback)
            if result is None:
                continue
            value = finite_number(result)
            if value is None:
                record_event_drop(COMPONENT, "invalid_active_agents")
                continue
            total = value if total is None else total + value
        return total

    # -- reading -------------------------------------------------------------------------

    def decision_count(self, decision: str, tool_name: str, agent_id: str | None = None) -> float:
        """How many decisions of one kind for one tool (and agent, with per-agent labels)."""
        key = (decision, tool_name, agent_id) if self._per_agent else (decision, tool_name)
        return self._decisions.get(key)

    def metric_families(self) -> Iterator[MetricFamilySnapshot]:
        """The governance metrics for the Prometheus adapter (MetricSource).

        Gauge callbacks run here, at scrape time, as the .NET observable gauges do.
        """
        yield self._decisions.snapshot()
        yield self._allowed.snapshot()
        yield self._blocked.snapshot()
        yield self._rate_limited.snapshot()
        yield self._latency.snapshot()
        if self._trust_callbacks:
            scores: dict[LabelValues, float] = {
                (agent,): score for agent, score in self.trust_scores().items()
            }
            yield MetricFamilySnapshot(
                GOVERNANCE_TRUST_SCORE, GOVERNANCE_TRUST_SCORE.labels, scores
            )
        if self._active_callbacks:
            active = self.active_agents()
            yield MetricFamilySnapshot(
                GOVERNANCE_ACTIVE_AGENTS,
                GOVERNANCE_ACTIVE_AGENTS.labels,
                {} if active is None else {(): active},
            )
        yield self._audit.snapshot()


__all__ = ["GovernanceMetrics"]
