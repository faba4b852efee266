"""Tutorial section 8: the core's spans and metrics bridged to OpenTelemetry as the tutorial shows.

The tutorial's code sets the process-global tracer and meter providers, which
OpenTelemetry allows once per process, so it runs in a fresh interpreter and
the test reads what its console exporters print. A child process makes it an
integration test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

pytestmark = pytest.mark.integration

SCRIPT = textwrap.dedent(
    '''
    from meshwatch.instrumentation import (
        EventType, HypervisorEvent, HypervisorEventBus, RingMetricsCollector,
    )

    # --- "Bridging SagaSpanExporter to OpenTelemetry" (verbatim) ---
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, ConsoleSpanExporter
    from meshwatch.instrumentation import HypervisorEventBus, SagaSpanExporter, SpanSink

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("agent-hypervisor")

    class OTelSpanSink:
        """Bridge hypervisor saga spans to OpenTelemetry."""
        def record_span(self, name, start_time, end_time, attributes, status):
            with tracer.start_as_current_span(name) as span:
                for key, value in attributes.items():
                    span.set_attribute(key, str(value))
                if status == "error":
                    span.set_status(trace.StatusCode.ERROR, attributes.get("agent.saga.error", ""))

    bus = HypervisorEventBus()
    exporter = SagaSpanExporter(bus, sink=OTelSpanSink())
    # Every saga step now appears as an OTel span in your tracing backend

    step = {"saga_id": "deploy-v2", "step_id": "run-migrations", "step_action": "migrate"}
    bus.emit(HypervisorEvent(event_type=EventType.SAGA_STEP_STARTED, session_id="s1",
                             agent_did="did:mesh:orchestrator", payload=step))
    bus.emit(HypervisorEvent(event_type=EventType.SAGA_STEP_FAILED, session_id="s1",
                             agent_did="did:mesh:orchestrator",
                             payload={**step, "error": "connection_timeout"}))
    bus.emit(HypervisorEvent(event_type=EventType.SAGA_COMPLETED, payload={"saga_id": "deploy-v2"}))

    # --- the section 6 collector the metrics example bridges ---
    collector = RingMetricsCollector(bus)
    for event_type, payload in [
        (EventType.RING_ASSIGNED, {"ring": 3}),
        (EventType.RING_ELEVATED, {"from_ring": 3, "to_ring": 1}),
        (EventType.RING_BREACH_DETECTED, {"attempted_tool": "shell_exec"}),
    ]:
        bus.emit(HypervisorEvent(event_type=event_type, session_id="s1",
                                 agent_did="did:mesh:analyst", payload=payload))

    # --- "Bridging RingMetricsCollector to OpenTelemetry Metrics" (verbatim) ---
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader

    reader = PeriodicExportingMetricReader(ConsoleMetricExporter(), export_interval_millis=5000)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    meter = metrics.get_meter("agent-hypervisor")

    ring_transitions = meter.create_counter("agent_hypervisor_ring_transitions_total")
    ring_breaches = meter.create_counter("agent_hypervisor_ring_breaches_total")

    class OTelPrometheusExporter:
        def set_gauge(self, name, value, labels=None, help_text=""):
            pass  # Map to OTel gauge instruments
        def inc_counter(self, name, value=1.0, labels=None, help_text=""):
            if "transitions" in name:
                ring_transitions.add(value, labels or {})
            elif "breaches" in name:
                ring_breaches.add(value, labels or {})

    collector.export_to_prometheus(OTelPrometheusExporter())
    # A second export passes only what changed (nothing), so the totals stay exact.
    collector.export_to_prometheus(OTelPrometheusExporter())
    print("=== METRICS ===", flush=True)
    # The MeterProvider's exit hook flushes the console metric exporter.
    '''
)


def _json_documents(text: str) -> list[Any]:
    decoder = json.JSONDecoder()
    docs, index = [], 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return docs
        doc, index = decoder.raw_decode(text, index)
        docs.append(doc)


def _run() -> tuple[list[Any], list[Any]]:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    spans_text, _, metrics_text = result.stdout.partition("=== METRICS ===")
    return _json_documents(spans_text), _json_documents(metrics_text)


def test_section8_saga_spans_and_ring_metrics_reach_opentelemetry() -> None:
    spans, metric_docs = _run()

    by_name = {span["name"]: span for span in spans}
    assert set(by_name) == {"saga.step.migrate", "saga.completed.deploy-v2"}
    failed = by_name["saga.step.migrate"]
    assert failed["status"] == {"status_code": "ERROR", "description": "connection_timeout"}
    assert failed["attributes"] == {
        "agent.saga.id": "deploy-v2",
        "agent.saga.step_id": "run-migrations",
        "agent.saga.step_action": "migrate",
        "agent.saga.state": "error",
        "agent.saga.error": "connection_timeout",
        "agent.did": "did:mesh:orchestrator",
        "session.id": "s1",
    }
    assert by_name["saga.completed.deploy-v2"]["status"]["status_code"] == "UNSET"

    # Counters are cumulative: the last export (at exit) holds the totals.
    totals: dict[str, float] = {}
    for doc in metric_docs[-1:]:
        for resource in doc["resource_metrics"]:
            for scope in resource["scope_metrics"]:
                for metric in scope["metrics"]:
                    for point in metric["data"]["data_points"]:
                        totals[metric["name"]] = totals.get(metric["name"], 0) + point["value"]
    assert totals == {
        "agent_hypervisor_ring_transitions_total": 2.0,
        "agent_hypervisor_ring_breaches_total": 1.0,
    }
