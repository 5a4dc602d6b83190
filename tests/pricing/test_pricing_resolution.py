"""Resolution: provider mapping, unpriced models, caching, expiry and the float-only hot path."""

from __future__ import annotations

import logging
import sys
import threading
import types
from dataclasses import fields
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from genai_prices.types import (
    ClauseEquals,
    ConditionalPrice,
    ModelInfo,
    ModelPrice,
    StartDateConstraint,
    TimeOfDateConstraint,
)

import costspan.pricing
from costspan import _price_data
from costspan.pricing import Pricing, Rates, ResolvedPrice
from costspan.usage import Usage

USAGE = Usage(input_tokens=1000, output_tokens=500)


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str | None]]:
    """Records every genai-prices lookup the pricing engine makes."""
    calls: list[tuple[str, str, str | None]] = []

    def recording_lookup(provider: str, model: str, service_tier: str | None) -> Any:
        calls.append((provider, model, service_tier))
        return _price_data.lookup(provider, model, service_tier)

    monkeypatch.setattr(costspan.pricing, "lookup", recording_lookup)
    return calls


@pytest.mark.parametrize(
    ("provider", "model", "price_model"),
    [
        ("openai", "gpt-4.1-2025-04-14", "gpt-4.1"),
        ("azure.ai.openai", "gpt-4o-mini", "gpt-4o-mini"),  # via genai-prices' Azure -> OpenAI fallback
        ("azure.ai.openai", "o4-mini", "o4-mini"),  # Azure's own entry
        ("anthropic", "claude-opus-4-1-20250805", "claude-opus-4-1"),
        (
            "aws.bedrock",
            "us.anthropic.claude-opus-4-1-20250805-v1:0",
            "regional.anthropic.claude-opus-4-1-20250805-v1:0",
        ),
        (
            "aws.bedrock",
            "global.anthropic.claude-haiku-4-5-20251001-v1:0",
            "global.anthropic.claude-haiku-4-5-20251001-v1:0",
        ),
        ("aws.bedrock", "anthropic.claude-opus-4-6-v1:0", "regional.anthropic.claude-opus-4-6-v1:0"),
        # No Bedrock entry: the Anthropic base model's price.
        ("aws.bedrock", "eu.anthropic.claude-opus-4-0-v1:0", "claude-opus-4-0"),
        (
            "aws.bedrock",
            "arn:aws:bedrock:us-east-1:1:inference-profile/us.anthropic.claude-3-opus-v1:0",
            "claude-3-opus-latest",
        ),
        ("gcp.vertex_ai", "claude-opus-4@20250514", "claude-4-opus"),  # Vertex's entry, found by the base id
        ("gcp.vertex_ai", "claude-3-7-sonnet@20250219", "claude-3-7-sonnet"),
        ("gcp.vertex_ai", "claude-2@001", "claude-2"),  # no Vertex entry: Anthropic's
        ("x_ai", "grok-4", "grok-4-0709"),  # other providers: genai-prices guesses
        ("deepseek", "deepseek-chat", "deepseek-chat"),
    ],
)
def test_provider_mapping(provider: str, model: str, price_model: str) -> None:
    cost = Pricing().cost(provider, model, USAGE)

    assert cost is not None
    assert cost.price_model == price_model


def test_unknown_model_is_unpriced_logged_once_and_not_looked_up_again(
    caplog: pytest.LogCaptureFixture, lookups: list[Any]
) -> None:
    pricing = Pricing()

    with caplog.at_level(logging.WARNING, logger="costspan"):
        first = pricing.cost("openai", "my-unknown-model", USAGE)
        second = pricing.cost("openai", "my-unknown-model", USAGE)
        other_tier = pricing.cost("openai", "my-unknown-model", USAGE, "priority")

    assert first is second is other_tier is None
    assert lookups == [("openai", "my-unknown-model", None), ("openai", "my-unknown-model", "priority")]
    [record] = caplog.records
    assert record.name == "costspan"
    assert record.levelno == logging.WARNING
    assert "'my-unknown-model'" in record.getMessage()


