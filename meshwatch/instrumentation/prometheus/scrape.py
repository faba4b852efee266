"""The scrape path: a prometheus_client collector that reads MetricSources at scrape time.

Also meshwatch's metrics about itself (:data:`SELF_METRICS`), which every
:class:`ScrapeExporter` includes by default, and the scrape-error counter it
keeps for a source that raises.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from meshwatch.instrumentation.catalogue import SCRAPE_ERRORS
from meshwatch.instrumentation.drops import DROPS, RateLimitedLog
from meshwatch.instrumentation.prometheus.families import family
from meshwatch.instrumentation.stores import (
    CardinalityGuard,
    CounterStore,
    MetricFamilySnapshot,
    MetricSource,
    overflow_snapshot,
)

_log = RateLimitedLog(logging.getLogger(__name__))

# Sources are code (collector classes), so the label is bounded by construction.
_SCRAPE_ERRORS = CounterStore(SCRAPE_ERRORS, guard=CardinalityGuard(max_series=1_000))


class _SelfMetrics:
    """meshwatch's metrics about itself: series overflow, drops, scrape errors."""

    def metric_families(self) -> Iterator[MetricFamilySnapshot]:
        yield overflow_snapshot()
        yield from DROPS.metric_families()
        yield _SCRAPE_ERRORS.snapshot()


SELF_METRICS: MetricSource = _SelfMetrics()
"""The MetricSource of meshwatch's self-monitoring counters (process-wide)."""


class ScrapeExporter(Collector):
    """A prometheus_client collector that reads MetricSources at scrape time.

    >>> registry = CollectorRegistry()
    >>> exporter = ScrapeExporter([bus, RingMetricsCollector(bus)])  # doctest: +SKIP
    >>> registry.register(exporter)  # doctest: +SKIP

    ``include_self_metrics`` adds :data:`SELF_METRICS` (series overflow, dropped
    events and spans, scrape errors); ``DROPS`` given as a source as well is
    then read once. Those counters are process-wide, so when two exporters
    share one registry exactly one of them may include them; the other passes
    ``include_self_metrics=False``.

    When several sources report the same metric (two buses, each with its own
    ``RingMetricsCollector``), their series are merged into one family: counter
    and histogram series with equal labels are summed (they are additive), and
    for a gauge series the first registered source wins. A source registered
    twice is read once. A source that raises is skipped for that scrape,
    logged (rate-limited) and counted in ``meshwatch_scrape_errors_total``, so
    one broken callback never blanks every other metric.

    Counters and histograms without labels that a source reports but has not
    touched yet are exposed as zero, as prometheus_client does, so ``rate()``
    works from the first scrape.
    """

    def __init__(
        self, sources: Iterable[MetricSource] = (), *, include_self_metrics: bool = True
    ) -> None:
        self._lock = threading.Lock()
        self._sources: tuple[MetricSource, ...] = ()
        self.include_self_metrics = include_self_metrics
        for source in sources:
            self.add_source(source)

    @property
    def sources(self) -> tuple[MetricSource, ...]:
        """The registered sources, in registration order."""
        return self._sources

    def add_source(self, source: MetricSource) -> None:
        """Read ``source`` from the next scrape on (no effect if already registered)."""
        if not isinstance(source, MetricSource):
            raise TypeError(f"{source!r} has no metric_families() method")
        with self._lock:
            if not any(s is source for s in self._sources):
                self._sources = (*self._sources, source)

    def remove_source(self, source: MetricSource) -> None:
        """Stop reading ``source``; raises ValueError if it was never added."""
        with self._lock:
            remaining = tuple(s for s in self._sources if s is not source)
            if len(remaining) == len(self._sources):
                raise ValueError(f"{source!r} is not a source of this exporter")
            self._sources = remaining

    def collect(self) -> Iterator[Metric]:
        """Build one family per catalogue metric from a fresh read of every source."""
        sources = self._sources
        if self.include_self_metrics:
            # SELF_METRICS already holds DROPS: reading a DROPS source as well
            # would sum every drop twice.
            sources = (
                *(s for s in sources if s is not DROPS and s is not SELF_METRICS),
                SELF_METRICS,
            )
        grouped: dict[str, list[MetricFamilySnapshot]] = {}
        for source in sources:
            try:
                snapshots = list(source.metric_families())
            except Exception:
                name = type(source).__name__
                _SCRAPE_ERRORS.inc((name,))
                _log.warning(
                    f"scrape:{name}", "metric source %r raised; skipped", source, exc_info=True
                )
                continue
            for snapshot in snapshots:
                grouped.setdefault(snapshot.metric.name, []).append(snapshot)
        for snapshots in grouped.values():
            yield family(snapshots)


__all__ = ["SELF_METRICS", "ScrapeExporter"]
