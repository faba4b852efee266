"""The demo fleet's instruments for unit tests that drive a ``World`` by hand."""

from __future__ import annotations

from meshwatch.demo.world import LEGACY, ORCHESTRATOR, Instruments
from meshwatch.instrumentation.bus import HypervisorEventBus
from meshwatch.instrumentation.genai import GenAIMetrics
from meshwatch.instrumentation.governance import GovernanceMetrics
from meshwatch.instrumentation.work_metrics import AgentMetrics


def demo_instruments(bus: HypervisorEventBus) -> Instruments:
    """What a ``World`` needs on ``bus``: governance, both agents' work metrics, GenAI; no tracing."""
    return Instruments(
        bus,
        GovernanceMetrics(),
        AgentMetrics(ORCHESTRATOR.did),
        AgentMetrics(LEGACY.did),
        genai=GenAIMetrics(),
    )
