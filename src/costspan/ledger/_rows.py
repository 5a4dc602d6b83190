"""A finished span's ledger row: what the span says, in :data:`costspan.ledger._schema.COLUMNS` order.

Runs on the ledger's writer thread, never on the request thread. costspan's spans carry their cost. Spans of other
instrumentations are read in every spelling they use, and priced here when they carry no cost:

- provider: ``gen_ai.provider.name``, or the older ``gen_ai.system`` (OpenLLMetry once wrote ``OpenAI``);
- input: ``gen_ai.usage.input_tokens``, older ``gen_ai.usage.prompt_tokens``, OpenInference ``llm.usage.*``;
- output: ``gen_ai.usage.output_tokens``, ``gen_ai.usage.completion_tokens``, ``llm.usage.*``;
- cache reads: ``gen_ai.usage.cache_read.input_tokens`` and the older ``gen_ai.usage.cache_read_input_tokens``;
- cache writes: ``gen_ai.usage.cache_write.input_tokens`` (costspan, the anthropic SDK), the semantic conventions'
  ``gen_ai.usage.cache_creation.input_tokens`` and the older ``gen_ai.usage.cache_creation_input_tokens``;
- reasoning: ``gen_ai.usage.reasoning.output_tokens``, OpenLLMetry's ``gen_ai.usage.reasoning_tokens``.

Input tokens include cache reads and writes, as the semantic conventions say; a span whose input is smaller than
its cache counts reported them apart (Anthropic's own fields), and they are added.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv._incubating.attributes.aws_attributes import AWS_REQUEST_ID
from opentelemetry.semconv.attributes import error_attributes, server_attributes

from .. import attributes as attrs
from ..pricing import Cost, Pricing
from ..usage import Usage

__all__ = ["Row", "is_costspan", "is_foreign_call", "row_of"]

Row = tuple[Any, ...]

_NS = 1_000_000_000
_COSTSPAN_SCOPE = "costspan"

_PROVIDER = (gen_ai.GEN_AI_PROVIDER_NAME, gen_ai.GEN_AI_SYSTEM)
_INPUT = (
    gen_ai.GEN_AI_USAGE_INPUT_TOKENS,
    gen_ai.GEN_AI_USAGE_PROMPT_TOKENS,
    "llm.usage.input_tokens",
    "llm.usage.prompt_tokens",
)
_OUTPUT = (
    gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS,
    gen_ai.GEN_AI_USAGE_COMPLETION_TOKENS,
    "llm.usage.output_tokens",
    "llm.usage.completion_tokens",
)
_CACHE_READ = (
    gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    "gen_ai.usage.cache_read_input_tokens",
    "llm.usage.cache_read_input_tokens",
)
_CACHE_WRITE = (
    attrs.USAGE_CACHE_WRITE_INPUT_TOKENS,
    gen_ai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    "gen_ai.usage.cache_creation_input_tokens",
    "llm.usage.cache_creation_input_tokens",
)
_REASONING = (
    gen_ai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    "gen_ai.usage.reasoning_tokens",
    "llm.usage.reasoning_tokens",
)
_SERVICE_TIER = ("openai.response.service_tier", "openai.request.service_tier")
# Names other instrumentations give providers, as gen_ai.provider.name spells them.
_PROVIDER_NAMES = {"az.ai.openai": "azure.ai.openai", "azure": "azure.ai.openai", "bedrock": "aws.bedrock"}
# Operations that are no provider call of their own (their inference calls are spans of their own).
_NOT_CALLS = frozenset({"invoke_agent", "create_agent", "execute_tool", "invoke_workflow"})

# Attributes that are no attribution: the call's own (they have columns, or none of interest), and content.
_NOT_ATTRIBUTION = (
    "gen_ai.",
    "costspan.",
    "server.",
    "error.",
    "openai.",
    "anthropic.",
    "http.",
    "url.",
    "llm.",
    "traceloop.",
    "input.",
    "output.",
    "network.",
    "exception.",
)
_SCALARS = (str, int, float, bool)


def is_costspan(scope_name: str) -> bool:
    return scope_name == _COSTSPAN_SCOPE or scope_name.startswith("costspan.")


def is_foreign_call(attributes: Mapping[str, Any]) -> bool:
    """Whether another instrumentation's CLIENT span is a GenAI provider call (cheap: a few dict lookups)."""
    if gen_ai.GEN_AI_REQUEST_MODEL not in attributes and gen_ai.GEN_AI_RESPONSE_MODEL not in attributes:
        return False
    if gen_ai.GEN_AI_PROVIDER_NAME not in attributes and gen_ai.GEN_AI_SYSTEM not in attributes:
        return False
    return attributes.get(gen_ai.GEN_AI_OPERATION_NAME) not in _NOT_CALLS


