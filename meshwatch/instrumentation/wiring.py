"""The usual wiring in one call: ring and saga metrics and saga spans attached to a bus.

It belongs to the core, not to an adapter: it only connects core collectors
to a bus. What it returns iterates as the metric sources to serve, so it can be
handed to :func:`meshwatch.instrumentation.prometheus.serve_metrics` (or any
other exporter) unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from meshwatch.instrumentation.bus import HypervisorEventBus
from meshwatch.instrumentation.governance import GovernanceMetrics
from meshwatch.instrumentation.protocols import SpanSink
from meshwatch.instrumentation.ring_metrics import RingMetricsCollector
from meshwatch.instrumentation.saga_metrics import SagaMetricsCollector
from meshwatch.instrumentation.saga_spans import SagaSpanExporter
from meshwatch.instrumentation.stores import CardinalityGuard, MetricSource


@dataclass(frozen=True)
class Instrumented:
    """The standard collectors attached to one bus; iterating yields its MetricSources.

    So it can be handed straight to :func:`serve_metrics` or
    :class:`ScrapeExporter`, while ``ring`` (for ``collect()`` or
    ``export_to_prometheus``) and ``spans`` (``completed_spans``) stay at hand.
    """

    bus: HypervisorEventBus
    ring: RingMetricsCollector
    sagas: SagaMetricsCollector
    spans: SagaSpanExporter
    governance: GovernanceMetrics | None = None
    extra_sources: tuple[MetricSource, ...] = ()

    def __iter__(self) -> Iterator[MetricSource]:
        yield self.bus
        yield self.ring
        yield self.sagas
        if self.governance is not None:
            yield self.governance
        yield from self.extra_sources

    def close(self) -> None:
        """Detach the collectors from the bus (their values stay readable)."""
        self.ring.close()
        self.sagas.close()
        self.spans.close()


def instrument(
    bus: HypervisorEventBus,
    *,
    governance: GovernanceMetrics | None = None,
    span_sink: SpanSink | None = None,
    extra_sources: Iterable[MetricSource] = (),
    guard: CardinalityGuard | None = None,
) -> Instrumented:
    """Attach ring and saga metrics and saga spans to ``bus``; return them as one bundle.

    >>> bus = HypervisorEventBus()
    >>> server = serve_metrics(8000, sources=instrument(bus, span_sink=OTelSpanSink()))  # doctest: +SKIP

    ``span_sink`` receives every saga span (e.g. ``otel.OTelSpanSink``);
    ``guard`` overrides the process-wide cardinality guard for these collectors.
    """
    return Instrumented(
        bus=bus,
        ring=RingMetricsCollector(bus, guard=guard),
        sagas=SagaMetricsCollector(bus, guard=guard),
        spans=SagaSpanExporter(bus, sink=span_sink),
        governance=governance,
        extra_sources=tuple(extra_sources),
    )


__all__ = ["Instrumented", "instrument"]
