"""The genai-prices side of pricing: find a model's prices once and turn them into plain floats.

Everything here runs on a cache miss in :mod:`costspan.pricing`, never per call. genai-prices (pydantic,
Decimal and a large data module) is imported lazily so that importing costspan stays cheap and does no
I/O. Its bundled snapshot is used, or the one the application installed itself with genai-prices'
``UpdatePrices``: costspan never fetches prices.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from genai_prices.data_snapshot import DataSnapshot
    from genai_prices.types import ModelInfo, ModelPrice, Provider, TieredPrices

__all__ = ["PRICED_UNITS", "NoPrice", "PriceTable", "Tiered", "canonical_provider", "lookup", "provider_names"]

Tiered = tuple[float, tuple[tuple[int, float], ...]]
"""USD per unit: the base price, then ``(start, price)`` tiers in ascending order. As in genai-prices, a tier
applies to every unit of the request once its total input tokens exceed ``start``."""

PRICED_UNITS: Mapping[str, str] = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cache_read": "cache_read_tokens",
    "cache_write": "cache_write_tokens",
    "cache_write_1h": "cache_write_1h_tokens",
    "input_audio": "input_audio_tokens",
    "output_audio": "output_audio_tokens",
    "reasoning": "output_reasoning_tokens",
    "web_search": "web_searches",
    "request": "requests",
}
"""costspan's price names and the genai-prices usage keys they price; genai-prices' unit registry gives each
key's price key and divisor. Other units (images, characters, audio seconds, file searches) are not in
:class:`costspan.usage.Usage`, so they are not priced."""

_PROVIDER_IDS = {
    "azure.ai.openai": "azure",
    "aws.bedrock": "aws",
    "gcp.vertex_ai": "google",
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
}
_KNOWN_PROVIDERS = frozenset({"openai", "azure", "anthropic", "aws", "google"})
# Providers that serve Anthropic models under their own ids: Bedrock ("us.anthropic.claude-...-v1:0") and
# Vertex ("claude-...@20250929"). When genai-prices has no entry of theirs, the Anthropic price applies.
_CLAUDE_HOSTS = frozenset({"aws", "google"})
_BEDROCK_VENDOR_PREFIX = re.compile(r"^(?:[a-z-]+\.)?anthropic\.")
_BEDROCK_VERSION_SUFFIX = re.compile(r"-v\d+(?::\d+)?$")
# Request context keys genai-prices' price variants select on, beyond the service tier itself.
_TIER_CONTEXT = {"batch": {"processing": "batch"}, "fast": {"speed": "fast"}}


class NoPrice(LookupError):
    """genai-prices has no usable price for the model."""


@dataclass(frozen=True, slots=True)
class PriceTable:
    """One model's prices as floats, before fallbacks and discounts are applied."""

    model: str
    """The matched price entry: a genai-prices model id or an override's name."""
    source: str
    prices: Mapping[str, Tiered]
    """Keyed by the names in :data:`PRICED_UNITS`; a missing name has no price of its own."""
    anthropic_family: bool
    expires: float = math.inf
    """POSIX time at which the prices may change (a dated price or an off-peak window starts)."""


def canonical_provider(provider: str) -> str:
    """The genai-prices provider id for an OpenTelemetry ``gen_ai.provider.name`` (others unchanged)."""
    return _PROVIDER_IDS.get(provider, provider)


@functools.cache
def provider_names() -> frozenset[str]:
    """Every name a price override's provider may take: a ``gen_ai.provider.name`` (the semantic conventions' and
    costspan's) or a genai-prices provider id. Loads genai-prices: for configuration time, never per call."""
    from genai_prices.data_snapshot import get_snapshot
    from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GenAiProviderNameValues

    semconv = {value.value for value in GenAiProviderNameValues}
    return frozenset({*semconv, *_PROVIDER_IDS, *(provider.id for provider in get_snapshot().providers)})


def lookup(provider: str, model: str, service_tier: str | None) -> PriceTable:
    """The prices genai-prices would charge ``model`` on ``provider`` now, or :class:`NoPrice`."""
    from genai_prices.data_snapshot import get_snapshot

    snapshot = get_snapshot()
    for provider_id, model_ref in _candidates(canonical_provider(provider), model):
        try:
            found_provider, info = snapshot.find_provider_model(model_ref, None, provider_id, None)
        except LookupError:
            continue
        return _table(snapshot, found_provider, info, service_tier)
    _bound_lookup_caches(snapshot)
    raise NoPrice(f"genai-prices has no price for {model=!r} on {provider=!r}")


