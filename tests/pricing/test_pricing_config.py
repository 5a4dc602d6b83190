"""Overrides, aliases and discounts, from code, mappings and files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import genai_prices
import pytest

from costspan.pricing import Pricing, cost_of, default_pricing
from costspan.usage import Usage

USAGE = Usage(input_tokens=1000, output_tokens=500)
# gpt-4.1 is 2 in / 8 out per million tokens in genai-prices: 0.002 + 0.004 for USAGE.
GPT_41_USD = 0.006

CONFIG: dict[str, Any] = {
    "aliases": {"prod-gpt4": "gpt-4.1"},
    "models": {
        "my-finetune": {"provider": "openai", "input": 3.0, "output": 12.0, "cache_read": 0.75},
    },
    "discounts": {"anthropic": 0.5},
}
TOML = """
[aliases]
"prod-gpt4" = "gpt-4.1"

[models."my-finetune"]
provider = "openai"
input = 3.0
output = 12.0
cache_read = 0.75

[discounts]
anthropic = 0.5
"""


@pytest.fixture(params=["mapping", "toml", "json"])
def configured(request: pytest.FixtureRequest, tmp_path: Path) -> Pricing:
    if request.param == "mapping":
        return Pricing(CONFIG)
    path = tmp_path / f"prices.{request.param}"
    path.write_text(TOML if request.param == "toml" else json.dumps(CONFIG), encoding="utf-8")
    return Pricing(path if request.param == "toml" else str(path))


def test_configuration_sources(configured: Pricing) -> None:
    aliased = configured.cost("azure.ai.openai", "prod-gpt4", USAGE)
    custom = configured.cost(
        "openai", "my-finetune", Usage(input_tokens=1000, cache_read_tokens=400, output_tokens=100)
    )
    discounted = configured.cost("anthropic", "claude-sonnet-4-5", USAGE)

    assert aliased is not None
    assert aliased.amount == pytest.approx(GPT_41_USD, abs=1e-12)
    assert aliased.price_model == "gpt-4.1"
    assert custom is not None
    assert custom.amount == pytest.approx(600 * 3e-6 + 400 * 0.75e-6 + 100 * 12e-6, abs=1e-12)
    assert (custom.price_model, custom.price_source) == ("my-finetune", "override")
    assert configured.cost("anthropic", "my-finetune", USAGE) is None  # the override is OpenAI's only
    assert discounted is not None
    assert discounted.amount == pytest.approx(0.0105 * 0.5, abs=1e-12)
    assert discounted.price_source == f"genai-prices {genai_prices.__version__} (discount 0.5)"


def test_aliases_argument() -> None:
    cost = Pricing(aliases={"prod-mini": "gpt-4.1-mini"}).cost("azure.ai.openai", "prod-mini", USAGE)

    assert cost is not None
    assert cost.price_model == "gpt-4.1-mini"


def test_override_wins_over_genai_prices_and_fills_missing_prices() -> None:
    pricing = Pricing()
    pricing.set_price("claude-sonnet-4-5", input=2.0, output=10.0, cache_write=2.5, per_request=0.001)
    usage = Usage(input_tokens=3000, cache_read_tokens=1000, cache_write_tokens=1000, cache_write_1h_tokens=400)

    cost = pricing.cost("anthropic", "claude-sonnet-4-5", usage)

    assert cost is not None
    assert cost.input == pytest.approx(1000 * 2e-6, abs=1e-12)
    assert cost.cache_read == pytest.approx(1000 * 2e-6, abs=1e-12)  # no cache-read price: billed as input
    # Five-minute writes at 2.5; one-hour writes at 2x input (4), as for any claude model without that price.
    assert cost.cache_write == pytest.approx(600 * 2.5e-6 + 400 * 4e-6, abs=1e-12)
    assert cost.other == pytest.approx(0.001, abs=1e-12)
    assert (cost.price_model, cost.price_source) == ("claude-sonnet-4-5", "override")


def test_set_price_and_alias_replace_cached_prices() -> None:
    pricing = Pricing()
    assert pricing.cost("openai", "prod", USAGE) is None

    pricing.alias("prod", "gpt-4.1")
    aliased = pricing.cost("openai", "prod", USAGE)
    pricing.set_price("gpt-4.1", input=1.0, output=1.0)
    overridden = pricing.cost("openai", "prod", USAGE)

    assert aliased is not None and aliased.amount == pytest.approx(GPT_41_USD, abs=1e-12)
    assert overridden is not None and overridden.amount == pytest.approx(1500 * 1e-6, abs=1e-12)


def test_provider_override_accepts_both_provider_names() -> None:
    pricing = Pricing()
    pricing.set_price("gpt-4.1", input=1.0, output=1.0, provider="azure")

    azure = pricing.cost("azure.ai.openai", "gpt-4.1", USAGE)
    openai = pricing.cost("openai", "gpt-4.1", USAGE)

    assert azure is not None and azure.price_source == "override"
    assert openai is not None and openai.amount == pytest.approx(GPT_41_USD, abs=1e-12)


def test_alias_chain_and_cycle() -> None:
    pricing = Pricing(aliases={"a": "b", "b": "gpt-4.1", "x": "y", "y": "x"})

    chained = pricing.cost("openai", "a", USAGE)

    assert chained is not None and chained.price_model == "gpt-4.1"
    assert pricing.cost("openai", "x", USAGE) is None


@pytest.mark.parametrize(
    ("discounts", "expected"),
    [
        ({"openai": 0.9}, GPT_41_USD * 0.9),
        ({"openai": 0.9, "gpt-4.1": 0.8}, GPT_41_USD * 0.8),  # a model's discount wins
        ({"openai": 0.9, "gpt-4.1-2025-04-14": 0.7}, GPT_41_USD * 0.7),  # the name as called
        ({"azure.ai.openai": 0.5}, GPT_41_USD),  # another provider's
    ],
)
def test_discounts(discounts: dict[str, float], expected: float) -> None:
    cost = Pricing({"discounts": discounts}).cost("openai", "gpt-4.1-2025-04-14", USAGE)

    assert cost is not None
    assert cost.amount == pytest.approx(expected, abs=1e-12)
    assert cost.amount == cost.input + cost.output + cost.cache_read + cost.cache_write + cost.other


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"model": {}}, "unknown section 'model' (did you mean 'models'?)"),
        ({"models": {"m": {"input": 1.0}}}, "model 'm': missing output"),
        ({"models": {"m": {"input": 1.0, "output": 1.0, "extra": 1}}}, "model 'm': unknown field 'extra'"),
        ({"models": {"m": {"input": -1.0, "output": 1.0}}}, "model 'm': input = -1.0: expected a number"),
        ({"models": {"m": {"input": True, "output": 1.0}}}, "model 'm': input = True: expected a number"),
        ({"models": {"m": 3.0}}, "model 'm': expected a table"),
        ({"aliases": {"a": 1}}, "alias 'a' = 1: expected the name of the model"),
        ({"aliases": ["a"]}, "section 'aliases' must be a table"),
        ({"discounts": {"openai": "0.9"}}, "discount 'openai' = '0.9': expected a multiplier"),
    ],
)
def test_invalid_configuration_names_the_bad_value(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        Pricing(config)

    assert str(raised.value).startswith(message)


def test_cost_of_uses_the_default_pricing() -> None:
    cost = cost_of("openai", "gpt-4.1", USAGE)

    assert default_pricing() is default_pricing()
    assert cost is not None
    assert cost.amount == pytest.approx(GPT_41_USD, abs=1e-12)
    assert cost_of("openai", "gpt-4.1", USAGE, service_tier="priority") == default_pricing().cost(
        "openai", "gpt-4.1", USAGE, "priority"
    )
