"""LLM calls, live: the demo's calls reach Prometheus per agent and model, and the budget
forecast fires against the session stack's test budget (helpers/stack.py)."""

from __future__ import annotations

import pytest

from meshwatch.alerts.catalogue import LLM_SPEND_OVER_BUDGET
from meshwatch.alerts.recording import LLM_DAILY_SPEND
from meshwatch.instrumentation.catalogue import (
    GENAI_CLIENT_TOKEN_USAGE,
    LLM_CACHE_TOKENS,
    LLM_CALLS,
    LLM_COST,
    LLM_UNPRICED_TOKENS,
)
from tests.integration.helpers.poll import wait_until
from tests.integration.helpers.stack import TEST_DAILY_BUDGET_USD, LiveStack

pytestmark = pytest.mark.integration

TIMEOUT = 120.0


def test_the_demos_llm_calls_reach_prometheus_per_agent_and_model(live_stack: LiveStack) -> None:
    prometheus = live_stack.prometheus

    def agents_with_calls() -> set[str] | None:
        results = prometheus.query(f"sum by (gen_ai_agent_name) ({LLM_CALLS.name})")
        found = {r["metric"].get("gen_ai_agent_name", "") for r in results}
        return found if {"orchestrator", "researcher", "writer"} <= found else None

    assert "" not in wait_until(agents_with_calls, timeout=TIMEOUT, what="LLM calls per agent")
    models = {
        r["metric"]["gen_ai_request_model"]
        for r in prometheus.query(f"sum by (gen_ai_request_model) ({LLM_COST.name}) > 0")
    }
    assert models == {"demo-small", "demo-large"}, "the priced models cost money"
    unpriced = prometheus.query(f"sum by (gen_ai_request_model) ({LLM_UNPRICED_TOKENS.name})")
    assert {r["metric"]["gen_ai_request_model"] for r in unpriced} == {"demo-embed"}
    tokens = prometheus.value(
        f'sum({GENAI_CLIENT_TOKEN_USAGE.name}_sum{{gen_ai_token_type="input"}})'
    )
    cached = prometheus.value(f'sum({LLM_CACHE_TOKENS.name}{{gen_ai_token_type="cache_read"}})')
    assert tokens is not None and cached is not None and 0 < cached < tokens


def test_the_budget_forecast_fires_live_with_a_test_budget(live_stack: LiveStack) -> None:
    prometheus = live_stack.prometheus
    firing = wait_until(
        lambda: prometheus.firing(LLM_SPEND_OVER_BUDGET.name),
        timeout=TIMEOUT,
        what=f"{LLM_SPEND_OVER_BUDGET.name} firing",
    )
    (alert,) = firing
    assert alert["labels"]["severity"] == "warning"
    assert f"{TEST_DAILY_BUDGET_USD:g} USD" in alert["annotations"]["description"]
    spend = prometheus.value(LLM_DAILY_SPEND.selector)
    assert spend is not None and spend > 0
    delivered = wait_until(
        lambda: live_stack.webhook.alerts(
            path=live_stack.receiver_path("warning"), alertname=LLM_SPEND_OVER_BUDGET.name
        ),
        timeout=TIMEOUT,
        what=f"{LLM_SPEND_OVER_BUDGET.name} delivered to the warning receiver",
    )
    assert delivered
