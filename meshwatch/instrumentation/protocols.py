"""The two edges of the core: where metrics and spans leave for a real backend.

The core never imports prometheus_client or OpenTelemetry; it talks to these
protocols, and adapters (``meshwatch.instrumentation.prometheus``,
``meshwatch.instrumentation.otel``) or a user's own classes implement them.
Both are ``runtime_checkable`` so an ``isinstance`` check can reject an
object that lacks the method at attach time, not at the first event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class PrometheusExporterProtocol(Protocol):
    """Anything that can set a gauge and add to a counter by metric name.

    ``inc_counter`` ADDS ``value``; callers pass only what changed since their
    last call (see ``RingMetricsCollector.export_to_prometheus``).
    """

    def set_gauge(
        self,
        name: str,
        value: float,
        labels: Mapping[str, str] | None = None,
        help_text: str = "",
    ) -> None: ...

    def inc_counter(
        self,
        name: str,
        value: float = 1.0,
        labels: Mapping[str, str] | None = None,
        help_text: str = "",
    ) -> None: ...


@runtime_checkable
class SpanSink(Protocol):
    """Receives each finished span as it completes.

    Times are epoch seconds (floats) taken from the events that started and
    ended the span, not from when the sink is called. ``status`` is ``"ok"``,
    ``"error"`` or ``"compensating"``. A sink runs on the emitting thread, so
    it should hand slow work (network export) to a queue.
    """

    def record_span(
        self,
        name: str,
        start_time: float,
        end_time: float,
        attributes: Mapping[str, Any],
        status: str,
    ) -> None: ...


__all__ = ["PrometheusExporterProtocol", "SpanSink"]
