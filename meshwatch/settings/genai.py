"""LLM prices: USD per million tokens, per model, from ``meshwatch.yaml``.

::

    genai:
      prices:
        gpt-4o: {input: 2.50, output: 10.00, cache_read: 1.25}
        claude-sonnet-4: {input: 3.00, output: 15.00, cache_read: 0.30, cache_creation: 3.75}

meshwatch ships no prices: providers change them, and a stale default would
be a wrong number that looks right. Take them from your provider's pricing
page (or your contract) when you set this up, and review them when the bill
disagrees with the dashboard. A model without a price, or a token type its
entry leaves out, is counted in ``agent_llm_unpriced_tokens_total``, never
guessed. Pass :meth:`GenAISettings.price_table` to ``GenAISpanMetrics(prices=...)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from meshwatch.settings.loader import check


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens of one model; a token type left out has no price."""

    input: float | None = None
    output: float | None = None
    cache_read: float | None = None
    cache_creation: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            check(
                value is None or (math.isfinite(value) and value >= 0),
                f.name,
                f"must be a price of at least 0 USD per million tokens, got {value}",
            )

    def as_mapping(self) -> dict[str, float]:
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }


@dataclass(frozen=True)
class GenAISettings:
    """Per-model prices of LLM calls (see the module docstring)."""

    prices: dict[str, ModelPrice] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for model in self.prices:
            check(bool(model.strip()), "prices", "a model name must not be empty")

    def price_table(self) -> dict[str, dict[str, float]]:
        """``{model: {"input": usd_per_million, ...}}`` for ``GenAISpanMetrics(prices=...)``."""
        return {model: price.as_mapping() for model, price in self.prices.items()}