def test_model_priced_only_in_units_usage_lacks_is_unpriced(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="costspan"):
        assert Pricing().cost("openai", "whisper-1", USAGE) is None

    assert "audio" in caplog.records[0].getMessage()


def test_free_model_costs_zero() -> None:
    cost = Pricing().cost("openai", "omni-moderation-latest", USAGE)

    assert cost is not None
    assert cost.amount == 0.0


def test_resolution_failure_is_unpriced_and_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = []

    def broken_lookup(provider: str, model: str, service_tier: str | None) -> Any:
        calls.append(model)
        raise RuntimeError("broken price data")

    monkeypatch.setattr(costspan.pricing, "lookup", broken_lookup)
    pricing = Pricing()

    with caplog.at_level(logging.WARNING, logger="costspan"):
        assert pricing.cost("openai", "gpt-4.1", USAGE) is None
        assert pricing.cost("openai", "gpt-4.1", USAGE) is None

    assert calls == ["gpt-4.1"]
    [record] = caplog.records
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def test_resolve_is_cached(lookups: list[Any]) -> None:
    pricing = Pricing()

    first = pricing.resolve("openai", "gpt-4.1")

    assert pricing.resolve("openai", "gpt-4.1") is first
    assert len(lookups) == 1


def test_concurrent_first_calls_resolve_once(lookups: list[Any]) -> None:
    pricing = Pricing()
    barrier = threading.Barrier(8)
    results: list[float | None] = []

    def call() -> None:
        barrier.wait()
        cost = pricing.cost("anthropic", "claude-sonnet-4-5", USAGE)
        results.append(None if cost is None else cost.amount)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [pytest.approx(0.0105, abs=1e-12)] * 8
    assert len(lookups) == 1


def test_expired_price_is_resolved_again(monkeypatch: pytest.MonkeyPatch, lookups: list[Any]) -> None:
    pricing = Pricing()
    price = pricing.resolve("deepseek", "deepseek-chat")  # off-peak prices: a daily window
    assert price is not None
    assert price.expires - datetime.now(UTC).timestamp() <= 86_400

    later = types.SimpleNamespace(time=lambda: price.expires)
    monkeypatch.setattr(costspan.pricing, "time", later)
    pricing.resolve("deepseek", "deepseek-chat")

    assert len(lookups) == 2


def _model(*prices: ConditionalPrice) -> ModelInfo:
    return ModelInfo(id="m", match=ClauseEquals(equals="m"), prices=list(prices))


NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
UTC_MINUS_5 = timezone(timedelta(hours=-5))


@pytest.mark.parametrize(
    ("constraint", "now", "expected"),
    [
        (StartDateConstraint(start_date=date(2027, 1, 1)), NOW, datetime(2027, 1, 1, tzinfo=UTC)),
        (StartDateConstraint(start_date=date(2026, 1, 1)), NOW, None),
        (
            TimeOfDateConstraint(start_time=time(16, 30), end_time=time(0, 30)),
            NOW,
            NOW.replace(hour=16, minute=30),
        ),
        (
            TimeOfDateConstraint(start_time=time(16, 30), end_time=time(0, 30)),
            NOW.replace(hour=20),
            datetime(2026, 11, 23, 0, 30, tzinfo=UTC),
        ),
        (
            # 23:30 at UTC-5 is 04:30 UTC: its next occurrence after 03:00 UTC is the same UTC day.
            TimeOfDateConstraint(start_time=time(23, 30, tzinfo=UTC_MINUS_5), end_time=time(6, 0, tzinfo=UTC_MINUS_5)),
            NOW.replace(hour=3),
            NOW.replace(hour=4, minute=30),
        ),
    ],
)
def test_next_price_change(constraint: Any, now: datetime, expected: datetime | None) -> None:
    info = _model(
        ConditionalPrice(prices=ModelPrice(input_mtok=Decimal(1))),
        ConditionalPrice(constraint=constraint, prices=ModelPrice(input_mtok=Decimal(2))),
    )

    expires = _price_data._next_change(info, now)

    assert expires == (float("inf") if expected is None else expected.timestamp())


