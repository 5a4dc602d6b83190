"""The pricing engine: the USD cost of one LLM call, from its normalised :class:`~costspan.usage.Usage`.

Prices come from genai-prices. Each (provider, model, service tier) is resolved once into a
:class:`ResolvedPrice` of plain floats (USD per token, long-context tiers, per-request fees) and cached, so
pricing a call is a handful of float multiplications: no pydantic, no Decimal. An unknown model is unpriced
(``None``, never a silent $0), logged once at WARNING on the ``costspan`` logger (the first
:data:`UNPRICED_LOG_LIMIT` models by name, then a count), and never raises. The cache of resolved prices is
bounded: a server that names a new model in every response costs memory and log lines only up to those bounds.

Billing rules, as genai-prices applies them:

- ``input_tokens`` includes cache reads and writes; what is left after removing them (and audio input) is
  billed at the input price. A part without a price of its own (cache reads, cache writes, audio, reasoning)
  is billed at its parent's price: input for input parts, output for output parts.
- Cache writes: the five-minute part at the cache-write price, ``cache_write_1h_tokens`` at the one-hour
  price (2x input for Anthropic models whose entry lists no one-hour price).
- Reasoning tokens are part of ``output_tokens`` and billed as output unless the model prices them apart.
- Long-context tiers: once the request's total input tokens (cached included) exceed a tier's start, the
  tier's price applies to all of that part's units, not only to those above the threshold.
- Service tiers select genai-prices' price variants: OpenAI ``flex``, ``priority`` (and ``fast``); ``batch``
  selects batch prices; Anthropic fast mode is ``service_tier="fast"``. Other tiers use standard prices.
- Web searches (per search) and per-request fees are ``Cost.other``.

Overrides and aliases come from code (:meth:`Pricing.set_price`, :meth:`Pricing.alias`) or from a mapping or a
file (``.json`` is JSON, anything else TOML) of this shape::

    [aliases]                       # a name (e.g. an Azure deployment) -> the model it is priced as
    "prod-gpt4" = "gpt-4.1"

    [models."my-finetune"]          # replaces genai-prices for this name; USD per million tokens
    provider = "openai"             # optional: this provider only (gen_ai.provider.name or genai-prices id)
    input = 3.0
    output = 12.0
    cache_read = 0.75               # optional, default: the input price
    cache_write = 3.75              # optional, default: the input price
    cache_write_1h = 6.0            # optional, default: the cache-write price (2x input for claude models)
    per_request = 0.0               # optional, USD per call

    [discounts]                     # optional multipliers on every part of the cost
    openai = 0.9                    # a provider, or a model name as called or as priced
    "gpt-4.1" = 0.8                 # a model's discount wins over its provider's

An override or alias applies to the model name exactly as the call reports it. :func:`read_prices` checks a
configuration before anything uses it: a ValueError names the file, the line (where the parser gives one), the
model and the field. An alias's target is resolved
like any model (override first, then genai-prices) and ``Cost.price_model`` names the entry that matched.
"""

from __future__ import annotations

import json
import logging
import math
import os
import reprlib
import stat
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from costspan._price_data import NoPrice, PriceTable, Tiered, canonical_provider, lookup, provider_names
from costspan._suggest import did_you_mean
from costspan.usage import Usage

__all__ = [
    "Cost",
    "PriceConfig",
    "PriceSource",
    "Pricing",
    "Rates",
    "ResolvedPrice",
    "cost_of",
    "default_pricing",
    "read_prices",
]

_logger = logging.getLogger("costspan")

