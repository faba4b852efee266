"""The metric catalogue: every metric meshwatch exposes, declared exactly once.

Collectors, the Prometheus adapter, alert rules and dashboards all take metric
names from here. A test (tests/unit/test_catalogue.py) fails if a metric name
is spelled as a string literal anywhere else in ``meshwatch/``, so renaming a
metric is a one-line change that every consumer follows.

Naming follows Prometheus conventions: base units (seconds, bytes) in the name,
counters end in ``_total``, and every label set is bounded. Labels that carry an
identity (``agent_did``, ``agent_id``, ``session_id``) are capped by the
cardinality guard (:mod:`meshwatch.instrumentation.stores`).

This module imports nothing outside the standard library.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field


class MetricType(enum.Enum):
    """The Prometheus metric types meshwatch uses."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True, slots=True)
class MetricDef:
    """One metric: its exposition name, type, unit, labels and help text.

    ``name`` is the full name as it appears in PromQL (counters include the
    ``_total`` suffix). ``optional_labels`` are labels a user can switch on
    (for example the per-agent label of governance metrics); they are always
    placed after ``labels`` in a series' label tuple when enabled.
    """

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()
    unit: str = ""
    buckets: tuple[float, ...] = ()
    optional_labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type is MetricType.COUNTER and not self.name.endswith("_total"):
            raise ValueError(f"counter {self.name!r} must end in _total")
        if self.type is not MetricType.COUNTER and self.name.endswith("_total"):
            raise ValueError(f"{self.type.value} {self.name!r} must not end in _total")
        if self.unit and not (self.name.endswith("_" + self.unit) or f"_{self.unit}_" in self.name):
            raise ValueError(f"metric {self.name!r} must carry its unit {self.unit!r} in its name")
        if self.type is MetricType.HISTOGRAM:
            if not self.buckets or list(self.buckets) != sorted(set(self.buckets)):
                raise ValueError(f"histogram {self.name!r} needs strictly increasing buckets")
        elif self.buckets:
            raise ValueError(f"only histograms have buckets, not {self.name!r}")
        if "le" in self.labels or "quantile" in self.labels:
            raise ValueError(f"metric {self.name!r} uses a reserved label name")

    @property
    def family(self) -> str:
        """The metric family name (without ``_total``), as prometheus_client wants it."""
        return self.name.removesuffix("_total") if self.type is MetricType.COUNTER else self.name

    @property
    def series_names(self) -> tuple[str, ...]:
        """Every series name this metric produces in the exposition format."""
        if self.type is MetricType.HISTOGRAM:
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)

    def all_labels(self, *, with_optional: bool = False) -> tuple[str, ...]:
        """The label names of a series, optionally with the opt-in labels appended."""
        return self.labels + self.optional_labels if with_optional else self.labels


# Governance evaluation is sub-millisecond when healthy and seconds when a policy
# backend is sick: 0.5 ms to 2.5 s, roughly x2.5 per step.
GOVERNANCE_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
# Agent tasks run from sub-second tool calls to multi-minute research tasks.
TASK_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
SAGA_STEP_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
GENAI_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
UNIT_INTERVAL_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
OPTIONS_BUCKETS = (1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0)
MESSAGE_SIZE_BUCKETS = (64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0)
# The GenAI semantic conventions' advisory bucket boundaries.
GENAI_TOKEN_BUCKETS = tuple(float(4**i) for i in range(14))  # 1, 4, 16, ... 67108864
GENAI_CLIENT_DURATION_BUCKETS = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
GENAI_WORKFLOW_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
WAIT_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)

_C, _G, _H = MetricType.COUNTER, MetricType.GAUGE, MetricType.HISTOGRAM

