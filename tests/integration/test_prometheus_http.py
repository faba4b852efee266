"""The Prometheus adapter's HTTP server: real scrapes of ``serve_metrics`` on a loopback port.

Integration tier (it binds ports); the scrape exporter and the push exporter are
tested in-process in ``tests/unit/test_prometheus_adapter.py``.
"""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)

from meshwatch.instrumentation import stores
from meshwatch.instrumentation.catalogue import (
    GOVERNANCE_LATENCY,
    RING_BREACHES,
    RING_CURRENT,
    SCRAPE_ERRORS,
)
from meshwatch.instrumentation.prometheus import serve_metrics
from meshwatch.instrumentation.stores import CounterStore, Exemplar, GaugeStore, HistogramStore
from tests.unit.test_prometheus_adapter import StoreSource, samples

pytestmark = pytest.mark.integration


@pytest.fixture
def restore_cardinality() -> Iterator[None]:
    before = stores.default_guard()
    yield
    stores.configure_cardinality(
        max_series=before.max_series, drop_session_id=before.drop_session_id
    )


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def test_serve_metrics_serves_a_real_scrape_and_closes_cleanly() -> None:
    breaches = CounterStore(RING_BREACHES)
    breaches.inc(("did:mesh:a", "s1"), 7)
    registry = CollectorRegistry()
    with serve_metrics(0, registry=registry, sources=[StoreSource(breaches)]) as server:
        assert server.address == "127.0.0.1"
        assert server.port > 0
        parsed = samples(_get(server.url))
        assert (
            parsed[(RING_BREACHES.name, (("agent_did", "did:mesh:a"), ("session_id", "s1")))] == 7
        )
        assert (SCRAPE_ERRORS.name, ()) not in parsed  # self metrics are there as families
        late = GaugeStore(RING_CURRENT)
        late.set(("did:mesh:a",), 2)
        server.exporter.add_source(StoreSource(late))
        assert samples(_get(server.url))[(RING_CURRENT.name, (("agent_did", "did:mesh:a"),))] == 2
        thread = server._thread
    assert not thread.is_alive()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=2):
        pass
    assert list(registry.collect()) == []  # the collector was unregistered
    server.close()  # idempotent


def test_serve_metrics_applies_the_cardinality_guard(restore_cardinality: None) -> None:
    ring = CounterStore(RING_BREACHES)  # uses the process-wide default guard
    with serve_metrics(
        0, registry=CollectorRegistry(), sources=[StoreSource(ring)], drop_session_id=True
    ) as server:
        assert stores.default_guard().drop_session_id is True
        ring.inc(("did:mesh:a", "session-1"))
        ring.inc(("did:mesh:a", "session-2"))
        parsed = samples(_get(server.url))
    # Two sessions, one series: session_id="" means "no session label" to Prometheus.
    assert parsed[(RING_BREACHES.name, (("agent_did", "did:mesh:a"), ("session_id", "")))] == 2

    with serve_metrics(0, registry=CollectorRegistry(), max_series=5):
        assert stores.default_guard().max_series == 5
        assert stores.default_guard().drop_session_id is True


def test_serve_metrics_releases_the_registry_when_the_port_is_taken() -> None:
    registry = CollectorRegistry(auto_describe=True)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            serve_metrics(taken.getsockname()[1], registry=registry)
    with serve_metrics(0, registry=registry):  # no duplicate-registration error
        pass


def test_the_server_sends_exemplars_to_a_scraper_that_asks_for_openmetrics() -> None:
    latency = HistogramStore(GOVERNANCE_LATENCY)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    latency.observe(("allowed",), 0.02, Exemplar({"trace_id": trace_id}, 0.02, 1_700_000_000.0))
    with serve_metrics(0, registry=CollectorRegistry(), sources=[StoreSource(latency)]) as server:
        request = urllib.request.Request(
            server.url, headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            content_type = response.headers["Content-Type"]
            text = response.read().decode()
    assert content_type.startswith("application/openmetrics-text")
    exemplars = [
        s.exemplar for f in parse_openmetrics(text) for s in f.samples if s.exemplar is not None
    ]
    assert [e.labels["trace_id"] for e in exemplars] == [trace_id]
