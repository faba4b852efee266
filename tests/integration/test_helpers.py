"""The test-side receivers speak the real protocols: proven against the real clients.

If the OTLP receiver mis-decoded spans or the webhook receiver mis-filed a
notification, the chain tests would fail (or pass) for the wrong reason, so
each helper is checked against the real client library first.
"""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

from tests.integration.helpers.otlp_receiver import OtlpReceiver, wait_for_spans
from tests.integration.helpers.poll import WaitTimeout, wait_until
from tests.integration.helpers.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.integration


def test_otlp_receiver_decodes_spans_from_the_sdk_exporter() -> None:
    with OtlpReceiver() as receiver:
        provider = TracerProvider(resource=Resource.create({"service.name": "helper-test"}))
        provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.traces_url, timeout=5))
        )
        tracer = provider.get_tracer("meshwatch.test")
        with tracer.start_as_current_span("parent") as parent:
            parent.set_attribute("gen_ai.agent.name", "writer")
            with tracer.start_as_current_span("child"):
                pass
        provider.shutdown()
        spans = {s.name: s for s in wait_for_spans(receiver, 2, timeout=10)}

    assert spans["child"].parent_span_id == spans["parent"].span_id
    assert spans["child"].trace_id == spans["parent"].trace_id
    assert spans["parent"].parent_span_id == ""
    assert spans["parent"].attributes == {"gen_ai.agent.name": "writer"}
    assert spans["parent"].resource["service.name"] == "helper-test"
    assert spans["parent"].scope == "meshwatch.test"


def test_otlp_receiver_in_error_mode_rejects_and_keeps_nothing() -> None:
    with OtlpReceiver(mode="error") as receiver:
        exporter = OTLPSpanExporter(endpoint=receiver.traces_url, timeout=2)
        provider = TracerProvider()
        tracer = provider.get_tracer("meshwatch.test")
        span = tracer.start_span("lost")
        span.end()
        # The SDK retries 503 with backoff until its timeout, then reports failure.
        assert exporter.export([span]) is SpanExportResult.FAILURE  # type: ignore[list-item]
        exporter.shutdown()
        assert receiver.request_count >= 1
        assert receiver.spans() == []


def test_webhook_receiver_files_alerts_by_path() -> None:
    payload = {
        "status": "firing",
        "alerts": [
            {"status": "firing", "labels": {"alertname": "A", "severity": "critical"}},
            {"status": "resolved", "labels": {"alertname": "B"}, "annotations": {"x": "y"}},
        ],
    }
    with WebhookReceiver() as hooks:
        request = urllib.request.Request(
            hooks.url("critical"),
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        assert [a.alertname for a in hooks.alerts(path="/critical")] == ["A", "B"]
        assert hooks.alerts(path="/warning") == []
        (resolved,) = hooks.alerts(status="resolved")
        assert resolved.annotations == {"x": "y"}
        assert hooks.alerts(labels={"severity": "critical"})[0].alertname == "A"


def test_wait_until_reports_the_last_error_it_saw() -> None:
    def never() -> bool:
        raise ConnectionRefusedError("nobody home")

    started = time.monotonic()
    with pytest.raises(WaitTimeout, match="nobody home"):
        wait_until(never, timeout=0.3, interval=0.05, what="a server")
    assert time.monotonic() - started >= 0.3