# --- Ring enforcement (tutorial section 6) -----------------------------------
RING_TRANSITIONS = MetricDef(
    "agent_hypervisor_ring_transitions_total",
    _C,
    "Ring assignments, elevations, demotions and expirations.",
    ("event_type", "agent_did", "session_id"),
)
RING_BREACHES = MetricDef(
    "agent_hypervisor_ring_breaches_total",
    _C,
    "Capability boundary violations (an agent used a tool above its ring).",
    ("agent_did", "session_id"),
)
RING_CURRENT = MetricDef(
    "agent_hypervisor_ring_current",
    _G,
    "Current ring level of the agent (0=root, 3=sandbox).",
    ("agent_did",),
)
RING_ELEVATION_DURATION = MetricDef(
    "agent_hypervisor_ring_elevation_duration_seconds",
    _G,
    "Length of the agent's current elevation while elevated (grows live), else of its last one.",
    ("agent_did",),
    unit="seconds",
)
RING_ELEVATIONS_DENIED = MetricDef(
    "agent_hypervisor_ring_elevations_denied_total",
    _C,
    "Ring elevation requests refused, by reason (insufficient_trust, duplicate_elevation, ...).",
    ("agent_did", "reason"),
)
RING_ELEVATED = MetricDef(
    "agent_hypervisor_ring_elevated",
    _G,
    "1 while the agent runs above its assigned ring, else 0.",
    ("agent_did",),
)

# --- Sagas (tutorial section 7; metrics beside the spans) --------------------
SAGAS = MetricDef(
    "agent_hypervisor_sagas_total",
    _C,
    "Sagas that ended, by outcome (completed, escalated, failed).",
    ("agent_did", "outcome"),
)
SAGA_STEPS = MetricDef(
    "agent_hypervisor_saga_steps_total",
    _C,
    "Saga steps that ended, by outcome (committed, failed, compensated).",
    ("agent_did", "outcome"),
)
SAGA_COMPENSATIONS = MetricDef(
    "agent_hypervisor_saga_compensations_total",
    _C,
    "Compensating actions started after a failed saga step.",
    ("agent_did",),
)
SAGA_ESCALATIONS = MetricDef(
    "agent_hypervisor_saga_escalations_total",
    _C,
    "Sagas escalated to a human because compensation could not restore consistency.",
    ("agent_did",),
)
SAGA_STEP_DURATION = MetricDef(
    "agent_hypervisor_saga_step_duration_seconds",
    _H,
    "Duration of saga steps from start to commit or failure.",
    ("outcome",),
    unit="seconds",
    buckets=SAGA_STEP_DURATION_BUCKETS,
)

# --- Governance (tutorial section 9, the .NET class in Python) ----------------
GOVERNANCE_DECISIONS = MetricDef(
    "agent_governance_policy_decisions_total",
    _C,
    "Governance policy evaluations, by decision (allowed, blocked, rate_limited).",
    ("decision", "tool_name"),
    optional_labels=("agent_id",),
)
GOVERNANCE_ALLOWED = MetricDef(
    "agent_governance_tool_calls_allowed_total",
    _C,
    "Tool calls permitted by policy.",
    ("tool_name",),
    optional_labels=("agent_id",),
)
GOVERNANCE_BLOCKED = MetricDef(
    "agent_governance_tool_calls_blocked_total",
    _C,
    "Tool calls denied by policy (rate-limited calls included).",
    ("tool_name",),
    optional_labels=("agent_id",),
)
GOVERNANCE_RATE_LIMIT_HITS = MetricDef(
    "agent_governance_rate_limit_hits_total",
    _C,
    "Tool calls rejected by the rate limiter.",
    ("tool_name",),
    optional_labels=("agent_id",),
)
GOVERNANCE_LATENCY = MetricDef(
    "agent_governance_evaluation_latency_seconds",
    _H,
    "Governance policy evaluation latency.",
    ("decision",),
    unit="seconds",
    buckets=GOVERNANCE_LATENCY_BUCKETS,
    optional_labels=("agent_id",),
)
GOVERNANCE_TRUST_SCORE = MetricDef(
    "agent_governance_trust_score",
    _G,
    "Current trust score of the agent, 0 to 1000.",
    ("agent_id",),
)
GOVERNANCE_ACTIVE_AGENTS = MetricDef(
    "agent_governance_active_agents",
    _G,
    "Number of active governed agents.",
)
GOVERNANCE_AUDIT_EVENTS = MetricDef(
    "agent_governance_audit_events_total",
    _C,
    "Audit events emitted by the governance layer, by event type.",
    ("event_type",),
)

