"""meshwatch.instrumentation: the pure-Python core agents import.

Events, the event bus, causal trace ids, and the collectors that turn events
into metrics and spans. Nothing imported here pulls in prometheus_client or
OpenTelemetry; the adapters that do are imported explicitly::

    from meshwatch.instrumentation.prometheus import ...
    from meshwatch.instrumentation.otel import ...
"""

from meshwatch.instrumentation.audit import (
    AuditDatabaseError,
    AuditFilter,
    AuditReader,
    AuditTrail,
)
from meshwatch.instrumentation.bus import HypervisorEventBus, Subscription
from meshwatch.instrumentation.context import (
    current_trace,
    current_trace_id_hex,
    register_trace_id_provider,
    unregister_trace_id_provider,
    use_trace,
)
from meshwatch.instrumentation.drops import DROPS
from meshwatch.instrumentation.events import EventCategory, EventType, HypervisorEvent
from meshwatch.instrumentation.governance import GovernanceMetrics
from meshwatch.instrumentation.logs import JsonFormatter, configure_logging, log_context
from meshwatch.instrumentation.protocols import PrometheusExporterProtocol, SpanSink
from meshwatch.instrumentation.ring_metrics import RingMetricsCollector
from meshwatch.instrumentation.saga_metrics import SagaMetricsCollector
from meshwatch.instrumentation.saga_spans import SagaSpanExporter, SagaSpanRecord
from meshwatch.instrumentation.stores import (
    CardinalityGuard,
    MetricSource,
    configure_cardinality,
)
from meshwatch.instrumentation.trace import CausalTraceId
from meshwatch.instrumentation.wiring import Instrumented, instrument
from meshwatch.instrumentation.work_metrics import AgentMetrics

__all__ = [
    "DROPS",
    "AgentMetrics",
    "AuditDatabaseError",
    "AuditFilter",
    "AuditReader",
    "AuditTrail",
    "CardinalityGuard",
    "CausalTraceId",
    "EventCategory",
    "EventType",
    "GovernanceMetrics",
    "HypervisorEvent",
    "HypervisorEventBus",
    "Instrumented",
    "JsonFormatter",
    "MetricSource",
    "PrometheusExporterProtocol",
    "RingMetricsCollector",
    "SagaMetricsCollector",
    "SagaSpanExporter",
    "SagaSpanRecord",
    "SpanSink",
    "Subscription",
    "configure_cardinality",
    "configure_logging",
    "current_trace",
    "current_trace_id_hex",
    "instrument",
    "log_context",
    "register_trace_id_provider",
    "unregister_trace_id_provider",
    "use_trace",
]
