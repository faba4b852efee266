"""The Prometheus edge: expose meshwatch's in-process metrics to a scrape.

Three entry points, each in its own module:

* :class:`ScrapeExporter` (``scrape.py``), a prometheus_client custom
  collector (named an exporter, because in meshwatch a ``*Collector`` is a bus
  subscriber). It holds :class:`~meshwatch.instrumentation.stores.MetricSource`
  objects (the event bus, ``RingMetricsCollector``, ``SagaMetricsCollector``,
  ``GovernanceMetrics``, ...) and reads them *at scrape time*. Nothing is copied
  into prometheus_client objects in between, so nothing can be counted twice
  and counters are exactly as monotonic as the stores behind them. This is the
  path to use. ``families.py`` turns what it reads into prometheus_client
  families.
* :class:`PrometheusExporter` (``push.py``), the ``PrometheusExporterProtocol``
  over real prometheus_client ``Counter``/``Gauge`` objects, for code written
  against the tutorial's ``collector.export_to_prometheus(exporter)`` push style.
* :func:`serve_metrics` (``server.py``), a ``/metrics`` HTTP endpoint
  (prometheus_client's server) with a :class:`ScrapeExporter` registered,
  returning a :class:`MetricsServer` that shuts down cleanly. Its ``sources``
  are typically what :func:`meshwatch.instrumentation.instrument` (the core's
  usual wiring) returns.

The guides import these names from this package, so they are re-exported here.

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

import warnings
from typing import Any

from meshwatch.instrumentation.prometheus.push import PrometheusExporter
from meshwatch.instrumentation.prometheus.scrape import SELF_METRICS, ScrapeExporter
from meshwatch.instrumentation.prometheus.server import MetricsServer, serve_metrics


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