# --- Agent work (issue: agent work instrumentation) ---------------------------
TASKS_STARTED = MetricDef(
    "agent_tasks_started_total",
    _C,
    "Tasks an agent started.",
    ("agent_did", "task_type"),
)
TASKS_COMPLETED = MetricDef(
    "agent_tasks_completed_total",
    _C,
    "Tasks an agent completed successfully.",
    ("agent_did", "task_type"),
)
TASKS_FAILED = MetricDef(
    "agent_tasks_failed_total",
    _C,
    "Tasks that ended in an error.",
    ("agent_did", "task_type"),
)
TASK_DURATION = MetricDef(
    "agent_task_duration_seconds",
    _H,
    "Task duration from start to outcome.",
    ("agent_did", "task_type"),
    unit="seconds",
    buckets=TASK_DURATION_BUCKETS,
)
TASK_QUALITY = MetricDef(
    "agent_task_quality_score",
    _H,
    "Quality score of finished tasks, 0 to 1.",
    ("task_type",),
    buckets=UNIT_INTERVAL_BUCKETS,
)
QUEUE_LENGTH = MetricDef(
    "agent_queue_length",
    _G,
    "Tasks waiting in the agent's queue.",
    ("agent_did",),
)
DECISIONS = MetricDef(
    "agent_decisions_total",
    _C,
    "Decisions an agent made, by decision type.",
    ("agent_did", "decision_type"),
)
DECISION_CONFIDENCE = MetricDef(
    "agent_decision_confidence",
    _H,
    "Confidence of decisions, 0 to 1.",
    ("decision_type",),
    buckets=UNIT_INTERVAL_BUCKETS,
)
DECISION_OPTIONS = MetricDef(
    "agent_decision_options_considered",
    _H,
    "Options an agent weighed per decision.",
    ("decision_type",),
    buckets=OPTIONS_BUCKETS,
)
MESSAGES_SENT = MetricDef(
    "agent_messages_sent_total",
    _C,
    "Inter-agent messages sent, by type and outcome.",
    ("agent_did", "message_type", "outcome"),
)
MESSAGES_RECEIVED = MetricDef(
    "agent_messages_received_total",
    _C,
    "Inter-agent messages received, by type.",
    ("agent_did", "message_type"),
)
MESSAGE_SIZE = MetricDef(
    "agent_message_size_bytes",
    _H,
    "Size of inter-agent messages.",
    ("message_type",),
    unit="bytes",
    buckets=MESSAGE_SIZE_BUCKETS,
)
CONFLICTS = MetricDef(
    "agent_conflicts_total",
    _C,
    "Conflicts between agents, by state (started, resolved, failed).",
    ("agent_did", "state"),
)
CONFLICT_RESOLUTION_DURATION = MetricDef(
    "agent_conflict_resolution_duration_seconds",
    _H,
    "Time from a conflict's start to its resolution or failure.",
    ("state",),
    unit="seconds",
    buckets=WAIT_DURATION_BUCKETS,
)
DEPENDENCY_WAIT_DURATION = MetricDef(
    "agent_dependency_wait_duration_seconds",
    _H,
    "Time an agent waited on another agent's output.",
    (),
    unit="seconds",
    buckets=WAIT_DURATION_BUCKETS,
)
GENAI_INVOKE_AGENT_DURATION = MetricDef(
    "gen_ai_invoke_agent_duration_seconds",
    _H,
    "Duration of invoke_agent operations (OpenTelemetry GenAI gen_ai.invoke_agent.duration).",
    ("gen_ai_agent_name", "error_type"),
    unit="seconds",
    buckets=GENAI_DURATION_BUCKETS,
)
GENAI_EXECUTE_TOOL_DURATION = MetricDef(
    "gen_ai_execute_tool_duration_seconds",
    _H,
    "Duration of execute_tool operations (OpenTelemetry GenAI gen_ai.execute_tool.duration).",
    ("gen_ai_tool_name", "error_type"),
    unit="seconds",
    buckets=GENAI_DURATION_BUCKETS,
)

