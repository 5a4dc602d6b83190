"""Opt-in capture of message content, as the GenAI semantic conventions define it: the request's messages, system
instructions and the model's output, as JSON on the call's span (``gen_ai.input.messages``,
``gen_ai.system_instructions``, ``gen_ai.output.messages``), in the conventions' parts format
(``{"role": ..., "parts": [{"type": "text", "content": ...}], "finish_reason": ...}``).

Off unless ``instrument(capture_content=True)`` or ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` asks for
it. When off, a call carries no :class:`Content` and nothing is read or kept. Content goes on the span only: never
on metrics, never in the ledger (which keeps no ``gen_ai.*`` attribute beyond its columns).

Bounded: each text is cut to :data:`MAX_TEXT_CHARS` characters (ending in ``…[N more characters]``), a stream
keeps at most that much output text, and each attribute holds at most :data:`MAX_ATTRIBUTE_CHARS` characters of
JSON: past it, the earliest messages are left out, then the last one's parts are cut to fit.

Provider adapters turn their SDK's shapes into messages with :func:`message`, :func:`text_part` and
:func:`tool_call_part`; this module knows no provider.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai

__all__ = [
    "CAPTURE_VARIABLE",
    "MAX_ATTRIBUTE_CHARS",
    "MAX_TEXT_CHARS",
    "Content",
    "capture_enabled",
    "field",
    "items",
    "message",
    "part_of_type",
    "text_part",
    "tool_call_part",
    "tool_response_part",
]

CAPTURE_VARIABLE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
MAX_TEXT_CHARS = 4096
MAX_ATTRIBUTE_CHARS = 16384

# The variable's values that put content on spans: the older true/false and opentelemetry-util-genai's modes.
_ON = frozenset({"true", "1", "yes", "on", "span_only", "span_and_event"})
_OFF = frozenset({"", "false", "0", "no", "off", "no_content", "event_only"})
_log = logging.getLogger("costspan")

Message = dict[str, Any]


def capture_enabled(option: bool | None, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether to capture content: the option when given, else the variable; an unknown value is logged, off."""
    if option is not None:
        return option
    value = environ.get(CAPTURE_VARIABLE, "").strip().lower()
    if value in _ON:
        return True
    if value not in _OFF:
        _log.warning(
            "costspan: %s=%r is not one of true, false, SPAN_ONLY, SPAN_AND_EVENT, EVENT_ONLY, NO_CONTENT: "
            "message content is not captured",
            CAPTURE_VARIABLE,
            environ[CAPTURE_VARIABLE],
        )
    return False


def _cut(text: str) -> str:
    if len(text) <= MAX_TEXT_CHARS:
        return text
    return f"{text[:MAX_TEXT_CHARS]}…[{len(text) - MAX_TEXT_CHARS} more characters]"


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "content": _cut(text)}


def _jsonable(value: Any) -> Any:
    """A tool's arguments or result as JSON data, bounded: text is cut, anything else is its cut JSON text."""
    if isinstance(value, str):
        return _cut(value)
    return _cut(json.dumps(value, default=str))


def tool_call_part(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": _jsonable(arguments)}


def tool_response_part(call_id: Any, response: Any) -> dict[str, Any]:
    return {"type": "tool_call_response", "id": call_id, "response": _jsonable(response)}


def part_of_type(kind: Any) -> dict[str, Any]:
    """A part costspan does not capture the data of (an image, a file, audio): its type only."""
    return {"type": kind if isinstance(kind, str) else "unknown"}


def field(item: Any, name: str) -> Any:
    """A field of a request item, which the user may give as a mapping or as the SDK's object."""
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


def items(value: Any) -> list[Any]:
    """The items of a list or tuple the user gave (never an iterator, which is the SDK's to consume)."""
    return list(value) if isinstance(value, (list, tuple)) else []


def message(role: Any, parts: list[dict[str, Any]], finish_reason: str | None = None) -> Message:
    out: Message = {"role": role if isinstance(role, str) else "unknown", "parts": parts}
    if finish_reason is not None:
        out["finish_reason"] = finish_reason
    return out


class Content:
    """One call's captured content; the provider adapter fills it, the span takes it once the call ends."""

    __slots__ = ("input", "output", "streamed", "streamed_chars", "system")

    def __init__(self, input: list[Message], system: list[dict[str, Any]] | None = None) -> None:
        self.input = input
        self.system = system
        self.output: list[Message] | None = None
        # A stream's output text so far (references to the SDK's strings), up to MAX_TEXT_CHARS.
        self.streamed: list[str] = []
        self.streamed_chars = 0

    def stream_text(self, text: Any) -> None:
        if isinstance(text, str) and self.streamed_chars <= MAX_TEXT_CHARS:
            self.streamed.append(text)
            self.streamed_chars += len(text)

    def attributes(self, finish_reasons: list[str] | None) -> dict[str, str]:
        """The span attributes: each a JSON string of at most MAX_ATTRIBUTE_CHARS characters."""
        output = self.output
        if output is None and self.streamed:
            reason = finish_reasons[0] if finish_reasons else None
            output = [message("assistant", [text_part("".join(self.streamed))], reason)]
        out = {gen_ai.GEN_AI_INPUT_MESSAGES: _bounded(self.input)}
        if self.system:
            out[gen_ai.GEN_AI_SYSTEM_INSTRUCTIONS] = _bounded(self.system)
        if output:
            out[gen_ai.GEN_AI_OUTPUT_MESSAGES] = _bounded(output)
        return out


def _bounded(items: list[Any]) -> str:
    """``items`` as JSON of at most MAX_ATTRIBUTE_CHARS characters: the earliest left out first, then the last
    one's parts cut to fit."""
    text = json.dumps(items, ensure_ascii=False, default=str)
    start = 0
    while len(text) > MAX_ATTRIBUTE_CHARS and start < len(items) - 1:
        start += 1
        text = json.dumps(items[start:], ensure_ascii=False, default=str)
    if len(text) <= MAX_ATTRIBUTE_CHARS:
        return text
    last = items[-1]
    kept = dict(last, parts=[]) if isinstance(last, dict) and "parts" in last else {}
    # JSON-encoding the cut text again at most doubles it (each quote and backslash is escaped).
    room = (MAX_ATTRIBUTE_CHARS - len(json.dumps([kept], ensure_ascii=False)) - 64) // 2
    summary = text[: max(room, 0)]
    if "parts" in kept:
        kept["parts"] = [{"type": "text", "content": f"{summary}…[cut to fit]"}]
        return json.dumps([kept], ensure_ascii=False)
    return json.dumps([{"type": "text", "content": f"{summary}…[cut to fit]"}], ensure_ascii=False)
