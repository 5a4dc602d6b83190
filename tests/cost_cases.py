"""What the per-provider cost tests share: a case (a model, the usage the server reports, the counts and cost parts
the span must then carry, computed by hand from genai-prices' prices) and the check of a span against it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

M = 1e-6  # USD per token, for prices given per million tokens (MTok)
PARTS = ("input", "output", "cache_read", "cache_write", "other")
OPTIONAL_TOKENS = ("cache_read.input_tokens", "cache_write.input_tokens", "reasoning.output_tokens")


@dataclass(frozen=True)
class CostCase:
    model: str
    usage: dict[str, Any]
    """The provider-native usage the server reports (Reply.usage)."""
    tokens: dict[str, int]
    """gen_ai.usage.<key> -> value; cache_read, cache_write and reasoning are absent unless listed."""
    parts: dict[str, float]
    """costspan.cost.<part> -> USD, hand computed; parts not listed are 0."""
    price_model: str | None = None
    """The price entry that matches (costspan.price.model): the model itself when None."""
    service_tier: str | None = None


def assert_priced(attributes: Any, case: CostCase) -> None:
    """Exact counts, each cost part to 1e-9 and the parts summing to the amount, from genai-prices' entry."""
    for key, value in case.tokens.items():
        assert attributes[f"gen_ai.usage.{key}"] == value, key
    for key in set(OPTIONAL_TOKENS) - set(case.tokens):
        assert f"gen_ai.usage.{key}" not in attributes, key
    assert "costspan.usage.estimated" not in attributes
    amount = attributes["gen_ai.usage.cost.amount"]
    assert math.isclose(amount, sum(case.parts.values()), rel_tol=0, abs_tol=1e-9), amount
    for part in PARTS:
        assert math.isclose(attributes[f"costspan.cost.{part}"], case.parts.get(part, 0.0), abs_tol=1e-9), part
    assert math.isclose(sum(attributes[f"costspan.cost.{part}"] for part in PARTS), amount, abs_tol=1e-12)
    assert attributes["gen_ai.usage.cost.currency"] == "USD"
    assert attributes["costspan.price.model"] == (case.price_model or case.model)
    assert attributes["costspan.price.source"].startswith("genai-prices")