GENAI_WORKFLOW_DURATION = MetricDef(
    "gen_ai_workflow_duration_seconds",
    _H,
    "Duration of invoke_workflow operations (OpenTelemetry GenAI gen_ai.workflow.duration).",
    ("gen_ai_workflow_name", "error_type"),
    unit="seconds",
    buckets=GENAI_WORKFLOW_BUCKETS,
)

# --- LLM calls: tokens, cost, latency (OpenTelemetry GenAI client metrics) ----
# The first two are the semconv metrics gen_ai.client.token.usage ({token}) and
# gen_ai.client.operation.duration (s) under the names and label names the
# OpenTelemetry -> Prometheus mapping gives them, plus the agent that made the
# call (gen_ai_agent_name), which no OTel producer puts on them.
_LLM_LABELS = (
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "gen_ai_agent_name",
)
GENAI_CLIENT_TOKEN_USAGE = MetricDef(
    "gen_ai_client_token_usage",
    _H,
    "Input and output tokens per LLM call (OpenTelemetry GenAI gen_ai.client.token.usage).",
    (*_LLM_LABELS, "gen_ai_token_type"),
    buckets=GENAI_TOKEN_BUCKETS,
)
GENAI_CLIENT_OPERATION_DURATION = MetricDef(
    "gen_ai_client_operation_duration_seconds",
    _H,
    "Duration of LLM calls (OpenTelemetry GenAI gen_ai.client.operation.duration).",
    (*_LLM_LABELS, "error_type"),
    unit="seconds",
    buckets=GENAI_CLIENT_DURATION_BUCKETS,
)
LLM_CALLS = MetricDef(
    "agent_llm_calls_total",
    _C,
    "LLM calls made, failed ones included.",
    _LLM_LABELS,
)
LLM_CALL_ERRORS = MetricDef(
    "agent_llm_call_errors_total",
    _C,
    "LLM calls that ended in an error, by error type.",
    (*_LLM_LABELS, "error_type"),
)
LLM_CACHE_TOKENS = MetricDef(
    "agent_llm_cache_tokens_total",
    _C,
    "Input tokens read from (cache_read) or written to (cache_creation) the provider's prompt cache.",
    (*_LLM_LABELS, "gen_ai_token_type"),
)
LLM_COST = MetricDef(
    "agent_llm_cost_usd_total",
    _C,
    "Cost of LLM calls in US dollars, from the configured per-model prices.",
    _LLM_LABELS,
    unit="usd",
)
LLM_UNPRICED_TOKENS = MetricDef(
    "agent_llm_unpriced_tokens_total",
    _C,
    "Tokens of calls to a model (or token type) without a configured price: not in the cost.",
    (*_LLM_LABELS, "gen_ai_token_type"),
)

