"""Costs against hand-computed values from genai-prices' data and against genai-prices' own calc_price."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import genai_prices
import pytest
from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price
from genai_prices.data_snapshot import get_snapshot

from costspan._price_data import NoPrice, _price_context, _table
from costspan.pricing import Cost, Pricing, ResolvedPrice
from costspan.usage import Usage


@dataclass(frozen=True)
class Case:
    """One call priced by hand from genai-prices 0.2.3's data, whose prices (in the comments) are USD per
    million tokens, per thousand searches or per thousand requests. ``parts`` are the USD input, output,
    cache_read, cache_write and other parts; the amount is their sum."""

    id: str
    provider: str
    model: str
    usage: Usage
    parts: tuple[str, str, str, str, str]
    price_model: str
    tier: str | None = None
    genai_provider: str = ""
    """The genai-prices provider id calc_price is asked for, when it is not ``provider``."""


HAND_COMPUTED = [
    # 2 in, 8 out
    Case(
        "gpt-4.1",
        "openai",
        "gpt-4.1",
        Usage(input_tokens=1000, output_tokens=500),
        ("0.002", "0.004", "0", "0", "0"),
        "gpt-4.1",
    ),
    # 0.5 cache read
    Case(
        "gpt-4.1 cached input",
        "openai",
        "gpt-4.1",
        Usage(input_tokens=10_000, cache_read_tokens=4000, output_tokens=1000),
        ("0.012", "0.008", "0.002", "0", "0"),
        "gpt-4.1",
    ),
    # 10 per 1000 searches
    Case(
        "gpt-4.1 web search",
        "openai",
        "gpt-4.1",
        Usage(input_tokens=1000, output_tokens=500, web_search_requests=2),
        ("0.002", "0.004", "0", "0", "0.02"),
        "gpt-4.1",
    ),
    # 3.5 in, 14 out
    Case(
        "gpt-4.1 priority",
        "openai",
        "gpt-4.1",
        Usage(input_tokens=1000, output_tokens=500),
        ("0.0035", "0.007", "0", "0", "0"),
        "gpt-4.1",
        tier="priority",
    ),
    # 0.4 in, 1.6 out
    Case(
        "gpt-4.1-mini",
        "openai",
        "gpt-4.1-mini",
        Usage(input_tokens=1_000_000, output_tokens=100_000),
        ("0.4", "0.16", "0", "0", "0"),
        "gpt-4.1-mini",
    ),
    # 0.15 in, 0.075 cache read, 0.6 out
    Case(
        "gpt-4o-mini cached",
        "openai",
        "gpt-4o-mini-2024-07-18",
        Usage(input_tokens=2000, cache_read_tokens=1024, output_tokens=300),
        ("0.0001464", "0.00018", "0.0000768", "0", "0"),
        "gpt-4o-mini",
    ),
    # 1.1 in, 4.4 out; reasoning is output
    Case(
        "o4-mini reasoning",
        "openai",
        "o4-mini",
        Usage(input_tokens=500, output_tokens=2000, reasoning_tokens=1500),
        ("0.00055", "0.0088", "0", "0", "0"),
        "o4-mini",
    ),
    # 0.625 in, 5 out (standard 1.25 / 10)
    Case(
        "gpt-5 flex",
        "openai",
        "gpt-5",
        Usage(input_tokens=10_000, output_tokens=2000),
        ("0.00625", "0.01", "0", "0", "0"),
        "gpt-5",
        tier="flex",
    ),
    # 0.02 in
    Case(
        "text-embedding-3-small",
        "openai",
        "text-embedding-3-small",
        Usage(input_tokens=1000),
        ("0.00002", "0", "0", "0", "0"),
        "text-embedding-3-small",
    ),
    # 5 in, 22.5 out once input > 272000 (2.5 / 15 below)
    Case(
        "gpt-5.4 above 272K",
        "openai",
        "gpt-5.4",
        Usage(input_tokens=300_000, output_tokens=1000),
        ("1.5", "0.0225", "0", "0", "0"),
        "gpt-5.4",
    ),
    Case(
        "gpt-5.4 at 272K",
        "openai",
        "gpt-5.4",
        Usage(input_tokens=272_000, output_tokens=1000),
        ("0.68", "0.015", "0", "0", "0"),
        "gpt-5.4",
    ),
    # 2.5 text in, 32 audio in, 10 text out, 64 audio out
    Case(
        "gpt-audio",
        "openai",
        "gpt-audio",
        Usage(input_tokens=1000, input_audio_tokens=600, output_tokens=500, output_audio_tokens=400),
        ("0.0202", "0.0266", "0", "0", "0"),
        "gpt-audio",
    ),
    # 3 in, 15 out
    Case(
        "claude-sonnet-4-5",
        "anthropic",
        "claude-sonnet-4-5-20250929",
        Usage(input_tokens=1000, output_tokens=500),
        ("0.003", "0.0075", "0", "0", "0"),
        "claude-sonnet-4-5",
    ),
    # 0.3 cache read
    Case(
        "claude-sonnet-4-5 cache read",
        "anthropic",
        "claude-sonnet-4-5",
        Usage(input_tokens=10_000, cache_read_tokens=8000, output_tokens=100),
        ("0.006", "0.0015", "0.0024", "0", "0"),
        "claude-sonnet-4-5",
    ),
    # 3.75
    Case(
        "claude-sonnet-4-5 5m cache write",
        "anthropic",
        "claude-sonnet-4-5",
        Usage(input_tokens=10_000, cache_write_tokens=10_000),
        ("0", "0", "0", "0.0375", "0"),
        "claude-sonnet-4-5",
    ),
    # 6
    Case(
        "claude-sonnet-4-5 1h cache write",
        "anthropic",
        "claude-sonnet-4-5",
        Usage(input_tokens=10_000, cache_write_tokens=10_000, cache_write_1h_tokens=10_000),
        ("0", "0", "0", "0.06", "0"),
        "claude-sonnet-4-5",
    ),
    # 10 per 1000 searches
    Case(
        "claude-sonnet-4-5 web search",
        "anthropic",
        "claude-sonnet-4-5",
        Usage(input_tokens=1000, output_tokens=500, web_search_requests=3),
        ("0.003", "0.0075", "0", "0", "0.03"),
        "claude-sonnet-4-5",
    ),
    # 6 in, 0.6 cache read, 22.5 out once input (cached included) > 200000
    Case(
        "claude-sonnet-4-5 above 200K",
        "anthropic",
        "claude-sonnet-4-5",
        Usage(input_tokens=250_000, cache_read_tokens=50_000, output_tokens=2000),
        ("1.2", "0.045", "0.03", "0", "0"),
        "claude-sonnet-4-5",
    ),
    Case(
        "claude-sonnet-4-5 at 200K",
        "anthropic",
        "claude-sonnet-4-5",
        Usage(input_tokens=200_000, output_tokens=2000),
        ("0.6", "0.03", "0", "0", "0"),
        "claude-sonnet-4-5",
    ),
    # 1.5 in, 7.5 out
    Case(
        "claude-sonnet-4-5 batch",
        "anthropic",
        "claude-sonnet-4-5",
        Usage(input_tokens=1000, output_tokens=500),
        ("0.0015", "0.00375", "0", "0", "0"),
        "claude-sonnet-4-5",
        tier="batch",
    ),
    # 1 in, 0.1 read, 1.25 5m write, 2 1h write, 5 out
    Case(
        "claude-haiku-4-5 reads and writes",
        "anthropic",
        "claude-haiku-4-5-20251001",
        Usage(
            input_tokens=5000,
            cache_read_tokens=3000,
            cache_write_tokens=1000,
            cache_write_1h_tokens=400,
            output_tokens=200,
        ),
        ("0.001", "0.001", "0.0003", "0.00155", "0"),
        "claude-haiku-4-5",
    ),
    # 15 in, 75 out
    Case(
        "claude-opus-4-1",
        "anthropic",
        "claude-opus-4-1-20250805",
        Usage(input_tokens=2000, output_tokens=1000),
        ("0.03", "0.075", "0", "0", "0"),
        "claude-opus-4-1",
    ),
    # Bedrock's regional price: 3.3 in, 16.5 out
    Case(
        "bedrock claude-sonnet-4-5",
        "aws.bedrock",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        Usage(input_tokens=1000, output_tokens=500),
        ("0.0033", "0.00825", "0", "0", "0"),
        "regional.anthropic.claude-sonnet-4-5-20250929-v1:0",
        genai_provider="aws",
    ),
    # 1.1 in, 5.5 out
    Case(
        "bedrock claude-haiku-4-5",
        "aws.bedrock",
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        Usage(input_tokens=1000, output_tokens=500),
        ("0.0011", "0.00275", "0", "0", "0"),
        "regional.anthropic.claude-haiku-4-5-20251001-v1:0",
        genai_provider="aws",
    ),
    # Vertex's entry: 3 in, 15 out
    Case(
        "vertex claude-sonnet-4-5",
        "gcp.vertex_ai",
        "claude-sonnet-4-5@20250929",
        Usage(input_tokens=1000, output_tokens=500),
        ("0.003", "0.0075", "0", "0", "0"),
        "claude-sonnet-4-5",
        genai_provider="google",
    ),
    # Azure falls back to OpenAI's standard price, even for priority
    Case(
        "azure gpt-4.1",
        "azure.ai.openai",
        "gpt-4.1",
        Usage(input_tokens=1000, output_tokens=500),
        ("0.002", "0.004", "0", "0", "0"),
        "gpt-4.1",
        tier="priority",
        genai_provider="azure",
    ),
    # 1 in, 1 out, 12 per 1000 requests
    Case(
        "perplexity sonar per-request fee",
        "perplexity",
        "sonar",
        Usage(input_tokens=1000, output_tokens=1000),
        ("0.001", "0.001", "0", "0", "0.012"),
        "sonar",
    ),
]


def _genai_usage(usage: Usage) -> GenaiUsage:
    return GenaiUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
        output_reasoning_tokens=usage.reasoning_tokens,
        input_audio_tokens=usage.input_audio_tokens,
        output_audio_tokens=usage.output_audio_tokens,
        web_searches=usage.web_search_requests,
        # costspan takes cached tokens to be text; genai-prices needs that said when audio is priced too.
        cache_audio_read_tokens=0,
    )


def _parts(cost: Cost) -> tuple[float, ...]:
    return cost.input, cost.output, cost.cache_read, cost.cache_write, cost.other


@pytest.fixture(scope="module")
def pricing() -> Pricing:
    return Pricing()


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in HAND_COMPUTED])
def test_hand_computed(pricing: Pricing, case: Case) -> None:
    cost = pricing.cost(case.provider, case.model, case.usage, case.tier)

    assert cost is not None
    assert _parts(cost) == pytest.approx([float(part) for part in case.parts], abs=1e-12)
    assert cost.amount == pytest.approx(float(sum(Decimal(part) for part in case.parts)), abs=1e-12)
    assert cost.amount == cost.input + cost.output + cost.cache_read + cost.cache_write + cost.other
    assert type(cost.amount) is float
    assert cost.price_model == case.price_model
    assert cost.price_source == f"genai-prices {genai_prices.__version__}"


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in HAND_COMPUTED])
def test_agrees_with_calc_price(pricing: Pricing, case: Case) -> None:
    expected = calc_price(
        _genai_usage(case.usage),
        case.model,
        provider_id=case.genai_provider or case.provider,
        price_context=_price_context(case.tier),
    )

    cost = pricing.cost(case.provider, case.model, case.usage, case.tier)

    assert cost is not None
    assert cost.amount == pytest.approx(float(expected.total_price), abs=1e-9)
    assert cost.output == pytest.approx(float(expected.output_price), abs=1e-9)
    assert cost.input + cost.cache_read + cost.cache_write == pytest.approx(float(expected.input_price), abs=1e-9)


SWEEP_USAGES = [
    Usage(input_tokens=1234, output_tokens=567),
    Usage(
        input_tokens=300_000,
        cache_read_tokens=100_000,
        cache_write_tokens=20_000,
        cache_write_1h_tokens=5000,
        output_tokens=4000,
        reasoning_tokens=1000,
        web_search_requests=2,
    ),
    Usage(
        input_tokens=5000,
        input_audio_tokens=1000,
        cache_read_tokens=500,
        output_tokens=800,
        output_audio_tokens=300,
    ),
]
SWEEP_PROVIDERS = ("openai", "anthropic", "azure", "aws", "google", "perplexity")
SWEEP_TIERS = (None, "default", "flex", "priority", "fast", "batch")


def _sweep() -> list[Any]:
    snapshot = get_snapshot()
    return [
        pytest.param(snapshot, provider, info, id=f"{provider.id}:{info.id}")
        for provider in snapshot.providers
        if provider.id in SWEEP_PROVIDERS
        for info in provider.models
    ]


@pytest.mark.parametrize(("snapshot", "provider", "info"), _sweep())
@pytest.mark.parametrize("tier", SWEEP_TIERS)
def test_every_model_agrees_with_calc_price(snapshot: Any, provider: Any, info: Any, tier: str | None) -> None:
    """Every entry of the providers costspan instruments, in every service tier, priced like genai-prices."""
    try:
        table = _table(snapshot, provider, info, tier)
    except NoPrice:
        pytest.skip("priced only in units Usage does not count")
    price = ResolvedPrice.from_table(table)
    no_one_hour_price = (
        table.anthropic_family and "cache_write" in table.prices and "cache_write_1h" not in table.prices
    )
    for usage in SWEEP_USAGES:
        if no_one_hour_price and usage.cache_write_1h_tokens:
            continue  # costspan's deliberate 2x-input rule, tested in test_pricing_resolution
        expected = info.calc_price(_genai_usage(usage), provider, price_context=_price_context(tier))
        cost = price.cost(usage)
        assert cost.amount == pytest.approx(float(expected.total_price), abs=1e-9), usage
        assert cost.output == pytest.approx(float(expected.output_price), abs=1e-9), usage
