"""A finished span's ledger row: what the span says, in :data:`costspan.ledger._schema.COLUMNS` order.

Runs on the ledger's writer thread, never on the request thread.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes, server_attributes

from .. import attributes as attrs

__all__ = ["Row", "row_of"]

Row = tuple[Any, ...]

_NS = 1_000_000_000


def iso_time(unix_ns: int) -> str:
    """UTC ISO 8601 with microseconds and ``Z``: sorts as text and SQLite's date functions read it."""
    seconds, rest = divmod(unix_ns, _NS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest // 1000:06d}Z"


def row_of(span: ReadableSpan) -> Row:
    attributes: Mapping[str, Any] = span.attributes or {}
    context = span.context
    assert context is not None
    start, end = span.start_time or 0, span.end_time or 0
    get = attributes.get
    unpriced = bool(get(attrs.COST_UNPRICED))
    usage = _usage(attributes)
    return (
        iso_time(start),
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
        _text(get(gen_ai.GEN_AI_RESPONSE_ID)),
        _text(get(gen_ai.GEN_AI_PROVIDER_NAME)),
        _text(get(gen_ai.GEN_AI_OPERATION_NAME)),
        _text(get(gen_ai.GEN_AI_REQUEST_MODEL)),
        _text(get(gen_ai.GEN_AI_RESPONSE_MODEL)),
        *usage,
        _usd(get(attrs.COST_AMOUNT)),
        _usd(get(attrs.COST_INPUT)),
        _usd(get(attrs.COST_OUTPUT)),
        _usd(get(attrs.COST_CACHE_READ)),
        _usd(get(attrs.COST_CACHE_WRITE)),
        _usd(get(attrs.COST_OTHER)),
        _text(get(attrs.PRICE_MODEL)),
        _text(get(attrs.PRICE_SOURCE)),
        int(unpriced),
        int(bool(get(attrs.USAGE_ESTIMATED))),
        _flag(get(attrs.STREAM_COMPLETED)),
        _text(get(attrs.USER_ID)),
        _text(get(server_attributes.SERVER_ADDRESS)),
        _count(get(server_attributes.SERVER_PORT)),
        (end - start) / _NS if end else None,
        _seconds(get(gen_ai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)),
        _text(get(error_attributes.ERROR_TYPE)),
    )


_USAGE_KEYS = (
    gen_ai.GEN_AI_USAGE_INPUT_TOKENS,
    gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS,
    gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    attrs.USAGE_CACHE_WRITE_INPUT_TOKENS,
    gen_ai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
)
_NO_USAGE = (None,) * len(_USAGE_KEYS)


def _usage(attributes: Mapping[str, Any]) -> tuple[int | None, ...]:
    """The five token counts; a call with usage has them all (spans leave out the zero ones), one without none."""
    counts = tuple(_count(attributes.get(key)) for key in _USAGE_KEYS)
    if counts[0] is None and counts[1] is None:
        return _NO_USAGE
    return tuple(count or 0 for count in counts)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _usd(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


_seconds = _usd


def _flag(value: object) -> int | None:
    return int(value) if isinstance(value, bool) else None