_Key = tuple[str, str, str | None]
_CallKey = tuple[str, str, str | None, str | None]
_SECTIONS = ("aliases", "models", "discounts")
_MODEL_KEYS = ("provider", "input", "output", "cache_read", "cache_write", "cache_write_1h", "per_request")
_PER_MILLION = 1_000_000
_FALLBACK_NOTE = " (fallback: the requested model's price, the response's model having none)"
_CACHE_SIZE = 1024
"""Resolved prices kept (a model, provider and service tier each); past it the oldest is dropped."""
UNPRICED_LOG_LIMIT = 20
"""Models without a price logged by name; past them, the count of further lookups is logged (at 1, 10, 100...)."""
MAX_PRICE_FILE_BYTES = 4 * 1024 * 1024
"""A price file larger than this is refused unread (the prices of every model genai-prices knows take ~0.5 MiB)."""
# Values from a price file in error messages: short, and never deeper than a few levels however deep the data.
_brief = reprlib.Repr()
_brief.maxstring = _brief.maxother = 80
# The provider names costspan's own spans carry, for the message about an unknown one.
_CALL_PROVIDERS = "'openai', 'azure.ai.openai', 'anthropic', 'aws.bedrock' or 'gcp.vertex_ai'"

PriceSource: TypeAlias = "Mapping[str, Any] | str | os.PathLike[str]"
"""A price configuration: a mapping, or the path of a JSON (``.json``) or TOML (anything else) file."""


@dataclass(slots=True)  # not frozen: a frozen dataclass costs ~1 us more to build, on every call
class Cost:
    """The USD cost of one call, split by what was billed; ``amount`` is the sum of the parts."""

    amount: float
    input: float
    """Uncached input tokens, audio input at its own price."""
    output: float
    """Output tokens, reasoning included."""
    cache_read: float
    cache_write: float
    """Five-minute and one-hour cache writes, each at its own price."""
    other: float
    """Web searches and per-request fees."""
    price_model: str
    """The price entry that matched: a genai-prices model id or an override's name."""
    price_source: str
    """``genai-prices <version>`` or ``override``, with the discount if one applied, and the fallback if taken."""
    fallback: bool = False
    """Priced as the requested model: the model the response named has no price (see :meth:`Pricing.call_cost`)."""


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per token (``web_search``: per search, ``request``: per call), fallbacks and discount applied."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    cache_write_1h: float
    input_audio: float
    output_audio: float
    reasoning: float
    web_search: float
    request: float


@dataclass(frozen=True, slots=True)
class ResolvedPrice:
    """A model's prices as plain floats, ready to price any number of calls."""

    model: str
    source: str
    rates: Rates
    """The rates up to the first tier."""
    tiers: tuple[tuple[int, Rates], ...] = ()
    """``(start, rates)`` in ascending order: the rates once total input tokens exceed ``start``."""
    expires: float = math.inf
    """POSIX time after which the prices must be resolved again."""

    @classmethod
    def from_table(cls, table: PriceTable, multiplier: float = 1.0) -> ResolvedPrice:
        starts = sorted({start for _, tiers in table.prices.values() for start, _ in tiers})
        source = table.source if multiplier == 1.0 else f"{table.source} (discount {multiplier:g})"
        return cls(
            model=table.model,
            source=source,
            rates=_rates_at(table, 0, multiplier),
            # Within (start, next start] every part's price is the one it has just above start.
            tiers=tuple((start, _rates_at(table, start + 1, multiplier)) for start in starts),
            expires=table.expires,
        )

    def rates_for(self, input_tokens: int) -> Rates:
        rates = self.rates
        for start, tier_rates in self.tiers:
            if input_tokens <= start:
                break
            rates = tier_rates
        return rates

    def cost(self, usage: Usage) -> Cost:
        rates = self.rates_for(usage.input_tokens)
        audio_in, audio_out = usage.input_audio_tokens, usage.output_audio_tokens
        reasoning, one_hour = usage.reasoning_tokens, usage.cache_write_1h_tokens
        # Usage has no cached-audio count: cache reads and writes are taken to be text, as genai-prices does
        # when cache_audio_read_tokens is 0.
        text_in = usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens - audio_in
        text_out = usage.output_tokens - reasoning - audio_out
        five_minute = usage.cache_write_tokens - one_hour
        if text_in < 0 or text_out < 0 or five_minute < 0:  # inconsistent counts: never bill a negative part
            text_in, text_out, five_minute = max(text_in, 0), max(text_out, 0), max(five_minute, 0)
        input_usd = text_in * rates.input + audio_in * rates.input_audio
        output_usd = text_out * rates.output + reasoning * rates.reasoning + audio_out * rates.output_audio
        cache_read_usd = usage.cache_read_tokens * rates.cache_read
        cache_write_usd = five_minute * rates.cache_write + one_hour * rates.cache_write_1h
        other_usd = usage.web_search_requests * rates.web_search + rates.request
        # Positional, in Cost's field order (amount, input, output, cache_read, cache_write, other, price_model,
        # price_source): a dataclass built from keywords costs twice as much, once per call.
        return Cost(
            input_usd + output_usd + cache_read_usd + cache_write_usd + other_usd,
            input_usd,
            output_usd,
            cache_read_usd,
            cache_write_usd,
            other_usd,
            self.model,
            self.source,
        )


