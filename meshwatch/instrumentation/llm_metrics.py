"""LLM call metrics: tokens, cache tokens, cost, duration, calls and errors, in one call.

::

    llm = LLMCallMetrics(prices={"gpt-4o": {"input": 2.50, "output": 10.00}})  # USD per 1M
    llm.record_call("gpt-4o", provider="openai", agent="billing",
                    input_tokens=1200, output_tokens=180, duration_seconds=1.4)

This is the pure-Python core under :class:`meshwatch.instrumentation.genai.GenAISpanMetrics`,
which calls :meth:`LLMCallMetrics.record_call` for every LLM span it sees; an
agent that uses no instrumented client calls it by hand.

Series follow the OpenTelemetry GenAI conventions as the OTel -> Prometheus
mapping names them (``gen_ai_client_token_usage``,
``gen_ai_client_operation_duration_seconds``, labels ``gen_ai_request_model``
...), so a dashboard reads the same series whether meshwatch or an OTel
metrics pipeline produced them. meshwatch adds ``gen_ai_agent_name``.

Prices are USD per million tokens, per model, for ``input``, ``output``,
``cache_read`` and ``cache_creation`` tokens. Input tokens include cache reads
and writes (as the conventions define ``gen_ai.usage.input_tokens``), so the
input price applies to the rest. No price is ever guessed: tokens of a model
without a price, or of a token type the model has no price for, go to
``agent_llm_unpriced_tokens_total`` and not into the cost. None are shipped
(they change too often to be right for long).

Bad values (negative or non-numeric token counts, a NaN duration) are dropped
and counted in ``meshwatch_events_dropped_total{component="llm_metrics"}``;
nothing here raises into the agent.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from meshwatch.instrumentation.catalogue import (
    GENAI_CLIENT_OPERATION_DURATION,
    GENAI_CLIENT_TOKEN_USAGE,
    LLM_CACHE_TOKENS,
    LLM_CALL_ERRORS,
    LLM_CALLS,
    LLM_COST,
    LLM_UNPRICED_TOKENS,
)
from meshwatch.instrumentation.drops import RateLimitedLog, record_event_drop
from meshwatch.instrumentation.stores import (
    CardinalityGuard,
    CounterStore,
    HistogramStore,
    MetricFamilySnapshot,
)

COMPONENT = "llm_metrics"
PRICE_KINDS = ("input", "output", "cache_read", "cache_creation")
TOKEN_INPUT, TOKEN_OUTPUT = "input", "output"
TOKEN_CACHE_READ, TOKEN_CACHE_CREATION = "cache_read", "cache_creation"
PER_TOKENS = 1_000_000
DEFAULT_OPERATION = "chat"

_log = RateLimitedLog(logging.getLogger(__name__))
_AGENT: ContextVar[str | None] = ContextVar("meshwatch_llm_agent", default=None)


def current_agent() -> str | None:
    """The agent whose turn is running here (set by ``invoke_agent``), or None."""
    return _AGENT.get()


@contextmanager
def use_agent(name: str | None) -> Iterator[None]:
    """Attribute LLM calls recorded in the block without an explicit agent to ``name``."""
    token = _AGENT.set(name)
    try:
        yield
    finally:
        _AGENT.reset(token)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens of one model; None = that token type has no price."""

    input: float | None = None
    output: float | None = None
    cache_read: float | None = None
    cache_creation: float | None = None


_NO_PRICE = ModelPrice()


def price_table(prices: Mapping[str, Mapping[str, float]] | None) -> dict[str, ModelPrice]:
    """Validate ``{model: {"input": usd_per_1m, ...}}``; raises ValueError naming what is wrong.

    Called when the metrics object is built (configuration time), never per call.
    """
    table: dict[str, ModelPrice] = {}
    for model, kinds in (prices or {}).items():
        if not isinstance(model, str) or not model:
            raise ValueError(f"prices: a model name must be a non-empty string, got {model!r}")
        if not isinstance(kinds, Mapping):
            raise ValueError(f"prices[{model!r}] must map token types to prices, got {kinds!r}")
        unknown = sorted(set(kinds) - set(PRICE_KINDS))
        if unknown:
            raise ValueError(
                f"prices[{model!r}]: unknown token type {unknown[0]!r}; use {PRICE_KINDS}"
            )
        values: dict[str, float] = {}
        for kind, value in kinds.items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"prices[{model!r}][{kind!r}] must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"prices[{model!r}][{kind!r}] must be >= 0 and finite, got {value}"
                )
            values[kind] = float(value)
        table[model] = ModelPrice(**values)
    return table


