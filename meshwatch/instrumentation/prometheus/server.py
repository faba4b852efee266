"""The ``/metrics`` HTTP endpoint: prometheus_client's server over a ScrapeExporter."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

from meshwatch.instrumentation.prometheus.scrape import ScrapeExporter
from meshwatch.instrumentation.stores import MetricSource, configure_cardinality


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


__all__ = ["MetricsServer", "serve_metrics"]
