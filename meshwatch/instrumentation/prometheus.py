"""The Prometheus edge: expose meshwatch's in-process metrics to a scrape.

Three entry points:

* :class:`ScrapeExporter`, a prometheus_client custom collector (named an
  exporter, because in meshwatch a ``*Collector`` is a bus subscriber). It holds
  :class:`~meshwatch.instrumentation.stores.MetricSource` objects (the event
  bus, ``RingMetricsCollector``, ``SagaMetricsCollector``,
  ``GovernanceMetrics``, ...) and reads them *at scrape time*. Nothing is copied
  into prometheus_client objects in between, so nothing can be counted twice
  and counters are exactly as monotonic as the stores behind them. This is the
  path to use.
* :class:`PrometheusExporter`, the ``PrometheusExporterProtocol`` over real
  prometheus_client ``Counter``/``Gauge`` objects, for code written against the
  tutorial's ``collector.export_to_prometheus(exporter)`` push style.
* :func:`serve_metrics`, a ``/metrics`` HTTP endpoint (prometheus_client's
  server) with a :class:`ScrapeExporter` registered, returning a
  :class:`MetricsServer` that shuts down cleanly. Its ``sources`` are
  typically what :func:`meshwatch.instrumentation.instrument` (the core's
  usual wiring) returns.

Every family takes its name, type, unit and help from the catalogue. The output
passes ``promtool check metrics`` without warnings, label values of any content
(quotes, backslashes, newlines, non-ASCII) survive, and histogram buckets carry
their trace-id exemplars when the scraper asks for OpenMetrics.

Cardinality: each store caps its series per metric and folds the rest into one
``__overflow__`` series, counted in ``meshwatch_series_overflow_total`` (always
exposed). ``serve_metrics(max_series=..., drop_session_id=...)`` sets those
limits. ``drop_session_id`` exists because sessions are unbounded: every new
session id creates new ring series that live for as long as the process does,
so a fleet that runs for weeks grows its series count (and Prometheus's memory)
without bound. Dropping the label aggregates over sessions and keeps the series
count proportional to the number of agents.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, cast
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar as PromExemplar
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from meshwatch.instrumentation.catalogue import CATALOGUE, SCRAPE_ERRORS, MetricDef, MetricType
from meshwatch.instrumentation.drops import DROPS, RateLimitedLog
from meshwatch.instrumentation.stores import (
    CardinalityGuard,
    CounterStore,
    Exemplar,
    HistogramValue,
    LabelValues,
    MetricFamilySnapshot,
    MetricSource,
    SampleValue,
    configure_cardinality,
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
            yield _family(snapshots)


# --- snapshot -> prometheus_client family -------------------------------------

_Series = tuple[tuple[str, ...], Mapping[LabelValues, SampleValue]]
_le_cache: dict[tuple[float, ...], tuple[str, ...]] = {}


def _family(snapshots: list[MetricFamilySnapshot]) -> Metric:
    metric = snapshots[0].metric
    kind = metric.type
    unit = metric.unit if metric.family.endswith("_" + metric.unit) else ""
    family = Metric(metric.family, metric.help, kind.value, unit)
    series = _merged(snapshots)
    unlabelled = all(not names for names, _ in series)
    if unlabelled and kind is not MetricType.GAUGE and not any(s for _, s in series):
        series = [((), {(): _zero(metric)})]
    if kind is MetricType.HISTOGRAM:
        _add_histograms(family, metric.name, series)
    else:
        sample_name = metric.name
        out = family.samples
        for names, samples in series:
            for key, value in samples.items():
                # Counters and gauges hold floats; only histograms hold a HistogramValue.
                out.append(
                    Sample(sample_name, dict(zip(names, key, strict=True)), cast(float, value))
                )
    return family


def _zero(metric: MetricDef) -> SampleValue:
    if metric.type is MetricType.HISTOGRAM:
        return HistogramValue(metric.buckets, (0,) * (len(metric.buckets) + 1), 0.0)
    return 0.0


def _merged(snapshots: list[MetricFamilySnapshot]) -> list[_Series]:
    """One mapping per label-name tuple; equal series of several sources combined."""
    if len(snapshots) == 1:
        return [(snapshots[0].label_names, snapshots[0].samples)]
    kind = snapshots[0].metric.type
    merged: dict[tuple[str, ...], dict[LabelValues, Any]] = {}
    for snapshot in snapshots:
        target = merged.setdefault(snapshot.label_names, {})
        for key, value in snapshot.samples.items():
            previous = target.get(key)
            if previous is None:
                target[key] = value
            elif kind is MetricType.COUNTER:
                target[key] = previous + value
            elif kind is MetricType.HISTOGRAM:
                target[key] = _sum_histograms(previous, cast(HistogramValue, value))
    return list(merged.items())


def _sum_histograms(a: HistogramValue, b: HistogramValue) -> HistogramValue:
    if a.bounds != b.bounds:
        raise ValueError(f"cannot merge histograms with buckets {a.bounds} and {b.bounds}")
    counts = tuple(x + y for x, y in zip(a.cumulative_counts, b.cumulative_counts, strict=True))
    exemplars: tuple[Exemplar | None, ...] = ()
    if a.exemplars or b.exemplars:
        ea = a.exemplars or (None,) * len(counts)
        eb = b.exemplars or (None,) * len(counts)
        exemplars = tuple(
            y if x is None or (y is not None and y.timestamp > x.timestamp) else x
            for x, y in zip(ea, eb, strict=True)
        )
    return HistogramValue(a.bounds, counts, a.sum + b.sum, exemplars)


def _le_strings(bounds: tuple[float, ...]) -> tuple[str, ...]:
    les = _le_cache.get(bounds)
    if les is None:
        les = _le_cache[bounds] = (*(floatToGoString(b) for b in bounds), "+Inf")
    return les


def _add_histograms(family: Metric, name: str, series: list[_Series]) -> None:
    out = family.samples
    bucket_name, count_name, sum_name = f"{name}_bucket", f"{name}_count", f"{name}_sum"
    for names, samples in series:
        for key, sample in samples.items():
            value = cast(HistogramValue, sample)
            labels = dict(zip(names, key, strict=True))
            exemplars = value.exemplars
            for i, (le, count) in enumerate(
                zip(_le_strings(value.bounds), value.cumulative_counts, strict=True)
            ):
                exemplar = exemplars[i] if exemplars else None
                out.append(
                    Sample(
                        bucket_name,
                        {**labels, "le": le},
                        count,
                        None,
                        None
                        if exemplar is None
                        else PromExemplar(
                            dict(exemplar.labels), exemplar.value, exemplar.timestamp
                        ),
                    )
                )
            out.append(Sample(count_name, labels, value.count))
            out.append(Sample(sum_name, labels, value.sum))


# --- the push-style protocol --------------------------------------------------


class PrometheusExporter:
    """``PrometheusExporterProtocol`` over prometheus_client ``Counter``/``Gauge`` objects.

    Metrics are created in ``registry`` on first use, from the catalogue entry
    of ``name`` (its help text wins over ``help_text``, so every exporter agrees).
    ``labels`` must name exactly the metric's labels (or its labels plus its
    opt-in labels); anything else is a programming error and raises ValueError,
    as does a name that is not in the catalogue or a type mismatch.

    ``inc_counter`` adds: callers pass deltas (``RingMetricsCollector`` does).
    Label values need no cap here: the collectors' stores already fold excess
    series into ``__overflow__`` before values reach this exporter.
    prometheus_client adds a ``<name>_created`` series per counter child; call
    ``prometheus_client.disable_created_metrics()`` to turn that off globally,
    or prefer :class:`ScrapeExporter`, which never emits it.
    """

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self._registry = registry
        self._lock = threading.Lock()
        self._metrics: dict[str, tuple[Counter | Gauge, tuple[str, ...]]] = {}

    def set_gauge(
        self,
        name: str,
        value: float,
        labels: Mapping[str, str] | None = None,
        help_text: str = "",
    ) -> None:
        """Set gauge ``name`` (a catalogue name) for ``labels`` to ``value``."""
        cast(Gauge, self._child(name, MetricType.GAUGE, labels)).set(value)

    def inc_counter(
        self,
        name: str,
        value: float = 1.0,
        labels: Mapping[str, str] | None = None,
        help_text: str = "",
    ) -> None:
        """Add ``value`` (>= 0) to counter ``name`` (a catalogue name, with ``_total``)."""
        cast(Counter, self._child(name, MetricType.COUNTER, labels)).inc(value)

    def _child(
        self, name: str, kind: MetricType, labels: Mapping[str, str] | None
    ) -> Counter | Gauge:
        labels = labels or {}
        entry = self._metrics.get(name)
        if entry is None:
            entry = self._create(name, kind, labels)
        prom, label_names = entry
        if len(labels) != len(label_names) or not all(n in labels for n in label_names):
            raise ValueError(f"{name} takes labels {label_names}, got {sorted(labels)}")
        if not label_names:
            return prom
        return prom.labels(*(str(labels[n]) for n in label_names))

    def _create(
        self, name: str, kind: MetricType, labels: Mapping[str, str]
    ) -> tuple[Counter | Gauge, tuple[str, ...]]:
        try:
            metric = CATALOGUE.get(name)
        except KeyError as error:
            raise ValueError(str(error.args[0])) from None
        if metric.name != name or metric.type is not kind:
            raise ValueError(
                f"{name} is a {metric.type.value} named {metric.name}, not a {kind.value}"
            )
        given = set(labels)
        label_names = metric.labels
        if given == set(metric.all_labels(with_optional=True)):
            label_names = metric.all_labels(with_optional=True)
        elif given != set(metric.labels):
            raise ValueError(f"{name} takes labels {metric.labels}, got {sorted(given)}")
        unit = metric.unit if metric.family.endswith("_" + metric.unit) else ""
        with self._lock:
            entry = self._metrics.get(name)
            if entry is None:
                cls = Counter if kind is MetricType.COUNTER else Gauge
                prom = cls(
                    metric.name, metric.help, label_names, unit=unit, registry=self._registry
                )
                entry = self._metrics[name] = (prom, label_names)
        return entry


# --- the HTTP endpoint ----------------------------------------------------------


class MetricsServer:
    """A running ``/metrics`` endpoint. :meth:`close` stops it and frees its port.

    Usable as a context manager. ``exporter`` is the :class:`ScrapeExporter`
    it serves; add sources to it at any time.
    """

    def __init__(
        self,
        server: WSGIServer,
        thread: threading.Thread,
        registry: CollectorRegistry,
        exporter: ScrapeExporter,
    ) -> None:
        self._server = server
        self._thread = thread
        self._registry = registry
        self.exporter = exporter
        self._closed = False

    @property
    def address(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        """The bound port (the real one when ``serve_metrics`` was given port 0)."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}/metrics"

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving, close the socket, join the thread and unregister the exporter."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout)
        self._registry.unregister(self.exporter)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_metrics(
    port: int,
    addr: str = "127.0.0.1",
    *,
    registry: CollectorRegistry | None = None,
    sources: Iterable[MetricSource] = (),
    max_series: int | None = None,
    drop_session_id: bool | None = None,
    include_self_metrics: bool = True,
) -> MetricsServer:
    """Serve ``/metrics`` on ``addr:port`` (port 0 picks a free one) in a daemon thread.

    A :class:`ScrapeExporter` over ``sources`` is registered in ``registry``
    (default: prometheus_client's global ``REGISTRY``, so the process and your
    own prometheus_client metrics are served too). The default address is
    loopback: exposing metrics beyond the host is a decision, not a default.

    ``max_series`` and ``drop_session_id``, when given, set the process-wide
    cardinality guard (:func:`~meshwatch.instrumentation.stores.configure_cardinality`)
    for label sets seen from now on. Turn ``drop_session_id`` on for long-running
    fleets: sessions are unbounded and each one would otherwise leave its own
    series behind forever.
    """
    if max_series is not None or drop_session_id is not None:
        configure_cardinality(max_series=max_series, drop_session_id=drop_session_id)
    registry = REGISTRY if registry is None else registry
    exporter = ScrapeExporter(sources, include_self_metrics=include_self_metrics)
    registry.register(exporter)
    try:
        server, thread = start_http_server(port, addr=addr, registry=registry)
    except BaseException:
        registry.unregister(exporter)
        raise
    return MetricsServer(server, thread, registry, exporter)


def __getattr__(name: str) -> Any:
    """``MeshwatchCollector``, the old name of :class:`ScrapeExporter`, with a warning.

    The instrumentation guide showed ``from meshwatch.instrumentation.prometheus
    import MeshwatchCollector``, so code written from it keeps working while it
    moves to the name that follows meshwatch's naming (docs/architecture.md).
    """
    if name == "MeshwatchCollector":
        warnings.warn(
            "MeshwatchCollector is deprecated; use ScrapeExporter (same class)",
            DeprecationWarning,
            stacklevel=2,
        )
        return ScrapeExporter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SELF_METRICS",
    "MetricsServer",
    "PrometheusExporter",
    "ScrapeExporter",
    "serve_metrics",
]
