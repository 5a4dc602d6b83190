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
    "Frame",
    "Handler",
    "JsonResponse",
    "RecordedRequest",
    "Response",
    "Route",
    "StreamResponse",
    "new_id",
    "sse",
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


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


def with_headers(reply: Reply, defaults: dict[str, str]) -> dict[str, str]:
    """The default headers, each replaced by the reply's header of the same (case-insensitive) name."""
    scripted = {name.lower() for name in reply.headers}
    return {**{k: v for k, v in defaults.items() if k.lower() not in scripted}, **reply.headers}


def until_error(reply: Reply, deltas: list[_T]) -> tuple[list[_T], bool]:
    """The deltas sent before the in-stream error, and whether the error replaces the stream's ending."""
    if reply.error_after is None:
        return deltas, False
    return deltas[: reply.error_after], True