def _tokens(value: object) -> int | None:
    """A token count, or None when it is not one (a bool, a float, a negative number)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


class LLMCallMetrics:
    """The LLM call series (a MetricSource). See the module docstring."""

    def __init__(
        self,
        *,
        prices: Mapping[str, Mapping[str, float]] | None = None,
        guard: CardinalityGuard | None = None,
        max_pending: int = 10_000,
    ) -> None:
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be a positive int, got {max_pending!r}")
        self.prices = price_table(prices)
        self.max_pending = max_pending
        self._pending: deque[tuple[Any, ...]] = deque()
        self.token_usage = HistogramStore(GENAI_CLIENT_TOKEN_USAGE, guard=guard)
        self.operation_duration = HistogramStore(GENAI_CLIENT_OPERATION_DURATION, guard=guard)
        self.calls = CounterStore(LLM_CALLS, guard=guard)
        self.errors = CounterStore(LLM_CALL_ERRORS, guard=guard)
        self.cache_tokens = CounterStore(LLM_CACHE_TOKENS, guard=guard)
        self.cost = CounterStore(LLM_COST, guard=guard)
        self.unpriced_tokens = CounterStore(LLM_UNPRICED_TOKENS, guard=guard)

    def record_call(
        self,
        model: str,
        *,
        provider: str,
        input_tokens: int | None = 0,
        output_tokens: int | None = 0,
        cache_read_tokens: int | None = 0,
        cache_creation_tokens: int | None = 0,
        agent: str | None = None,
        operation: str = DEFAULT_OPERATION,
        duration_seconds: float | None = None,
        error_type: str | None = None,
        response_model: str | None = None,
    ) -> None:
        """Count one LLM call to ``model`` (the request model) made by ``agent``.

        ``agent`` None means the agent of the enclosing ``invoke_agent`` block
        (:func:`current_agent`), else none (label value empty).

        ``duration_seconds`` None records no duration (the caller did not time
        it). ``error_type`` names the failure (``error.type``: an exception
        class or a status code); tokens still count, as the provider bills
        them. ``response_model`` is looked up first for the price, since it is
        the model that ran.

        The call costs the agent one append to a bounded queue: the series are
        updated when the next scrape (or :meth:`flush`) folds the queue in, or
        inline when ``max_pending`` records are waiting. A bad value is
        dropped and counted then.
        """
        if agent is None:
            agent = _AGENT.get()
        self._pending.append(
            (
                model,
                provider,
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_creation_tokens,
                agent,
                operation,
                duration_seconds,
                error_type,
                response_model,
            )
        )
        if len(self._pending) >= self.max_pending:
            self.flush()

    def flush(self) -> None:
        """Fold every pending record into the series (a scrape does this first)."""
        pending = self._pending
        record = self._record
        while True:
            try:
                item = pending.popleft()
            except IndexError:
                return
            try:
                record(*item)
            except Exception:
                self._drop("record_error")

    def _record(
        self,
        model: object,
        provider: object,
        input_tokens: object,
        output_tokens: object,
        cache_read_tokens: object,
        cache_creation_tokens: object,
        agent: object,
        operation: object,
        duration_seconds: object,
        error_type: object,
        response_model: object,
    ) -> None:
        inp, out = _tokens(input_tokens), _tokens(output_tokens)
        read, created = _tokens(cache_read_tokens), _tokens(cache_creation_tokens)
        if inp is None or out is None or read is None or created is None:
            return self._drop("bad_token_count")
        if duration_seconds is not None and (
            isinstance(duration_seconds, bool)
            or not isinstance(duration_seconds, int | float)
            or not duration_seconds >= 0
            or duration_seconds == math.inf
        ):
            return self._drop("bad_duration")
        key = (str(operation), str(provider), str(model), "" if agent is None else str(agent))
        self.calls.inc(key)
        if error_type:
            self.errors.inc((*key, str(error_type)))
        if duration_seconds is not None:
            self.operation_duration.observe((*key, str(error_type or "")), float(duration_seconds))
        if inp or out or not error_type:
            self.token_usage.observe((*key, TOKEN_INPUT), float(inp))
            self.token_usage.observe((*key, TOKEN_OUTPUT), float(out))
        if read:
            self.cache_tokens.inc((*key, TOKEN_CACHE_READ), read)
        if created:
            self.cache_tokens.inc((*key, TOKEN_CACHE_CREATION), created)
        price = self.prices.get(str(response_model)) if response_model else None
        if price is None:
            price = self.prices.get(key[2])
        self._price(key, price, max(0, inp - read - created), out, read, created)
        return None

    def _price(
        self,
        key: tuple[str, str, str, str],
        price: ModelPrice | None,
        uncached: int,
        out: int,
        read: int,
        created: int,
    ) -> None:
        rates = _NO_PRICE if price is None else price
        cost = 0.0
        for kind, count, rate in (
            (TOKEN_INPUT, uncached, rates.input),
            (TOKEN_OUTPUT, out, rates.output),
            (TOKEN_CACHE_READ, read, rates.cache_read),
            (TOKEN_CACHE_CREATION, created, rates.cache_creation),
        ):
            if not count:
                continue
            if rate is None:
                self.unpriced_tokens.inc((*key, kind), count)
            else:
                cost += count * rate
        if cost:
            self.cost.inc(key, cost / PER_TOKENS)

    def _drop(self, reason: str) -> None:
        record_event_drop(COMPONENT, reason)
        _log.warning(reason, "dropped an LLM call record: %s", reason)

    def metric_families(self) -> Iterator[MetricFamilySnapshot]:
        self.flush()
        yield self.token_usage.snapshot()
        yield self.operation_duration.snapshot()
        yield self.calls.snapshot()
        yield self.errors.snapshot()
        yield self.cache_tokens.snapshot()
        yield self.cost.snapshot()
        yield self.unpriced_tokens.snapshot()


__all__ = [
    "PRICE_KINDS",
    "LLMCallMetrics",
    "ModelPrice",
    "current_agent",
    "price_table",
    "use_agent",
]
