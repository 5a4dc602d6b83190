"""Request-reading helpers shared by the Stainless-generated SDKs (openai, anthropic)."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import server_attributes

__all__ = ["RAW_RESPONSE_HEADER", "int_or_zero", "is_raw", "request_attributes", "server_of"]

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


def request_attributes(
    operation: str, provider: str, model: str, client: Any, kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    host, port = server_of(client)
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


def int_or_zero(value: Any) -> int:
    return value if isinstance(value, int) else 0