def iso_time(unix_ns: int) -> str:
    """UTC ISO 8601 with microseconds and ``Z``: sorts as text and SQLite's date functions read it."""
    seconds, rest = divmod(unix_ns, _NS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest // 1000:06d}Z"


def row_of(span: ReadableSpan, pricing: Pricing) -> Row:
    attributes: Mapping[str, Any] = span.attributes or {}
    context = span.context
    assert context is not None
    scope = span.instrumentation_scope.name if span.instrumentation_scope is not None else None
    start, end = span.start_time or 0, span.end_time or 0
    get = attributes.get
    provider = _provider(attributes)
    request_model, response_model = _text(get(gen_ai.GEN_AI_REQUEST_MODEL)), _text(get(gen_ai.GEN_AI_RESPONSE_MODEL))
    usage = _usage(attributes)
    cost, cost_source, unpriced = _cost(attributes, usage, provider, request_model, response_model, pricing)
    return (
        iso_time(start),
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
        _text(get(gen_ai.GEN_AI_RESPONSE_ID, get(AWS_REQUEST_ID))),
        provider,
        _text(get(gen_ai.GEN_AI_OPERATION_NAME)),
        request_model,
        response_model,
        *_usage_columns(usage),
        *_cost_columns(cost),
        int(unpriced),
        int(bool(get(attrs.USAGE_ESTIMATED))),
        _flag(get(attrs.STREAM_COMPLETED)),
        _text(get(attrs.USER_ID)),
        _text(get(server_attributes.SERVER_ADDRESS)),
        _count(get(server_attributes.SERVER_PORT)),
        (end - start) / _NS if end else None,
        _number(get(gen_ai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)),
        _text(get(error_attributes.ERROR_TYPE)),
        scope,
        cost_source,
        _attribution(attributes),
        _text(get(attrs.REQUEST_NAME)),
    )


def _provider(attributes: Mapping[str, Any]) -> str | None:
    name = _first_text(attributes, _PROVIDER)
    if name is None:
        return None
    name = name.lower()
    return _PROVIDER_NAMES.get(name, name)


def _usage(attributes: Mapping[str, Any]) -> Usage | None:
    """The call's token counts, or None when the span reports none (a failed call, an unbilled one)."""
    input_tokens, output_tokens = _first_count(attributes, _INPUT), _first_count(attributes, _OUTPUT)
    if input_tokens is None and output_tokens is None:
        return None
    cache_read = _first_count(attributes, _CACHE_READ) or 0
    cache_write = _first_count(attributes, _CACHE_WRITE) or 0
    input_tokens = input_tokens or 0
    if input_tokens < cache_read + cache_write:
        input_tokens += cache_read + cache_write
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens or 0,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=_first_count(attributes, _REASONING) or 0,
        estimated=attributes.get(attrs.USAGE_ESTIMATED) is True,
    )


def _cost(
    attributes: Mapping[str, Any],
    usage: Usage | None,
    provider: str | None,
    request_model: str | None,
    response_model: str | None,
    pricing: Pricing,
) -> tuple[Cost | None, str | None, bool]:
    """(cost, where it came from, unpriced): the span's own cost if it has one, else the ledger's pricing."""
    if attributes.get(attrs.COST_UNPRICED) is True:
        return None, None, True
    amount = _number(attributes.get(attrs.COST_AMOUNT))
    if amount is not None:
        return _carried_cost(attributes, amount), _text(attributes.get(attrs.COST_SOURCE)) or "span", False
    if usage is None or provider is None or not (request_model or response_model):
        return None, None, False
    model = request_model or response_model
    assert model is not None
    cost = pricing.call_cost(provider, model, response_model, usage, _first_text(attributes, _SERVICE_TIER))
    return cost, "ledger" if cost is not None else None, cost is None


def _carried_cost(attributes: Mapping[str, Any], amount: float) -> Cost:
    get = attributes.get
    return Cost(
        amount=amount,
        input=_number(get(attrs.COST_INPUT)) or 0.0,
        output=_number(get(attrs.COST_OUTPUT)) or 0.0,
        cache_read=_number(get(attrs.COST_CACHE_READ)) or 0.0,
        cache_write=_number(get(attrs.COST_CACHE_WRITE)) or 0.0,
        other=_number(get(attrs.COST_OTHER)) or 0.0,
        price_model=_text(get(attrs.PRICE_MODEL)) or "",
        price_source=_text(get(attrs.PRICE_SOURCE)) or "",
    )


def _usage_columns(usage: Usage | None) -> tuple[int | None, ...]:
    if usage is None:
        return (None,) * 5
    return (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        usage.reasoning_tokens,
    )


def _cost_columns(cost: Cost | None) -> tuple[Any, ...]:
    if cost is None:
        return (None,) * 8
    return (
        cost.amount,
        cost.input,
        cost.output,
        cost.cache_read,
        cost.cache_write,
        cost.other,
        cost.price_model or None,
        cost.price_source or None,
    )


def _attribution(attributes: Mapping[str, Any]) -> str | None:
    """Attribution attributes as a JSON object (None when there is none); never content or the call's own."""
    found = {
        key: list(value) if isinstance(value, Sequence) and not isinstance(value, str) else value
        for key, value in attributes.items()
        if key != attrs.USER_ID and not key.startswith(_NOT_ATTRIBUTION) and _is_plain(value)
    }
    return json.dumps(found, sort_keys=True) if found else None


def _is_plain(value: object) -> bool:
    if isinstance(value, _SCALARS):
        return True
    return isinstance(value, Sequence) and all(isinstance(item, _SCALARS) for item in value)


def _first_text(attributes: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _first_count(attributes: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = _count(attributes.get(key))
        if value is not None:
            return value
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _flag(value: object) -> int | None:
    return int(value) if isinstance(value, bool) else None
