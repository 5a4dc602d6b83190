"""Request- and usage-reading helpers shared by the provider adapters.

The SDKs parse a response without validating it: a usage field keeps whatever the server sent (null, a string,
-5, 10.5, 10**30, an object where a number belongs). Usage is therefore read field by field through
:func:`count_of` and :func:`detail_count`, which take only token counts and mark the call estimated otherwise.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import server_attributes

from .._call import Call
from ..usage import MAX_TOKENS, token_count

__all__ = [
    "RAW_RESPONSE_HEADER",
    "count_of",
    "detail_count",
    "is_raw",
    "is_record",
    "list_of",
    "malformed",
    "request_attributes",
    "server_of",
    "server_of_url",
    "text_of",
]

RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"

# (request keyword, span attribute) for the numeric sampling parameters both SDKs share.
_NUMERIC_PARAMS = (
    ("temperature", gen_ai.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", gen_ai.GEN_AI_REQUEST_TOP_P),
    ("top_k", gen_ai.GEN_AI_REQUEST_TOP_K),
    ("frequency_penalty", gen_ai.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", gen_ai.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("seed", gen_ai.GEN_AI_REQUEST_SEED),
)

# Tuples, not unions: ``int | float`` builds a new union object at every isinstance call.
_NUMBERS = (int, float)
_SEQUENCES = (list, tuple)

_servers: weakref.WeakKeyDictionary[Any, tuple[str, int | None]] = weakref.WeakKeyDictionary()


def server_of(client: Any) -> tuple[str, int | None]:
    """The client's host and port, read once per client (its base URL does not change)."""
    try:
        return _servers[client]
    except KeyError:
        url = client.base_url
        server = (str(url.host), url.port or (443 if url.scheme == "https" else 80))
        _servers[client] = server
        return server


@functools.lru_cache(maxsize=64)
def server_of_url(url: str) -> tuple[str, int | None]:
    """The host and port of an endpoint URL given as a string (google-genai's base URL, botocore's endpoint)."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def request_attributes(
    operation: str, provider: str, model: str, server: tuple[str, int | None], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    host, port = server
    out: dict[str, Any] = {
        gen_ai.GEN_AI_OPERATION_NAME: operation,
        gen_ai.GEN_AI_PROVIDER_NAME: provider,
        gen_ai.GEN_AI_REQUEST_MODEL: model,
        server_attributes.SERVER_ADDRESS: host,
    }
    if port is not None:
        out[server_attributes.SERVER_PORT] = port
    for key, attribute in _NUMERIC_PARAMS:
        value = kwargs.get(key)
        if isinstance(value, _NUMBERS) and not isinstance(value, bool):
            out[attribute] = value
    stop = kwargs.get("stop", kwargs.get("stop_sequences"))
    if isinstance(stop, str):
        out[gen_ai.GEN_AI_REQUEST_STOP_SEQUENCES] = [stop]
    elif isinstance(stop, _SEQUENCES) and all(isinstance(item, str) for item in stop):
        out[gen_ai.GEN_AI_REQUEST_STOP_SEQUENCES] = list(stop)
    return out


def is_raw(kwargs: Mapping[str, Any]) -> bool:
    headers = kwargs.get("extra_headers")
    return isinstance(headers, Mapping) and RAW_RESPONSE_HEADER in headers


# What a JSON document can hold besides an object: a usage object or a details object that parsed as one of these
# (the SDKs keep a value of the wrong shape as it came) is not one. bool is an int.
_NOT_RECORDS = (str, int, float, list, dict)


def text_of(value: Any) -> str | None:
    """A name a response gives (its id, model, service tier, a finish reason), or None when a server sent anything
    but a non-empty string there: a gateway's null, number or object is no model to price or label a metric by."""
    return value if isinstance(value, str) and value else None


def list_of(value: Any) -> list[Any]:
    """A list a response gives (choices, content blocks), or none when a server sent anything else there."""
    return value if isinstance(value, list) else []


def count_of(call: Call, field: str, value: Any, required: bool = False) -> int | None:
    """The count a usage field reports, or None when it reports none. A null (or absent, which the SDKs read as
    null) field reports none, and that is a fault only when the field is ``required``; any other value that is
    not a token count is a fault (see :func:`malformed`)."""
    if type(value) is int and 0 <= value <= MAX_TOKENS:  # the well-formed field: one check, no call
        return value
    if value is None:
        if required:
            malformed(call, field, value)
        return None
    count = token_count(value)
    if count is None:
        malformed(call, field, value)
    return count


def detail_count(call: Call, field: str, value: Any) -> int:
    """An optional part of a total (cached, cache write, reasoning, audio tokens, web searches): 0 when not
    reported; an unusable value counts 0 and is a fault, so the call's usage is marked estimated."""
    if type(value) is int and 0 <= value <= MAX_TOKENS:  # as in count_of
        return value
    count = count_of(call, field, value)
    return 0 if count is None else count


def is_record(call: Call, field: str, value: Any) -> bool:
    """Whether a usage or details object is one; null is none, anything else that is not an object is a fault."""
    if value is None:
        return False
    if isinstance(value, _NOT_RECORDS):
        malformed(call, field, value, "an object")
        return False
    return True


def malformed(call: Call, field: str, value: Any, expected: str = f"a token count from 0 to {MAX_TOKENS:,}") -> None:
    """A usage field the provider sent is unusable: the call's usage is estimated. Logged once per provider, model
    and field (the pipeline's once-per-step log), naming the kind of value and never the value itself, which a
    misbehaving server could have filled with anything."""
    call.malformed = True
    call.log_failure(
        f"reading usage field {field!r} of {call.provider} model {call.model!r}",
        ValueError(f"{field} is {_described(value)}, not {expected}: the call's usage is estimated"),
    )


def _described(value: Any) -> str:
    if value is None:
        return "missing or null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return "not finite"
        if value < 0:
            return "negative"
        return "too large" if value > MAX_TOKENS else "a fraction"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, dict)):
        return "a JSON array" if isinstance(value, list) else "a JSON object"
    return f"a {type(value).__name__}"
