"""A budgeted call reserves its worst case priced from the rates alone (no Usage or Cost built per call): it must be
the very amount ``price.cost`` gives for that usage, bit for bit, whatever the price's tiers and per-call fee."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costspan import Pricing
from costspan._estimate import estimate, worst_case_cost
from costspan.pricing import ResolvedPrice, default_pricing
from costspan.usage import MAX_TOKENS, Usage


def _prices() -> list[ResolvedPrice]:
    pricing = default_pricing()
    found = [
        pricing.resolve(provider, model)
        for provider, model in (
            ("openai", "gpt-4o-mini"),
            ("anthropic", "claude-sonnet-4-5"),  # a tier above 200k input tokens
            ("gcp.gen_ai", "gemini-2.5-pro"),  # tiers on input, output and cache reads
        )
    ]
    custom = Pricing()
    custom.set_price("fee-model", input=0.1, output=0.3, per_request=0.0005)
    found.append(custom.resolve("unknown", "fee-model"))
    prices = [price for price in found if price is not None]
    assert len(prices) == 4 and any(price.tiers for price in prices), [price and price.model for price in found]
    return prices


_PRICES = _prices()
_tokens = st.one_of(st.integers(0, MAX_TOKENS), st.sampled_from([0, 1, 127_999, 128_000, 128_001, 200_000, 200_001]))


@pytest.mark.parametrize("price", _PRICES, ids=lambda price: price.model)
@settings(max_examples=100, deadline=None)
@given(input_tokens=_tokens, output_tokens=_tokens)
def test_the_worst_case_is_what_price_cost_gives(price: ResolvedPrice, input_tokens: int, output_tokens: int) -> None:
    expected = price.cost(Usage(input_tokens=input_tokens, output_tokens=output_tokens)).amount
    assert worst_case_cost(price, input_tokens, output_tokens) == expected


def test_negative_counts_are_billed_as_price_cost_bills_them() -> None:
    price = _PRICES[0]
    assert worst_case_cost(price, 10, -5) == price.cost(Usage(input_tokens=10, output_tokens=-5)).amount


def test_estimate_reports_the_same_worst_case() -> None:
    result = estimate("gpt-4o-mini", [{"role": "user", "content": "x" * 4000}], max_output_tokens=512)
    price = _PRICES[0]
    assert result.worst_case_cost == price.cost(Usage(input_tokens=result.input_tokens, output_tokens=512)).amount
