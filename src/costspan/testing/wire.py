"""Provider-neutral pieces shared by the wire formats: the recorded request, planned responses, routes."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from .reply import Reply

__all__ = [
    "DONE",
    "Event",
    "Frame",
    "Handler",
    "JsonResponse",
    "RecordedRequest",
    "Response",
    "Route",
    "StreamResponse",
    "new_id",
    "scripted_frames",
    "sse",
    "sse_named",
    "until_error",
    "with_headers",
]

_T = TypeVar("_T")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it; `path` is the raw (still percent-encoded) path."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class JsonResponse:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass(frozen=True)
class Frame:
    """One event of a streamed body; content deltas are marked so faults can be placed between them."""

    data: bytes
    is_delta: bool = False


@dataclass(frozen=True)
class StreamResponse:
    content_type: str
    frames: list[Frame]
    headers: dict[str, str]


Response: TypeAlias = JsonResponse | StreamResponse
# One event of a stream, as the JSON value it sends, and whether it is a content delta.
Event: TypeAlias = tuple[Any, bool]
# OpenAI's closing `data: [DONE]` among a chat or completion stream's events.
DONE = "[DONE]"
Handler: TypeAlias = Callable[[RecordedRequest, Reply, re.Match[str]], Response]


@dataclass(frozen=True)
class Route:
    """A POST endpoint: `fail` answers in the endpoint's error format when the reply's status is not 200."""

    pattern: re.Pattern[str]
    handle: Handler
    fail: Callable[[Reply], JsonResponse]


def sse(data: Any, event: str | None = None) -> bytes:
    prefix = f"event: {event}\n" if event is not None else ""
    return f"{prefix}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def sse_named(data: Any) -> bytes:
    """An SSE event named by its JSON type (Anthropic's and the Responses API's events), or unnamed; DONE as is."""
    if data == DONE:
        return b"data: [DONE]\n\n"
    name = data.get("type") if isinstance(data, dict) else None
    return sse(data, name if isinstance(name, str) else None)


def scripted_frames(reply: Reply, events: list[Event], encode: Callable[[Any], bytes]) -> list[Frame]:
    """A stream's frames: its events, rewritten by the reply's `events` script if it has one, each encoded. An
    event the script keeps (or repeats) stays a content delta if it was one; an event it adds is none."""
    if reply.events is not None:
        deltas = {id(event) for event, is_delta in events if is_delta}
        events = [(event, id(event) in deltas) for event in reply.events([event for event, _ in events])]
    return [Frame(encode(event), is_delta) for event, is_delta in events]


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


def with_headers(reply: Reply, defaults: dict[str, str]) -> dict[str, str]:
    """The default headers, each replaced by the reply's header of the same (case-insensitive) name, or left out
    when that header's value is None (a gateway that strips it)."""
    scripted = {name.lower() for name in reply.headers}
    kept = {k: v for k, v in defaults.items() if k.lower() not in scripted}
    return kept | {k: v for k, v in reply.headers.items() if v is not None}


def until_error(reply: Reply, deltas: list[_T]) -> tuple[list[_T], bool]:
    """The deltas sent before the in-stream error, and whether the error replaces the stream's ending."""
    if reply.error_after is None:
        return deltas, False
    return deltas[: reply.error_after], True
