"""The simulated fleet's LLM calls: realistic token counts, latency, errors and cost.

Each agent role thinks with its own model and token profile (log-normal token
counts, as real prompt and completion lengths are: most calls near the median,
a long tail of big ones). Researchers reuse a cached prompt prefix most of the
time and embed what they read with a model the demo prices on purpose not at
all, so ``agent_llm_unpriced_tokens_total`` has something to show. Calls go
through the real :func:`meshwatch.instrumentation.genai.llm_call`: a span under
the agent's ``invoke_agent`` span when tracing is on, and the token, cost,
duration and error series either way.

The models and prices are the demo's own inventions (``demo-*``): meshwatch
ships no price for any real model. The incident scenario adds
:func:`runaway_agent`, a researcher stuck in a loop of LLM calls inside one
turn, which is what ``LLMRunawayAgent`` exists to catch.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from meshwatch.demo.world import RESEARCHERS, AgentSpec, World, log
from meshwatch.instrumentation.genai import GenAISpanMetrics, llm_call

PROVIDER = "meshwatch-demo"
# USD per million tokens of the demo's invented models (not real prices).
DEMO_PRICES = {
    "demo-small": {"input": 0.20, "output": 0.80},
    "demo-large": {"input": 2.00, "output": 8.00, "cache_read": 0.50, "cache_creation": 2.50},
}
EMBEDDING_MODEL = "demo-embed"  # deliberately unpriced
ERROR_SHARE = 0.02
RUNAWAY_INTERVAL = 0.25  # virtual seconds between the runaway agent's calls

Step = Generator["float", Any, Any]


@dataclass(frozen=True)
class Profile:
    """How one role calls its model: median tokens in and out, prompt-cache habits."""

    model: str
    input_median: float
    output_median: float
    cache_read_share: float = 0.0  # chance that a call reuses a cached prefix
    seconds_per_output_token: float = 0.004


PROFILES = {
    "orchestrator": Profile("demo-small", 1_500, 150),
    "researcher": Profile("demo-large", 4_000, 400, cache_read_share=0.6),
    "writer": Profile("demo-large", 6_000, 1_200, cache_read_share=0.3),
}


def new_llm_metrics() -> GenAISpanMetrics:
    """The demo's LLM metrics, priced with the demo's invented price table."""
    return GenAISpanMetrics(prices=DEMO_PRICES)


class ModelError(Exception):
    """The simulated provider refused or dropped a call."""


class RateLimitError(ModelError):
    """The simulated provider answered 429."""


def _lognormal(rng: random.Random, median: float, sigma: float = 0.5) -> int:
    return max(1, round(rng.lognormvariate(0.0, sigma) * median))


def think(world: World, rng: random.Random, agent: AgentSpec) -> Step:
    """One LLM call by ``agent`` (inside its turn), retried once when rate-limited."""
    profile = PROFILES.get(agent.name)
    if profile is None:
        yield rng.uniform(0.2, 0.8)
        return
    for attempt in range(2):
        try:
            yield from _call(world, rng, profile, agent)
            return
        except RateLimitError:
            if attempt:
                log.info("%s gave up on %s after a rate limit", agent.name, profile.model)
            yield rng.uniform(0.2, 0.6)


def _call(world: World, rng: random.Random, profile: Profile, agent: AgentSpec) -> Step:
    metrics = world.inst.llm
    tracer_provider = world.inst.tracer_provider(agent.name)
    inputs = _lognormal(rng, profile.input_median)
    outputs = _lognormal(rng, profile.output_median, sigma=0.7)
    cached = 0
    created = 0
    if rng.random() < profile.cache_read_share:
        cached = int(inputs * rng.uniform(0.4, 0.8))
    elif profile.cache_read_share:
        created = int(inputs * rng.uniform(0.3, 0.6))
    with llm_call(
        metrics,
        profile.model,
        provider=PROVIDER,
        tracer_provider=tracer_provider,
    ) as call:
        yield 0.2 + outputs * profile.seconds_per_output_token * rng.uniform(0.7, 1.3)
        if rng.random() < ERROR_SHARE:
            raise RateLimitError("429 Too Many Requests")
        call.usage(
            input_tokens=inputs,
            output_tokens=outputs,
            cache_read_tokens=cached,
            cache_creation_tokens=created,
            response_model=f"{profile.model}-2026-01",
        )
    if profile.cache_read_share:
        with llm_call(
            metrics,
            EMBEDDING_MODEL,
            provider=PROVIDER,
            operation="embeddings",
            tracer_provider=tracer_provider,
        ) as embedding:
            yield 0.05
            embedding.usage(input_tokens=_lognormal(rng, 800))


def runaway_agent(world: World) -> Generator[float, Any, None]:
    """Incident: a researcher loops on its model inside one turn until the incident ends."""
    rng = world.dice.stream()
    plan = world.scenario.incident
    assert plan is not None
    me = RESEARCHERS[-1]
    log.warning("incident: %s is stuck calling its model in a loop", me.did)
    with world.turn(me, None):
        while plan.active(world.sim.now):
            with contextlib.suppress(ModelError):
                yield from _call(world, rng, PROFILES[me.name], me)
            yield RUNAWAY_INTERVAL
    log.warning("incident over: %s left its loop", me.did)


__all__ = ["DEMO_PRICES", "PROFILES", "new_llm_metrics", "runaway_agent", "think"]