def test_one_hour_cache_write_without_a_price_is_twice_input_for_anthropic_models() -> None:
    # Bedrock's claude-opus-4-1 entry lists 15 input and 18.75 cache write but no one-hour price.
    usage = Usage(input_tokens=1000, cache_write_tokens=1000, cache_write_1h_tokens=1000)

    cost = Pricing().cost("aws.bedrock", "us.anthropic.claude-opus-4-1-20250805-v1:0", usage)

    assert cost is not None
    assert cost.cache_write == pytest.approx(1000 * 30e-6, abs=1e-12)


def test_one_hour_cache_write_without_a_price_is_a_cache_write_for_other_models() -> None:
    # gpt-5.6-sol lists a cache-write price (5 since 2026-08-21) and no one-hour price.
    usage = Usage(input_tokens=1000, cache_write_tokens=1000, cache_write_1h_tokens=1000)

    cost = Pricing().cost("openai", "gpt-5.6-sol", usage)

    assert cost is not None
    assert cost.cache_write == pytest.approx(1000 * 5e-6, abs=1e-12)


@pytest.mark.parametrize(
    ("input_tokens", "expected_input_rate"),
    [(0, 3e-6), (200_000, 3e-6), (200_001, 6e-6), (1_000_000, 6e-6)],
)
def test_tier_applies_above_its_start(input_tokens: int, expected_input_rate: float) -> None:
    price = Pricing().resolve("anthropic", "claude-sonnet-4-5")

    assert price is not None
    assert price.rates_for(input_tokens).input == pytest.approx(expected_input_rate, rel=1e-12)


@pytest.mark.parametrize(
    ("usage", "parts"),
    [
        # More cache reads than input: the uncached part is clamped at zero, never negative.
        (Usage(input_tokens=100, cache_read_tokens=1000), (0.0, 0.0, 1000 * 0.5e-6, 0.0, 0.0)),
        # A one-hour part larger than the cache writes: the five-minute part is clamped at zero (gpt-4.1 has
        # no cache-write price, so writes cost the input price, 2).
        (
            Usage(input_tokens=10, cache_write_tokens=10, cache_write_1h_tokens=20),
            (0.0, 0.0, 0.0, 20 * 2e-6, 0.0),
        ),
    ],
)
def test_inconsistent_counts_never_cost_negative(usage: Usage, parts: tuple[float, ...]) -> None:
    cost = Pricing().cost("openai", "gpt-4.1", usage)

    assert cost is not None
    assert (cost.input, cost.output, cost.cache_read, cost.cache_write, cost.other) == pytest.approx(parts)


def _assert_plain_floats(price: ResolvedPrice) -> None:
    for rates in (price.rates, *(tier_rates for _, tier_rates in price.tiers)):
        assert all(type(getattr(rates, field.name)) is float for field in fields(Rates))
    assert all(type(start) is int for start, _ in price.tiers)


def test_cached_cost_runs_only_float_arithmetic_of_this_module() -> None:
    """The hot path: no genai-prices, pydantic or Decimal code once a price is resolved."""
    pricing = Pricing()
    usage = Usage(input_tokens=300_000, cache_read_tokens=1000, output_tokens=100, web_search_requests=1)
    price = pricing.resolve("openai", "gpt-5.4")
    assert price is not None and price.tiers
    _assert_plain_floats(price)
    code_files: set[str] = set()

    def tracer(frame: types.FrameType, event: str, arg: object) -> None:
        code_files.add(frame.f_code.co_filename)

    sys.settrace(tracer)
    try:
        cost = pricing.cost("openai", "gpt-5.4", usage)
    finally:
        sys.settrace(None)

    assert cost is not None
    assert all(type(getattr(cost, name)) is float for name in ("amount", "input", "output", "other"))
    # Only this module and the dataclass-generated __init__ (compiled from a string) run.
    generated = {name for name in code_files if name.startswith("<") and not name.startswith("<frozen")}
    assert code_files - generated == {costspan.pricing.__file__}
