"""An instrumented agent's /metrics endpoint, run in the test process so a test can kill it.

The fault tests need a scrape target whose death they control without
touching the stack's own processes: this is a real meshwatch-instrumented
endpoint (:func:`meshwatch.instrumentation.prometheus.serve_metrics` over an
event bus), listed in the stack's ``agent_targets`` as a user's agent would be.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from meshwatch.instrumentation import instrument
from meshwatch.instrumentation.bus import HypervisorEventBus
from meshwatch.instrumentation.prometheus import MetricsServer, serve_metrics
from tests.integration.helpers.net import LOOPBACK, free_port


class AgentEndpoint:
    """Start, stop and restart one agent's /metrics on a fixed loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server: MetricsServer | None = None

    @property
    def target(self) -> str:
        """The ``host:port`` Prometheus scrapes (and names in the ``instance`` label)."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        if self._server is None:
            sources = instrument(HypervisorEventBus())
            self._server = serve_metrics(
                self.port, LOOPBACK, registry=CollectorRegistry(), sources=sources
            )

    def stop(self) -> None:
        """The endpoint dies: the socket closes and scrapes are refused."""
        if self._server is not None:
            self._server.close()
            self._server = None
