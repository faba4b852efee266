"""The OpenTelemetry adapter over real OTLP/HTTP: exports to a receiver, a dead and a hung collector.

Integration tier: each test binds a loopback port (the test's OTLP receiver) or
exports to one. The spans themselves, the bounded processor with an in-process
exporter and the configuration checks are unit tests in
``tests/unit/test_otel_adapter.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import timedelta

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from meshwatch.instrumentation import (
    CausalTraceId,
    EventType,
    HypervisorEventBus,
    SagaSpanExporter,
)
from meshwatch.instrumentation.otel import (
    SPAN_EXPORT_METRICS,
    BoundedBatchSpanProcessor,
    OTelSpanSink,
    configure_tracing,
    spans_exported,
)
from tests.integration.helpers.net import LOOPBACK, free_port
from tests.integration.helpers.otlp_receiver import OtlpReceiver, wait_for_spans
from tests.integration.helpers.poll import wait_until
from tests.unit.test_otel_adapter import T0, emit, ns

pytestmark = pytest.mark.integration

REASONS = ("queue_full", "export_failed", "shutdown")
# Far beyond anything this test waits for, so the exporter never gives up on a hung
# request by itself while the test runs: what is counted cannot depend on how
# loaded the machine is. (The old version of this test lost that race: with a
# 30 s timeout, 1.45's retry schedule for a dead collector, 1+2+4+8 s of backoff,
# ended its first batch as export_failed after ~15 s on a slow run.)
EXPORT_TIMEOUT_S = 600
QUEUE = 8
BURST = 200
# A liveness bound, not a speed target: a bounded shutdown takes shutdown_timeout
# (0.5 s here); an unbounded one waits out the 600 s export.
SHUTDOWN_LIVENESS_S = 60


class WatchedExporter(SpanExporter):
    """The real OTLP exporter, with an event set when a batch reaches it."""

    def __init__(self) -> None:
        self.inner = OTLPSpanExporter(timeout=EXPORT_TIMEOUT_S)
        self.entered = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        return self.inner.export(spans)

    def shutdown(self) -> None:
        self.inner.shutdown()


@pytest.mark.parametrize("collector", ["dead", "hanging"])
def test_a_dead_or_hanging_collector_never_blocks_shutdown_is_bounded_and_losses_counted(
    monkeypatch: pytest.MonkeyPatch, collector: str
) -> None:
    """Every span is counted exactly once, none exported, and shutdown gives up instead of waiting.

    One span goes first and the burst only starts once the exporter holds it,
    so the export thread is known to be stuck: with a hung collector the
    counts are then exact (the queue keeps 8, the rest overflow, the 1 + 8 are
    never sent). A dead collector is retried with backoff, and an
    export that gives up (after ~25 s at the earliest) frees the thread for
    another batch, so there only the totals are exact: whichever reason each
    span gets, the reasons add up to every span.
    """
    with ExitStack() as stack:
        if collector == "dead":
            endpoint = f"http://{LOOPBACK}:{free_port()}"
        else:
            receiver = stack.enter_context(OtlpReceiver(mode="slow", delay=EXPORT_TIMEOUT_S))
            endpoint = receiver.endpoint
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        exporter = WatchedExporter()
        processor = BoundedBatchSpanProcessor(
            exporter,
            max_queue_size=QUEUE,
            max_export_batch_size=4,
            schedule_delay_millis=10,
            shutdown_timeout=0.5,
        )
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(processor)
        sink = OTelSpanSink(provider)

        sink.record_span("saga.step.first", 1.0, 2.0, {}, "ok")
        wait_until(exporter.entered.is_set, timeout=30, what="the first span handed to export")
        if collector == "hanging":
            wait_until(
                lambda: receiver.request_count, timeout=30, what="the request at the collector"
            )

        def burst() -> None:
            for i in range(BURST):
                sink.record_span(f"saga.step.s{i}", 1.0, 2.0, {}, "ok")

        emitter = threading.Thread(target=burst)
        emitter.start()
        emitter.join(timeout=SHUTDOWN_LIVENESS_S)
        assert not emitter.is_alive(), "record_span blocked on the collector"
        assert processor.pending <= QUEUE, "the queue bound held"
        assert processor.dropped("queue_full") > 0 or collector == "dead"

        stopper = threading.Thread(target=provider.shutdown)
        stopper.start()
        stopper.join(timeout=SHUTDOWN_LIVENESS_S)
        assert not stopper.is_alive(), "shutdown waited for the collector"

        if collector == "hanging":
            # The collector held the first request throughout: the queue kept 8 spans,
            # and the rest of the burst overflowed.
            assert processor.dropped("queue_full") == BURST - QUEUE
            # The held span and the queued ones were never sent: shutdown gave up on
            # them (or, should stopping the exporter cut the held request, the
            # exporter reported them failed); the collector still holds the request.
            unsent = processor.dropped("shutdown") + processor.dropped("export_failed")
            assert unsent == 1 + QUEUE
            assert receiver.spans() == []
    assert processor.exported == 0
    assert sum(processor.dropped(r) for r in REASONS) == 1 + BURST
    assert processor.pending == 0


def test_configure_tracing_exports_over_otlp_http_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
        provider = configure_tracing(set_global=False, schedule_delay_millis=10)
        exported = spans_exported()
        try:
            bus = HypervisorEventBus()
            SagaSpanExporter(bus, sink=OTelSpanSink(provider))
            trace = CausalTraceId().child()
            emit(bus, EventType.SAGA_CREATED, T0, trace, saga_id="deploy")
            emit(bus, EventType.SAGA_COMPLETED, T0 + timedelta(seconds=3), trace, saga_id="deploy")
            (span,) = wait_for_spans(receiver, 1, timeout=30)
        finally:
            provider.shutdown()

    assert span.name == "saga.completed"
    assert span.trace_id == trace.trace_id_hex32
    assert span.parent_span_id == f"{trace.span_id:0>16}"
    assert (span.start_ns, span.end_ns) == (ns(T0), ns(T0 + timedelta(seconds=3)))
    assert span.resource["service.name"] == "meshwatch-agent"
    assert span.resource["deployment.environment"] == "test"
    assert spans_exported() == exported + 1
    (family,) = SPAN_EXPORT_METRICS.metric_families()
    assert family.samples[()] == spans_exported()


def test_configure_tracing_takes_service_name_and_a_base_endpoint() -> None:
    with OtlpReceiver() as receiver:
        provider = configure_tracing(
            "researcher", endpoint=receiver.endpoint, set_global=False, schedule_delay_millis=10
        )
        try:
            OTelSpanSink(provider).record_span("saga.step.x", 1.0, 2.0, {}, "ok")
            (span,) = wait_for_spans(receiver, 1, timeout=30)
        finally:
            provider.shutdown()
    assert span.resource["service.name"] == "researcher"