# genai-prices remembers its provider lookups per model name, and model names come from servers too: one that
# makes names up would grow those caches without end. costspan resolves each model once into its own bounded
# cache, so emptying genai-prices' when it outgrows this costs a lookup now and then, and bounds the memory.
_LOOKUP_CACHE_BOUND = 128


def _bound_lookup_caches(snapshot: object) -> None:
    for name in ("_provider_cache", "_provider_misses", "_lookup_cache"):
        cache = getattr(snapshot, name, None)
        if isinstance(cache, dict | set) and len(cache) > _LOOKUP_CACHE_BOUND:
            cache.clear()


def _candidates(provider: str, model: str) -> Iterator[tuple[str | None, str]]:
    yield provider, model
    if provider not in _KNOWN_PROVIDERS:
        # Unknown provider names: genai-prices guesses the provider from the model name.
        yield None, model
        return
    base = _base_model_id(model)
    if base != model:
        yield provider, base
    if provider in _CLAUDE_HOSTS and "claude" in base:
        yield "anthropic", base


def _base_model_id(model: str) -> str:
    """``us.anthropic.claude-x-v1:0`` (or an ARN ending in it) and ``claude-x@date`` -> ``claude-x``."""
    name = model.rsplit("/", 1)[-1].split("@", 1)[0]
    return _BEDROCK_VERSION_SUFFIX.sub("", _BEDROCK_VENDOR_PREFIX.sub("", name))


def _table(snapshot: DataSnapshot, provider: Provider, info: ModelInfo, service_tier: str | None) -> PriceTable:
    from genai_prices import __version__

    now = datetime.now(UTC)
    context = _price_context(service_tier)
    # As in ModelInfo.calc_price: price variants (service tiers, batch) belong to the provider listing the
    # model, so a model found through a fallback (Azure -> OpenAI, Vertex -> Anthropic) keeps standard prices.
    if not any(model is info for model in provider.models):
        context = None
    model_price = info.get_prices(now, context)
    prices = _float_prices(model_price)
    if not prices and _has_prices(model_price):
        raise NoPrice(f"{info.id!r} is priced only in units costspan does not count: {model_price}")
    source = f"genai-prices {__version__}"
    if snapshot.from_auto_update:
        source += f" (updated {snapshot.timestamp.isoformat(timespec='seconds')})"
    return PriceTable(
        model=info.id,
        source=source,
        prices=prices,
        anthropic_family=provider.id == "anthropic" or "claude" in info.id.lower(),
        expires=_next_change(info, now),
    )


def _price_context(service_tier: str | None) -> dict[str, str] | None:
    if service_tier is None:
        return None
    return {"service_tier": service_tier, **_TIER_CONTEXT.get(service_tier, {})}


def _float_prices(model_price: ModelPrice) -> dict[str, Tiered]:
    from genai_prices.data_units import unit_data

    prices: dict[str, Tiered] = {}
    for name, usage_key in PRICED_UNITS.items():
        unit = unit_data[usage_key]
        value = getattr(model_price, unit["price_key"])
        if value is not None:
            prices[name] = _per_unit(value, unit["per"])
    return prices


def _per_unit(value: Decimal | TieredPrices, per: int) -> Tiered:
    if isinstance(value, Decimal):
        return float(value / per), ()
    return float(value.base / per), tuple((tier.start, float(tier.price / per)) for tier in value.tiers)


def _has_prices(model_price: ModelPrice) -> bool:
    return any(value is not None for key, value in vars(model_price).items() if not key.startswith("_"))


def _next_change(info: ModelInfo, now: datetime) -> float:
    from genai_prices.types import StartDateConstraint, TimeOfDateConstraint

    constraints = [price.constraint for price in info.prices] if isinstance(info.prices, list) else []
    constraints += [variant.constraint for variant in info.price_variants or ()]
    changes: list[float] = []
    for constraint in constraints:
        if isinstance(constraint, StartDateConstraint):
            # genai-prices compares the request's UTC date with start_date.
            changes.append(datetime.combine(constraint.start_date, time(), UTC).timestamp())
        elif isinstance(constraint, TimeOfDateConstraint):
            changes += (_next_time_of_day(t, now) for t in (constraint.start_time, constraint.end_time))
    return min((change for change in changes if change > now.timestamp()), default=math.inf)


def _next_time_of_day(moment: time, now: datetime) -> float:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    # Start a day early: in the time's own zone, its next occurrence can fall on the previous UTC date.
    candidate = datetime.combine(now.date() - timedelta(days=1), aware)
    while candidate <= now:
        candidate += timedelta(days=1)
    return candidate.timestamp()