# --- meshwatch about itself -----------------------------------------------------
BUS_EVENTS = MetricDef(
    "meshwatch_bus_events_total",
    _C,
    "Events emitted on the event bus, by event type.",
    ("event_type",),
)
BUS_RETAINED_EVENTS = MetricDef(
    "meshwatch_bus_retained_events",
    _G,
    "Events currently retained in the bus log.",
)
BUS_SUBSCRIBER_ERRORS = MetricDef(
    "meshwatch_bus_subscriber_errors_total",
    _C,
    "Exceptions raised by bus subscribers (logged, never propagated to emit).",
    ("event_type",),
)
EVENTS_DROPPED = MetricDef(
    "meshwatch_events_dropped_total",
    _C,
    "Events a collector ignored because their payload was malformed.",
    ("component", "reason"),
)
SERIES_OVERFLOW = MetricDef(
    "meshwatch_series_overflow_total",
    _C,
    "Observations folded into the overflow series because a metric hit its series cap.",
    ("metric",),
)
SCRAPE_ERRORS = MetricDef(
    "meshwatch_scrape_errors_total",
    _C,
    "Metric sources that raised during a scrape (skipped; the rest of the scrape is served).",
    ("source",),
)
SPANS_EXPORTED = MetricDef(
    "meshwatch_spans_exported_total",
    _C,
    "Spans handed to the span exporter successfully.",
)
SPANS_DROPPED = MetricDef(
    "meshwatch_spans_dropped_total",
    _C,
    "Spans dropped before export (queue full, exporter failure).",
    ("reason",),
)
AUDIT_EVENTS_WRITTEN = MetricDef(
    "meshwatch_audit_events_written_total",
    _C,
    "Events persisted to the audit trail.",
)
AUDIT_EVENTS_DROPPED = MetricDef(
    "meshwatch_audit_events_dropped_total",
    _C,
    "Events not persisted to the audit trail, by reason (queue_full, write_error, closed).",
    ("reason",),
)
AUDIT_QUEUE_DEPTH = MetricDef(
    "meshwatch_audit_queue_depth",
    _G,
    "Events waiting for the audit writer thread.",
)


# --- Remediation (meshwatch.remediation: alerts that act on the runtime) ------
REMEDIATIONS = MetricDef(
    "meshwatch_remediations_total",
    _C,
    "Remediation decisions by alert, action and result (acted, dry_run, failed, refused).",
    ("alertname", "action", "result"),
)
REMEDIATION_REFUSALS = MetricDef(
    "meshwatch_remediation_refusals_total",
    _C,
    "Alerts the remediation receiver did not act on, by reason.",
    ("reason",),
)
REMEDIATION_REQUESTS = MetricDef(
    "meshwatch_remediation_requests_total",
    _C,
    "Webhook requests to the remediation receiver, by HTTP status code.",
    ("code",),
)
REMEDIATION_CIRCUIT_OPEN = MetricDef(
    "meshwatch_remediation_circuit_open",
    _G,
    "1 while the remediation circuit breaker is open (too many actions; nothing is done), else 0.",
)
REMEDIATION_DRY_RUN = MetricDef(
    "meshwatch_remediation_dry_run",
    _G,
    "1 while the remediation receiver only records what it would do, 0 while it acts.",
)


@dataclass(frozen=True)
class Catalogue:
    """An ordered, name-indexed collection of metric definitions."""

    metrics: tuple[MetricDef, ...]
    _by_name: dict[str, MetricDef] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, MetricDef] = {}
        for metric in self.metrics:
            for series in (metric.name, *metric.series_names):
                clash = by_name.get(series)
                if clash is not None and clash is not metric:
                    raise ValueError(f"metric name {series!r} declared twice")
                by_name[series] = metric
        object.__setattr__(self, "_by_name", by_name)

    def __iter__(self) -> Iterator[MetricDef]:
        return iter(self.metrics)

    def __len__(self) -> int:
        return len(self.metrics)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str) -> MetricDef:
        """The metric that produces series ``name`` (``foo_bucket`` finds ``foo``)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"metric {name!r} is not in the meshwatch catalogue") from None

    def series_names(self) -> frozenset[str]:
        """Every series name any catalogue metric can produce."""
        return frozenset(self._by_name)


CATALOGUE = Catalogue(tuple(v for v in dict(globals()).values() if isinstance(v, MetricDef)))

__all__ = [
    "CATALOGUE",
    "Catalogue",
    "MetricDef",
    "MetricType",
    *sorted(name for name, v in dict(globals()).items() if isinstance(v, MetricDef)),
]
