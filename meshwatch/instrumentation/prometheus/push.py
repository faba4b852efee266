"""The tutorial's push style: ``PrometheusExporterProtocol`` over prometheus_client objects.

For code written against ``collector.export_to_prometheus(exporter)``. The
scrape path (:class:`~meshwatch.instrumentation.prometheus.scrape.ScrapeExporter`)
is preferred: with it there is nothing to call periodically.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import cast

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from meshwatch.instrumentation.catalogue import CATALOGUE, MetricType


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
    or prefer ``ScrapeExporter``, which never emits it.
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


__all__ = ["PrometheusExporter"]
