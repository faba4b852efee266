"""LLM cost and tokens: what the agents spend on models, on what, and how reliably.

Questions it answers:

* How much do LLM calls cost per hour, per agent and model, and who spends most?
* How many tokens per second go in and out, and how much input comes from the
  provider's prompt cache?
* What does one conversation (an ``invoke_workflow``) and one task cost, and
  how many LLM calls does an agent make per invocation (a runaway agent's
  number climbs)?
* Which models fail, in what share of calls, and how slow are they (p95, with
  exemplars that open the call's trace)?
* How many tokens have no configured price (so the cost above leaves them out)?

The series follow the OpenTelemetry GenAI conventions (``gen_ai_client_token_usage``,
``gen_ai_client_operation_duration_seconds``) plus meshwatch's calls, errors,
cache tokens and cost, all labelled ``gen_ai_agent_name`` by ``GenAISpanMetrics``.
Costs are in US dollars, from the prices in ``meshwatch.yaml`` (``genai.prices``).
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from meshwatch.alerts.catalogue import (
    LLM_COST_SPIKE,
    LLM_ERROR_RATIO_HIGH,
    LLM_RUNAWAY_AGENT,
    LLM_SPEND_OVER_BUDGET,
)
from meshwatch.alerts.recording import (
    LLM_COST_RATE_ZSCORE,
    LLM_DAILY_SPEND,
    LLM_ERROR_RATIO,
    LLM_RUNAWAY_FACTOR,
)
from meshwatch.dashboards.common import (
    COUNT,
    NONE,
    OPS,
    RATE,
    RATIO,
    SECONDS,
    TEMPO,
    Grid,
    alert_marks,
    bargauge,
    dashboard,
    datasource_variable,
    label_variable,
    level_steps,
    prom,
    quantile,
    recorded,
    runbooks,
    sel,
    stat,
    table,
    tempo_variable,
    timeseries,
)
from meshwatch.dashboards.panels import TempoTarget
from meshwatch.instrumentation.catalogue import (
    GENAI_CLIENT_OPERATION_DURATION,
    GENAI_CLIENT_TOKEN_USAGE,
    GENAI_INVOKE_AGENT_DURATION,
    GENAI_WORKFLOW_DURATION,
    LLM_CACHE_TOKENS,
    LLM_CALLS,
    LLM_COST,
    LLM_UNPRICED_TOKENS,
    TASKS_COMPLETED,
    TASKS_FAILED,
)
from meshwatch.settings import Settings

SLUG = "llm"
USD = "currencyUSD"
AGENT = 'gen_ai_agent_name=~"$agent"'
MODEL = 'gen_ai_request_model=~"$model"'
BY_AGENT_MODEL = "gen_ai_agent_name, gen_ai_request_model"
# LLM call spans of any producer: the operation names the conventions give model calls.
LLM_TRACEQL = (
    '{ span.gen_ai.operation.name =~ "chat|text_completion|generate_content|embeddings" '
    '&& span.gen_ai.request.model =~ "${model:regex}" }'
)


def _rate(metric: str, *matchers: str) -> str:
    return f"rate({sel(metric, *matchers)}[{RATE}])"


def _spend_panels(settings: Settings, grid: Grid) -> None:
    grid.row("Spend")
    cost = LLM_COST.name
    grid.add(
        stat(
            "LLM spend in the time range",
            "US dollars spent on LLM calls of the selected agents and models over the "
            "dashboard's time range, from the configured prices.",
            [prom(f"sum(increase({sel(cost, AGENT, MODEL)}[$__range]))", "spend")],
            unit=USD,
        ),
        w=6,
        h=8,
    )
    grid.add(
        timeseries(
            "Cost per hour by agent and model",
            "Spend rate in US dollars per hour, per agent and request model.",
            [
                prom(
                    f"sum by ({BY_AGENT_MODEL}) ({_rate(cost, AGENT, MODEL)}) * 3600",
                    "{{gen_ai_agent_name}} {{gen_ai_request_model}}",
                )
            ],
            unit=USD,
            stack=True,
        ),
        w=12,
        h=8,
    )
    grid.add(
        bargauge(
            "Top spenders",
            "The ten agents that spent most over the dashboard's time range.",
            [
                prom(
                    f"topk(10, sum by (gen_ai_agent_name) "
                    f"(increase({sel(cost, AGENT, MODEL)}[$__range])))",
                    "{{gen_ai_agent_name}}",
                    instant=True,
                )
            ],
            unit=USD,
        ),
        w=6,
        h=8,
    )
    budget = settings.alerts.llm_budget_forecast
    grid.add(
        timeseries(
            "Spend over 24 hours",
            f"The LLM spend of the last 24 hours against the daily budget of "
            f"{budget.daily_budget_usd:g} USD (the line). {LLM_SPEND_OVER_BUDGET.name} fires "
            f"when its trend over {budget.lookback} would pass the budget within {budget.horizon}.",
            [prom(LLM_DAILY_SPEND.selector, "last 24h")],
            unit=USD,
            steps=level_steps(budget.severity, budget.daily_budget_usd),
            links=runbooks(settings, LLM_SPEND_OVER_BUDGET),
        ),
        w=12,
        h=8,
    )
    grid.add(
        timeseries(
            "Spend rate z-score per agent",
            "How far each agent's spend rate is from its own baseline, in standard "
            f"deviations. {LLM_COST_SPIKE.name} fires above the line.",
            [prom(sel(LLM_COST_RATE_ZSCORE, AGENT), "{{gen_ai_agent_name}}")],
            unit=NONE,
            min_value=None,
            **alert_marks(settings, LLM_COST_SPIKE),
        ),
        w=12,
        h=8,
    )


def _token_panels(grid: Grid) -> None:
    grid.row("Tokens")
    grid.add(
        timeseries(
            "Tokens per second by agent and model",
            "Input and output tokens per second (gen_ai.client.token.usage), per agent, "
            "request model and token type.",
            [
                prom(
                    f"sum by ({BY_AGENT_MODEL}, gen_ai_token_type) "
                    f"({_rate(GENAI_CLIENT_TOKEN_USAGE.name + '_sum', AGENT, MODEL)})",
                    "{{gen_ai_agent_name}} {{gen_ai_request_model}} {{gen_ai_token_type}}",
                )
            ],
            unit=OPS,
        ),
        w=10,
        h=8,
    )
    grid.add(
        timeseries(
            "Prompt cache tokens per second",
            "Input tokens read from (cache_read) or written to (cache_creation) the "
            "provider's prompt cache, per model; they are part of the input tokens.",
            [
                prom(
                    f"sum by (gen_ai_request_model, gen_ai_token_type) "
                    f"({_rate(LLM_CACHE_TOKENS.name, AGENT, MODEL)})",
                    "{{gen_ai_request_model}} {{gen_ai_token_type}}",
                )
            ],
            unit=OPS,
        ),
        w=8,
        h=8,
    )
    grid.add(
        stat(
            "Unpriced tokens per second",
            "Tokens of models (or token types) without a price in meshwatch.yaml: the "
            "cost panels leave them out. Add the price to count them.",
            [
                prom(
                    f"sum({_rate(LLM_UNPRICED_TOKENS.name, AGENT, MODEL)}) or vector(0)", "unpriced"
                )
            ],
            unit=OPS,
        ),
        w=6,
        h=8,
    )


def _unit_cost_panels(settings: Settings, grid: Grid) -> None:
    grid.row("Per conversation, task and invocation")
    cost = f"sum({_rate(LLM_COST.name, AGENT, MODEL)})"
    workflows = f"sum({_rate(GENAI_WORKFLOW_DURATION.name + '_count')})"
    tasks = f"(sum({_rate(TASKS_COMPLETED.name)}) + sum({_rate(TASKS_FAILED.name)}))"
    grid.add(
        timeseries(
            "Cost per conversation",
            "LLM spend divided by the workflows (invoke_workflow spans) that ended, both "
            "per second: the average cost of one conversation.",
            [prom(f"{cost} / {workflows}", "per conversation")],
            unit=USD,
        ),
        w=8,
        h=8,
    )
    grid.add(
        timeseries(
            "Cost per task",
            "LLM spend divided by the tasks that ended (completed or failed), both per second.",
            [prom(f"{cost} / {tasks}", "per task")],
            unit=USD,
        ),
        w=8,
        h=8,
    )
    calls = f"sum by (gen_ai_agent_name) ({_rate(LLM_CALLS.name, AGENT)})"
    runs = (
        f"sum by (gen_ai_agent_name) ({_rate(GENAI_INVOKE_AGENT_DURATION.name + '_count', AGENT)})"
    )
    grid.add(
        timeseries(
            "LLM calls per agent invocation",
            "LLM calls per ended invoke_agent span, per agent. An agent stuck in a loop "
            "of model calls inside one turn drives it up.",
            [prom(f"{calls} / {runs}", "{{gen_ai_agent_name}}")],
            unit=NONE,
        ),
        w=8,
        h=8,
    )
    grid.add(
        timeseries(
            "LLM calls per invocation over the agent's normal",
            "Calls per invocation now (5m) divided by the agent's own over the 6 hours before. "
            f"{LLM_RUNAWAY_AGENT.name} fires above the line; +Inf while an agent calls its "
            "model and ends no turn.",
            [prom(sel(LLM_RUNAWAY_FACTOR, AGENT), "{{gen_ai_agent_name}}")],
            unit=NONE,
            **alert_marks(settings, LLM_RUNAWAY_AGENT),
        ),
        w=24,
        h=8,
    )


def _reliability_panels(settings: Settings, grid: Grid) -> None:
    grid.row("Errors and latency")
    by_model = "gen_ai_request_model"
    grid.add(
        timeseries(
            "LLM error ratio per model",
            f"Failed LLM calls / all LLM calls per request model (5m), as {LLM_ERROR_RATIO_HIGH.name} "
            "computes it; the dashed line is its threshold.",
            [prom(recorded(LLM_ERROR_RATIO, MODEL), "{{gen_ai_request_model}}")],
            unit=RATIO,
            max_value=1,
            **alert_marks(settings, LLM_ERROR_RATIO_HIGH),
        ),
        w=8,
        h=8,
    )
    grid.add(
        timeseries(
            "LLM call latency p95 per model",
            "95th percentile of gen_ai.client.operation.duration per request model. "
            "Exemplar dots open the trace of a call.",
            [
                prom(
                    quantile(
                        0.95,
                        sel(GENAI_CLIENT_OPERATION_DURATION.name + "_bucket", AGENT, MODEL),
                        by=(by_model,),
                    ),
                    "{{gen_ai_request_model}}",
                    exemplar=True,
                )
            ],
            unit=SECONDS,
        ),
        w=8,
        h=8,
    )
    grid.add(
        table(
            "Recent LLM call traces",
            "Traces with an LLM call span of the selected models (TraceQL search in Tempo); "
            "the trace id opens the trace.",
            [TempoTarget(datasource=TEMPO, query=LLM_TRACEQL, limit=20)],
            unit="ms",
            hide=(),
            cell="auto",
            sort_by="Start time",
            datasource=TEMPO,
        ),
        w=8,
        h=8,
    )
    grid.add(
        bargauge(
            "LLM calls by model",
            "LLM calls of the selected agents over the dashboard's time range, per model.",
            [
                prom(
                    f"sum by ({by_model}) (increase({sel(LLM_CALLS.name, AGENT, MODEL)}[$__range]))",
                    "{{gen_ai_request_model}}",
                    instant=True,
                )
            ],
            unit=COUNT,
        ),
        w=24,
        h=6,
    )


def build(settings: Settings) -> Dashboard:
    """The LLM cost and tokens dashboard."""
    grid = Grid()
    _spend_panels(settings, grid)
    _token_panels(grid)
    _unit_cost_panels(settings, grid)
    _reliability_panels(settings, grid)
    return dashboard(
        settings,
        slug=SLUG,
        title="LLM cost and tokens",
        description=(__doc__ or "").strip().splitlines()[0],
        tags=["llm", "genai", "cost"],
        grid=grid,
        variables=[
            datasource_variable(),
            tempo_variable(),
            label_variable("agent", "Agent", LLM_CALLS.name, "gen_ai_agent_name"),
            label_variable("model", "Model", LLM_CALLS.name, "gen_ai_request_model"),
        ],
    )