def _rates_at(table: PriceTable, input_tokens: int, multiplier: float) -> Rates:
    price = {name: _tier_price(tiered, input_tokens) * multiplier for name, tiered in table.prices.items()}
    input_price, output_price = price.get("input", 0.0), price.get("output", 0.0)
    cache_write = price.get("cache_write", input_price)
    # Anthropic bills one-hour cache writes at 2x input on every platform; some entries (older Bedrock and
    # Vertex ones) list only the five-minute price. Elsewhere genai-prices bills them as cache writes.
    one_hour = 2 * input_price if table.anthropic_family and "cache_write" in price else cache_write
    return Rates(
        input=input_price,
        output=output_price,
        cache_read=price.get("cache_read", input_price),
        cache_write=cache_write,
        cache_write_1h=price.get("cache_write_1h", one_hour),
        input_audio=price.get("input_audio", input_price),
        output_audio=price.get("output_audio", output_price),
        reasoning=price.get("reasoning", output_price),
        web_search=price.get("web_search", 0.0),
        request=price.get("request", 0.0),
    )


def _tier_price(tiered: Tiered, input_tokens: int) -> float:
    price, tiers = tiered
    for start, tier_price in tiers:
        if input_tokens > start:
            price = tier_price
    return price


class Pricing:
    """Prices calls from genai-prices, with the application's overrides, aliases and discounts.

    ``prices`` is a mapping or a JSON/TOML file in the format of this module's docstring (or what
    :func:`read_prices` made of one); ``aliases`` adds aliases. Invalid configuration raises ValueError here;
    pricing a call never raises.
    """

    def __init__(
        self, prices: PriceConfig | PriceSource | None = None, aliases: Mapping[str, str] | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._cache: dict[_Key, ResolvedPrice | None] = {}
        # What call_cost chose per call key; emptied with _cache, whenever a price or alias changes.
        self._chosen: dict[_CallKey, tuple[ResolvedPrice | None, bool]] = {}
        self._overrides: dict[tuple[str | None, str], PriceTable] = {}
        self._aliases: dict[str, str] = {}
        self._configured: set[str] = set()
        self._discounts: dict[str, float] = {}
        self._warned: set[tuple[str, str]] = set()
        self._unlogged = 0
        self._next_count_log = 1
        if prices is not None:
            self._configure(prices if isinstance(prices, PriceConfig) else read_prices(prices))
        for name, model in (aliases or {}).items():
            self.alias(name, model)

    def is_configured(self, model: str) -> bool:
        """Whether the application priced or aliased ``model`` itself (then its name wins over the response's)."""
        return model in self._configured

    def cost(self, provider: str, model: str, usage: Usage, service_tier: str | None = None) -> Cost | None:
        """The cost of one call, or None when no price is known for the model."""
        price = self.resolve(provider, model, service_tier)
        return None if price is None else price.cost(usage)

    def call_cost(
        self, provider: str, model: str, response_model: str | None, usage: Usage, service_tier: str | None = None
    ) -> Cost | None:
        """The cost of a call to ``model`` that the response says ``response_model`` answered. The model that ran
        is priced (a dated snapshot, Azure's base model) unless the application priced the requested name itself
        (a deployment alias, a negotiated price). A response model with no price (a gateway's own name) falls back
        to the requested model's price, and the cost says so: :attr:`Cost.fallback`, and in its source."""
        key = (provider, model, response_model, service_tier)
        chosen = self._chosen.get(key)
        if chosen is None or (chosen[0] is not None and chosen[0].expires <= time.time()):
            chosen = self._choose(key)
        price, fallback = chosen
        if price is None:
            return None
        cost = price.cost(usage)
        if fallback:
            cost.fallback = True
            cost.price_source += _FALLBACK_NOTE
        return cost

    def _choose(self, key: _CallKey) -> tuple[ResolvedPrice | None, bool]:
        """The price a call's (provider, model, response model, service tier) is priced at, and whether it is the
        fallback, resolved once per key: pricing a call is then one lookup."""
        provider, model, response_model, service_tier = key
        fallback = False
        if not response_model or response_model == model or self.is_configured(model):
            price = self.resolve(provider, model, service_tier)
        else:
            price = self.resolve(provider, response_model, service_tier)
            if price is None:
                price = self.resolve(provider, model, service_tier)
                fallback = price is not None
        if price is None or fallback:
            # A response model with no price is a name a server chose, maybe a new one each call: kept, such
            # choices would hold memory per name (the prices' cache already holds each one's absence).
            return price, fallback
        chosen = self._chosen
        if len(chosen) >= _CACHE_SIZE and key not in chosen:
            chosen.clear()  # response models come from servers: a bound, as for the resolved prices
        chosen[key] = (price, fallback)
        return price, fallback

    def resolve(self, provider: str, model: str, service_tier: str | None = None) -> ResolvedPrice | None:
        """The model's prices (cached), or None when none is known."""
        key = (provider, model, service_tier)
        try:
            price = self._cache[key]
        except KeyError:
            return self._refresh(key)
        if price is not None and price.expires <= time.time():
            return self._refresh(key)
        return price

    def set_price(
        self,
        model: str,
        *,
        input: float,
        output: float,
        cache_read: float | None = None,
        cache_write: float | None = None,
        cache_write_1h: float | None = None,
        per_request: float = 0.0,
        provider: str | None = None,
    ) -> None:
        """Price ``model`` (on ``provider`` only, if given), in USD per million tokens, over genai-prices."""
        key, table = _override(
            model,
            input=input,
            output=output,
            cache_read=cache_read,
            cache_write=cache_write,
            cache_write_1h=cache_write_1h,
            per_request=per_request,
            provider=provider,
        )
        self._set_override(key, table)

    def _set_override(self, key: tuple[str | None, str], table: PriceTable) -> None:
        with self._lock:
            self._overrides[key] = table
            self._configured.add(table.model)
            self._cache = {}
            self._chosen = {}

    def alias(self, name: str, model: str) -> None:
        """Price calls to ``name`` (e.g. an Azure deployment) as ``model``."""
        with self._lock:
            self._aliases[name] = model
            self._configured.add(name)
            self._cache = {}
            self._chosen = {}

    def _refresh(self, key: _Key) -> ResolvedPrice | None:
        with self._lock:
            price = self._resolve_logged(*key)
            cache = self._cache
            if len(cache) >= _CACHE_SIZE and key not in cache:
                # Model names come from servers too: the oldest entry goes, and is resolved again if it returns.
                del cache[next(iter(cache))]
            cache[key] = price
        return price

    def _resolve_logged(self, provider: str, model: str, service_tier: str | None) -> ResolvedPrice | None:
        try:
            table = self._table(provider, model, service_tier)
            return ResolvedPrice.from_table(table, self._multiplier(provider, model, table.model))
        except NoPrice as exc:
            message = "costspan: %s; its calls are reported unpriced, unless they requested a priced model"
            self._warn_once(provider, model, message, exc)
        except Exception:
            self._warn_once(provider, model, "costspan: pricing %r failed", model, exc_info=True)
        return None

    def _table(self, provider: str, model: str, service_tier: str | None) -> PriceTable:
        canonical = canonical_provider(provider)
        name, seen = model, {model}
        while True:
            table = self._overrides.get((canonical, name)) or self._overrides.get((None, name))
            if table is not None:
                return table
            target = self._aliases.get(name)
            if target is None or target in seen:
                return lookup(provider, name, service_tier)
            name = target
            seen.add(name)

    def _multiplier(self, provider: str, model: str, price_model: str) -> float:
        for name in (model, price_model, canonical_provider(provider)):
            if name in self._discounts:
                return self._discounts[name]
        return 1.0

    def _warn_once(self, provider: str, model: str, message: str, *args: object, exc_info: bool = False) -> None:
        """One line per model without a price, for the first :data:`UNPRICED_LOG_LIMIT` of them; then a line
        with the count of lookups that found none, at each power of ten."""
        if (provider, model) in self._warned:
            return
        if len(self._warned) < UNPRICED_LOG_LIMIT:
            self._warned.add((provider, model))
            _logger.warning(message, *args, exc_info=exc_info)
            return
        self._unlogged += 1
        if self._unlogged >= self._next_count_log:
            self._next_count_log *= 10
            _logger.warning(
                "costspan: %d more lookups found no price for a model (past the first %d models, not named one by "
                "one); their calls are reported unpriced",
                self._unlogged,
                UNPRICED_LOG_LIMIT,
            )

    def _configure(self, config: PriceConfig) -> None:
        for name, model in config.aliases.items():
            self.alias(name, model)
        for key, table in config.overrides.items():
            self._set_override(key, table)
        self._discounts.update(config.discounts)


@dataclass(frozen=True, slots=True)
class PriceConfig:
    """A checked price configuration, as :func:`read_prices` makes it from a mapping or a file."""

    aliases: Mapping[str, str]
    overrides: Mapping[tuple[str | None, str], PriceTable]
    """(canonical provider or None for any, model) -> its prices."""
    discounts: Mapping[str, float]
    """A canonical provider or a model name -> the multiplier on every part of its cost."""


def read_prices(prices: PriceSource) -> PriceConfig:
    """Read and check a price configuration in the format of this module's docstring.

    Raises ValueError naming what is wrong: the file (which cannot be read, or does not parse, with the line the
    parser gives), the section, the model and the field; TypeError when ``prices`` is neither a path nor a mapping.
    """
    if isinstance(prices, Mapping):
        return _checked_config(prices)
    if not isinstance(prices, (str, os.PathLike)):
        raise TypeError(
            f"got {_brief.repr(prices)}, expected the path of a JSON or TOML price file, or a mapping with the "
            f"sections {', '.join(_SECTIONS)}"
        )
    path = Path(prices).absolute()
    try:
        return _checked_config(_parse(path))
    except ValueError as exc:
        raise ValueError(f"price file {str(path)!r}: {exc}") from None


def _parse(path: Path) -> object:
    data = _read_capped(path)
    is_json = path.suffix.lower() == ".json"
    load = json.loads if is_json else _toml_loads()
    try:
        return load(data.decode("utf-8"))
    except ValueError as exc:  # JSONDecodeError and TOMLDecodeError say the line, UnicodeDecodeError the byte
        raise ValueError(f"not valid {'JSON' if is_json else 'TOML'}: {exc}") from None
    except RecursionError:  # both parsers recurse per level of nesting; no price file needs more than three
        raise ValueError("nested too deeply (a price file needs three levels: section, model, field)") from None


def _read_capped(path: Path) -> bytes:
    """The file's bytes, if it is a regular file of at most :data:`MAX_PRICE_FILE_BYTES`. Opened without blocking
    and checked on the open file, so that a FIFO or a device (which could block startup forever, or never end)
    is refused, whatever replaced the path meanwhile."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ValueError(f"cannot be read: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        with os.fdopen(fd, "rb", buffering=0, closefd=False) as file:
            data = file.read(MAX_PRICE_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_PRICE_FILE_BYTES:
        raise ValueError(f"larger than {MAX_PRICE_FILE_BYTES // 1024 // 1024} MiB: not a price file")
    return data


def _toml_loads() -> Callable[[str], object]:
    import tomllib

    return tomllib.loads


def _checked_config(config: object) -> PriceConfig:
    if not isinstance(config, Mapping):
        raise ValueError(f"expected a table with the sections {', '.join(_SECTIONS)}, got {_brief.repr(config)}")
    _check_known(config, _SECTIONS, "section")
    aliases = {name: _alias_target(name, model) for name, model in _section(config, "aliases").items()}
    overrides = dict(_override(name, **_model_entry(name, entry)) for name, entry in _section(config, "models").items())
    discounts = {
        canonical_provider(name): _number(
            multiplier, f"discount {name!r} = {_brief.repr(multiplier)}", "a multiplier such as 0.9"
        )
        for name, multiplier in _section(config, "discounts").items()
    }
    return PriceConfig(aliases, overrides, discounts)


def _check_known(names: Iterable[object], known: Sequence[str], kind: str, where: str = "") -> None:
    unknown = [name for name in names if name not in known]
    if unknown:
        hint = did_you_mean(str(unknown[0]), known)
        raise ValueError(f"{where}unknown {kind} {unknown[0]!r}{hint}; the {kind}s are {', '.join(known)}")


def _section(config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = config.get(name, {})
    if not isinstance(section, Mapping):
        raise ValueError(f"section {name!r} must be a table, got {_brief.repr(section)}")
    return section


def _alias_target(name: str, model: object) -> str:
    if not isinstance(model, str) or not model:
        raise ValueError(f"alias {name!r} = {_brief.repr(model)}: expected the name of the model it is priced as")
    return model


def _model_entry(name: str, entry: object) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise ValueError(f"model {name!r}: expected a table with input and output prices, got {_brief.repr(entry)}")
    _check_known(entry, _MODEL_KEYS, "field", f"model {name!r}: ")
    if missing := [key for key in ("input", "output") if key not in entry]:
        raise ValueError(f"model {name!r}: missing {' and '.join(missing)}: input and output prices are required")
    return dict(entry)


def _override(
    model: str,
    *,
    input: object,
    output: object,
    cache_read: object = None,
    cache_write: object = None,
    cache_write_1h: object = None,
    per_request: object = 0.0,
    provider: object = None,
) -> tuple[tuple[str | None, str], PriceTable]:
    """The key and price table of one checked override; ValueError names the model and the field."""
    per_million = {
        "input": input,
        "output": output,
        "cache_read": cache_read,
        "cache_write": cache_write,
        "cache_write_1h": cache_write_1h,
    }
    prices: dict[str, Tiered] = {
        name: (_price(model, name, value, "USD per million tokens") / _PER_MILLION, ())
        for name, value in per_million.items()
        if value is not None
    }
    prices["request"] = (_price(model, "per_request", per_request, "USD per call"), ())
    table = PriceTable(model, "override", prices, anthropic_family="claude" in model.lower())
    return (None if provider is None else _provider(model, provider), model), table


def _price(model: str, field: str, value: object, unit: str) -> float:
    price = _number(value, f"model {model!r}: {field} = {_brief.repr(value)}", f"a number of {unit}")
    if price > _MAX_PRICE:
        raise ValueError(
            f"model {model!r}: {field} = {_brief.repr(value)}: expected at most {_MAX_PRICE:g} {unit}, so that a "
            "realistic call (up to 10 million tokens) has a finite cost a budget can count"
        )
    return price


def _provider(model: str, provider: object) -> str:
    known = provider_names()
    if not isinstance(provider, str) or provider not in known:
        hint = did_you_mean(provider, known) if isinstance(provider, str) else ""
        raise ValueError(
            f"model {model!r}: unknown provider {_brief.repr(provider)}{hint}: expected a gen_ai.provider.name such as "
            f"{_CALL_PROVIDERS}, or a genai-prices provider id"
        )
    return canonical_provider(provider)


# The most a custom price may be, per million tokens or per call: a call of 10 million tokens then costs at most
# $1e13, finite and far inside what a float holds exactly enough to count.
_MAX_PRICE = 1e6


def _number(value: object, what: str, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{what}: expected {expected}, finite and not negative")
    return float(value)


_default_pricing = Pricing()


def default_pricing() -> Pricing:
    """The Pricing behind :func:`cost_of`: genai-prices with no overrides unless added to it."""
    return _default_pricing


def cost_of(provider: str, model: str, usage: Usage, *, service_tier: str | None = None) -> Cost | None:
    """The cost of one call with the default pricing, or None when no price is known for the model."""
    return _default_pricing.cost(provider, model, usage, service_tier)
