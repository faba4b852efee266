"""``meshwatch.instrumentation`` exports its public names, once each, and each resolves."""

from __future__ import annotations

import meshwatch.instrumentation

EXPECTED_PUBLIC_NAMES = {
    "CardinalityGuard",
    "CausalTraceId",
    "EventType",
    "GovernanceMetrics",
    "HypervisorEvent",
    "HypervisorEventBus",
    "Instrumented",
    "PrometheusExporterProtocol",
    "RingMetricsCollector",
    "SagaMetricsCollector",
    "SagaSpanExporter",
    "SagaSpanRecord",
    "SpanSink",
    "configure_cardinality",
    "current_trace",
    "instrument",
    "use_trace",
}


def test_public_api_is_exported_and_resolves() -> None:
    exported = set(meshwatch.instrumentation.__all__)
    assert not EXPECTED_PUBLIC_NAMES - exported
    assert len(exported) == len(meshwatch.instrumentation.__all__), "duplicates in __all__"
    for name in exported:
        assert getattr(meshwatch.instrumentation, name) is not None
