"""The OpenAI Agents SDK, instrumented by real OTel producers, measured by GenAISpanMetrics.

A triage agent hands off to a billing agent that calls a function tool; the
model is a scripted OpenAI-compatible server on 127.0.0.1 whose ``usage``
numbers are known. The spans come from real instrumentations, never from
this test: the official ``opentelemetry-instrumentation-genai-openai-agents``
(agent, tool and workflow spans) with either the official
``opentelemetry-instrumentation-genai-openai`` or OpenLLMetry's
``opentelemetry-instrumentation-openai`` (chat spans). Neither LLM
instrumentation puts an agent on its spans; the exact tokens and cost per
agent and model on /metrics show the attribution across the handoff.

The SDK's own trace export (to its vendor) is replaced, and a check below
proves it: no network but loopback. The model server and the /metrics scrape
bind loopback ports, so this is the integration tier; GenAISpanMetrics over
hand-made spans is tested in-process in ``tests/unit/llm/test_span_metrics.py``.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import agents
import pytest
from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool
from agents.tracing.processors import BatchTraceProcessor
from openai import AsyncOpenAI
from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor as OfficialOpenAI
from opentelemetry.instrumentation.genai.openai_agents import OpenAIAgentsInstrumentor
from opentelemetry.instrumentation.openai import OpenAIInstrumentor as OpenLLMetryOpenAI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from meshwatch.instrumentation.catalogue import (
    GENAI_CLIENT_OPERATION_DURATION,
    GENAI_CLIENT_TOKEN_USAGE,
    GENAI_EXECUTE_TOOL_DURATION,
    GENAI_INVOKE_AGENT_DURATION,
    GENAI_WORKFLOW_DURATION,
    LLM_CACHE_TOKENS,
    LLM_CALL_ERRORS,
    LLM_CALLS,
    LLM_COST,
    LLM_UNPRICED_TOKENS,
)
from meshwatch.instrumentation.genai import GenAISpanMetrics
from meshwatch.instrumentation.prometheus import serve_metrics
from tests.integration.helpers.scripted_model import ScriptedModel, Turn, scripted_model

pytestmark = [
    pytest.mark.integration,
    # OpenLLMetry 0.62 declares a pydantic model with a class-based Config (its code, not ours).
    pytest.mark.filterwarnings(
        "ignore:Support for class-based `config` is deprecated:DeprecationWarning"
    ),
]

# USD per million tokens; test values, not real prices.
PRICES = {
    "gpt-4o": {"input": 2.50, "output": 10.00, "cache_read": 1.25},
    "gpt-4o-mini": {"input": 0.15, "output": 0.60},
}
TURNS = [
    Turn(input_tokens=120, output_tokens=15, tool="transfer_to_billing"),
    Turn(
        input_tokens=300,
        output_tokens=25,
        cached_tokens=100,
        tool="lookup_invoice",
        arguments={"invoice": "42"},
    ),
    Turn(input_tokens=350, output_tokens=40, text="Invoice 42 is paid."),
]
# What /metrics must say, worked out by hand from TURNS and PRICES.
TRIAGE = {"gen_ai_agent_name": "triage", "gen_ai_request_model": "gpt-4o-mini"}
BILLING = {"gen_ai_agent_name": "billing", "gen_ai_request_model": "gpt-4o"}
TRIAGE_COST = (120 * 0.15 + 15 * 0.60) / 1e6  # 0.000027
BILLING_COST = ((200 + 350) * 2.50 + 100 * 1.25 + (25 + 40) * 10.00) / 1e6  # 0.00215

invoices_looked_up: list[str] = []


@function_tool
def lookup_invoice(invoice: str) -> str:
    """Look up whether an invoice is paid."""
    invoices_looked_up.append(invoice)
    return f"invoice {invoice}: paid"


def run_workflow(model: ScriptedModel) -> str:
    """Run the handoff workflow once; the client closes inside the loop that used it."""
    return asyncio.run(_workflow(model))


async def _workflow(model: ScriptedModel) -> str:
    async with AsyncOpenAI(base_url=model.base_url, api_key="test-key", max_retries=0) as client:
        return await _run_agents(client)


async def _run_agents(client: AsyncOpenAI) -> str:
    billing = Agent(
        name="billing",
        instructions="Answer billing questions with the invoice tool.",
        tools=[lookup_invoice],
        model=OpenAIChatCompletionsModel("gpt-4o", client),
    )
    triage = Agent(
        name="triage",
        instructions="Hand billing questions to billing.",
        handoffs=[billing],
        model=OpenAIChatCompletionsModel("gpt-4o-mini", client),
    )
    result = await Runner.run(triage, "Is invoice 42 paid?")
    return str(result.final_output)


@dataclass
class Instrumented:
    provider: TracerProvider
    genai: GenAISpanMetrics
    exporter: InMemorySpanExporter


LLMInstrumentor = type[OfficialOpenAI] | type[OpenLLMetryOpenAI]


def _instrumented(llm_instrumentor: LLMInstrumentor) -> Iterator[Instrumented]:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    genai = GenAISpanMetrics(prices=PRICES)
    provider.add_span_processor(genai)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    llm = llm_instrumentor()
    agents_instrumentor = OpenAIAgentsInstrumentor()
    llm.instrument(tracer_provider=provider)
    agents_instrumentor.instrument(tracer_provider=provider, disable_openai_trace_export=True)
    try:
        yield Instrumented(provider, genai, exporter)
    finally:
        agents_instrumentor.uninstrument()
        llm.uninstrument()
        provider.shutdown()


@pytest.fixture(params=[OfficialOpenAI, OpenLLMetryOpenAI], ids=["official", "openllmetry"])
def instrumented(request: pytest.FixtureRequest) -> Iterator[Instrumented]:
    yield from _instrumented(request.param)


def scrape(genai: GenAISpanMetrics) -> Callable[[str, dict[str, str]], float | None]:
    """Serve ``genai`` on a loopback /metrics and return a lookup into one scrape of it."""
    registry = CollectorRegistry()
    with (
        serve_metrics(0, sources=[genai], registry=registry) as server,
        urllib.request.urlopen(server.url, timeout=10) as response,
    ):
        text = response.read().decode()
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def value(name: str, labels: dict[str, str]) -> float | None:
        found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
        return sum(found) if found else None

    return value


def test_the_sdk_sends_no_trace_to_its_vendor(instrumented: Instrumented) -> None:
    processors = agents.tracing.get_trace_provider()._multi_processor._processors
    assert processors, "the OTel bridge is registered"
    assert not any(isinstance(p, BatchTraceProcessor) for p in processors)


def test_tokens_and_cost_per_agent_and_model_across_a_handoff(instrumented: Instrumented) -> None:
    invoices_looked_up.clear()
    with scripted_model(TURNS) as model:
        answer = run_workflow(model)
    assert answer == "Invoice 42 is paid."
    assert model.remaining == 0 and invoices_looked_up == ["42"]
    assert [r["model"] for r in model.requests] == ["gpt-4o-mini", "gpt-4o", "gpt-4o"]

    value = scrape(instrumented.genai)
    tokens = GENAI_CLIENT_TOKEN_USAGE.name
    assert value(f"{tokens}_sum", {**TRIAGE, "gen_ai_token_type": "input"}) == 120
    assert value(f"{tokens}_sum", {**TRIAGE, "gen_ai_token_type": "output"}) == 15
    assert value(f"{tokens}_sum", {**BILLING, "gen_ai_token_type": "input"}) == 650
    assert value(f"{tokens}_sum", {**BILLING, "gen_ai_token_type": "output"}) == 65
    assert value(f"{tokens}_count", {**BILLING, "gen_ai_token_type": "input"}) == 2
    assert value(LLM_CACHE_TOKENS.name, {**BILLING, "gen_ai_token_type": "cache_read"}) == 100
    assert value(LLM_CACHE_TOKENS.name, TRIAGE) is None
    assert value(LLM_CALLS.name, {**TRIAGE, "gen_ai_provider_name": "openai"}) == 1
    assert value(LLM_CALLS.name, {**BILLING, "gen_ai_operation_name": "chat"}) == 2
    assert value(LLM_COST.name, TRIAGE) == pytest.approx(TRIAGE_COST, rel=1e-12)
    assert value(LLM_COST.name, BILLING) == pytest.approx(BILLING_COST, rel=1e-12)
    assert value(LLM_COST.name, {}) == pytest.approx(TRIAGE_COST + BILLING_COST, rel=1e-12)
    assert value(LLM_CALL_ERRORS.name, {}) is None
    assert value(LLM_UNPRICED_TOKENS.name, {}) is None
    assert value(f"{GENAI_CLIENT_OPERATION_DURATION.name}_count", BILLING) == 2
    assert value(f"{GENAI_CLIENT_OPERATION_DURATION.name}_count", {"gen_ai_agent_name": ""}) is None

    agent_runs = f"{GENAI_INVOKE_AGENT_DURATION.name}_count"
    assert value(agent_runs, {"gen_ai_agent_name": "triage", "error_type": ""}) == 1
    assert value(agent_runs, {"gen_ai_agent_name": "billing", "error_type": ""}) == 1
    tool_runs = f"{GENAI_EXECUTE_TOOL_DURATION.name}_count"
    assert value(tool_runs, {"gen_ai_tool_name": "lookup_invoice"}) == 1
    assert value(f"{GENAI_WORKFLOW_DURATION.name}_count", {}) == 1
    assert instrumented.genai.open_spans() == 0, "every tracked span was released"


def test_a_model_without_a_price_is_counted_as_unpriced(instrumented: Instrumented) -> None:
    priced_mini_only = GenAISpanMetrics(prices={"gpt-4o-mini": PRICES["gpt-4o-mini"]})
    instrumented.provider.add_span_processor(priced_mini_only)
    with scripted_model(TURNS) as model:
        run_workflow(model)
    value = scrape(priced_mini_only)
    assert value(LLM_COST.name, BILLING) is None, "gpt-4o has no price: no cost is guessed"
    assert value(LLM_COST.name, TRIAGE) == pytest.approx(TRIAGE_COST, rel=1e-12)
    unpriced = LLM_UNPRICED_TOKENS.name
    assert value(unpriced, {**BILLING, "gen_ai_token_type": "input"}) == 550
    assert value(unpriced, {**BILLING, "gen_ai_token_type": "cache_read"}) == 100
    assert value(unpriced, {**BILLING, "gen_ai_token_type": "output"}) == 65
    assert value(unpriced, TRIAGE) is None
