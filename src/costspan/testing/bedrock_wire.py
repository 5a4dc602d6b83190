"""Amazon Bedrock's wire format, as boto3's ``bedrock-runtime`` client calls it: Converse
(``/model/{modelId}/converse``, JSON, and ``/converse-stream``, AWS event-stream framing), and InvokeModel
(``/invoke``, ``/invoke-with-response-stream``) answering in the body format of the model's family: Anthropic's
Messages (anthropic_wire), Meta Llama's, Mistral's and Amazon Nova's. As Bedrock does, InvokeModel puts the
counts in ``X-Amzn-Bedrock-*-Token-Count`` headers and a stream's last event carries
``amazon-bedrock-invocationMetrics``."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from . import eventstream
from .anthropic_wire import bedrock_error, bedrock_invoke, bedrock_invoke_events
from .reply import DEFAULT_INPUT_TOKENS, Reply, output_tokens, text_pieces
from .wire import (
    Event,
    Frame,
    JsonResponse,
    RecordedRequest,
    Response,
    Route,
    StreamResponse,
    scripted_frames,
    until_error,
    with_headers,
)

__all__ = ["ROUTES"]

_STREAM_ERROR = "modelStreamErrorException"


def _usage(reply: Reply) -> dict[str, Any]:
    if reply.usage is not None:
        return reply.usage
    output = output_tokens(reply)
    return {"inputTokens": DEFAULT_INPUT_TOKENS, "outputTokens": output, "totalTokens": DEFAULT_INPUT_TOKENS + output}


def _headers(reply: Reply) -> dict[str, str]:
    return with_headers(reply, {"x-amzn-requestid": str(uuid.uuid4())})


def _converse(request: RecordedRequest, reply: Reply, match: re.Match[str]) -> Response:
    body = {
        "output": {"message": {"role": "assistant", "content": [{"text": "".join(text_pieces(reply))}]}},
        "stopReason": reply.finish_reason or "end_turn",
        "usage": _usage(reply),
        "metrics": {"latencyMs": 100},
    }
    return JsonResponse(200, body, _headers(reply))


def _event(event: dict[str, Any]) -> bytes:
    """One ConverseStream event ({type: body}) in event-stream framing: its type in the headers, its body the
    payload."""
    ((kind, body),) = event.items()
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return eventstream.message(headers, json.dumps(body).encode())


def _converse_stream(request: RecordedRequest, reply: Reply, match: re.Match[str]) -> Response:
    pieces, failed = until_error(reply, text_pieces(reply))
    events: list[Event] = [
        ({"messageStart": {"role": "assistant"}}, False),
        *(({"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": piece}}}, True) for piece in pieces),
    ]
    if not failed:
        events += [
            ({"contentBlockStop": {"contentBlockIndex": 0}}, False),
            ({"messageStop": {"stopReason": reply.finish_reason or "end_turn"}}, False),
            ({"metadata": {"usage": _usage(reply), "metrics": {"latencyMs": 100}}}, False),
        ]
    return _stream(reply, scripted_frames(reply, events, _event), failed, _headers(reply))


def _stream(reply: Reply, frames: list[Frame], failed: bool, headers: dict[str, str]) -> StreamResponse:
    """A streaming operation's answer: its frames, then the in-stream error that ends a failed one."""
    if failed:
        text = (reply.error_body or {}).get("message", "The model stream was interrupted.")
        frames.append(Frame(eventstream.exception(_STREAM_ERROR, str(text))))
    return StreamResponse("application/vnd.amazon.eventstream", frames, headers)


def _counts(reply: Reply) -> dict[str, Any]:
    """An InvokeModel call's counts in the shape of Bedrock's invocation metrics (see Reply.usage)."""
    if reply.usage is not None:
        return reply.usage
    return {"inputTokenCount": DEFAULT_INPUT_TOKENS, "outputTokenCount": output_tokens(reply)}


def _count_headers(counts: dict[str, Any]) -> dict[str, str]:
    """X-Amzn-Bedrock-Input-Token-Count and its siblings; the cache ones only for a call that has such tokens."""
    headers = {"x-amzn-requestid": str(uuid.uuid4()), "x-amzn-bedrock-invocation-latency": "100"}
    for kind, key in _HEADER_COUNTS:
        if key in counts and (counts[key] or kind in ("input", "output")):
            headers[f"x-amzn-bedrock-{kind}-token-count"] = str(counts[key])
    return headers


_HEADER_COUNTS = (
    ("input", "inputTokenCount"),
    ("output", "outputTokenCount"),
    ("cache-read-input", "cacheReadInputTokenCount"),
    ("cache-write-input", "cacheWriteInputTokenCount"),
)


def _llama(reply: Reply, text: str, counts: dict[str, Any]) -> dict[str, Any]:
    return {
        "generation": text,
        "prompt_token_count": counts.get("inputTokenCount"),
        "generation_token_count": counts.get("outputTokenCount"),
        "stop_reason": reply.finish_reason or "stop",
    }


def _mistral(reply: Reply, text: str, counts: dict[str, Any]) -> dict[str, Any]:
    return {"outputs": [{"text": text, "stop_reason": reply.finish_reason or "stop"}]}


def _nova_usage(counts: dict[str, Any]) -> dict[str, Any]:
    usage = {"inputTokens": counts.get("inputTokenCount"), "outputTokens": counts.get("outputTokenCount")}
    numbers = [value for value in counts.values() if isinstance(value, int)]
    usage["totalTokens"] = sum(numbers)
    for key in ("cacheReadInputTokenCount", "cacheWriteInputTokenCount"):
        if key in counts:
            usage[key] = counts[key]
    return usage


def _nova(reply: Reply, text: str, counts: dict[str, Any]) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": reply.finish_reason or "end_turn",
        "usage": _nova_usage(counts),
    }


def _llama_events(reply: Reply, pieces: list[str], counts: dict[str, Any]) -> tuple[list[Event], dict[str, Any]]:
    """Llama's chunks: the prompt's count on the first, the generation's running count on each, then the last
    (empty) one with the stop reason."""
    events: list[Event] = [
        (
            {
                "generation": piece,
                "prompt_token_count": counts.get("inputTokenCount") if index == 0 else None,
                "generation_token_count": index + 1,
                "stop_reason": None,
            },
            True,
        )
        for index, piece in enumerate(pieces)
    ]
    last = {**_llama(reply, "", counts), "prompt_token_count": None}
    return events, last


def _mistral_events(reply: Reply, pieces: list[str], counts: dict[str, Any]) -> tuple[list[Event], dict[str, Any]]:
    events: list[Event] = [({"outputs": [{"text": piece, "stop_reason": None}]}, True) for piece in pieces]
    return events, _mistral(reply, "", counts)


def _nova_events(reply: Reply, pieces: list[str], counts: dict[str, Any]) -> tuple[list[Event], dict[str, Any]]:
    """Nova's: the Converse stream's events, each one JSON chunk; its metadata event is the last."""
    events: list[Event] = [
        ({"messageStart": {"role": "assistant"}}, False),
        *(({"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": piece}}}, True) for piece in pieces),
        ({"contentBlockStop": {"contentBlockIndex": 0}}, False),
        ({"messageStop": {"stopReason": reply.finish_reason or "end_turn"}}, False),
    ]
    return events, {"metadata": {"usage": _nova_usage(counts), "metrics": {}, "trace": {}}}


_Body = Callable[[Reply, str, dict[str, Any]], dict[str, Any]]
_Events = Callable[[Reply, list[str], dict[str, Any]], tuple[list[Event], dict[str, Any]]]
# A model id's family (after any regional or cross-region prefix such as "us." or "global."), and its formats.
_FAMILIES: dict[str, tuple[_Body, _Events]] = {
    "meta": (_llama, _llama_events),
    "mistral": (_mistral, _mistral_events),
    "amazon": (_nova, _nova_events),
}
_FAMILY = re.compile(r"(?:^|\.)(anthropic|meta|mistral|amazon)\.")


def _family(match: re.Match[str]) -> tuple[_Body, _Events] | None:
    """The body formats of the model in the path; None for Anthropic's (and any other model's, as before)."""
    found = _FAMILY.search(unquote(match["model"]))
    return _FAMILIES.get(found[1]) if found else None


def _invoke(request: RecordedRequest, reply: Reply, match: re.Match[str]) -> Response:
    family = _family(match)
    if family is None:
        return bedrock_invoke(request, reply, match)
    counts = _counts(reply)
    body = family[0](reply, "".join(text_pieces(reply)), counts)
    return JsonResponse(200, body, with_headers(reply, _count_headers(counts)))


def _invocation_metrics(counts: dict[str, Any]) -> dict[str, Any]:
    return {**counts, "invocationLatency": 100, "firstByteLatency": 10}


def _invoke_stream(request: RecordedRequest, reply: Reply, match: re.Match[str]) -> Response:
    """Each event is one chunk: the model's own JSON event, base64-encoded in Bedrock's `chunk` envelope."""
    family = _family(match)
    events, failed = bedrock_invoke_events(reply, match) if family is None else _family_events(reply, family[1])
    frames = scripted_frames(reply, events, lambda event: eventstream.chunk(json.dumps(event).encode()))
    headers = {"x-amzn-requestid": str(uuid.uuid4()), "x-amzn-bedrock-content-type": "application/json"}
    return _stream(reply, frames, failed, with_headers(reply, headers))


def _family_events(reply: Reply, family_events: _Events) -> tuple[list[Event], bool]:
    counts = _counts(reply)
    pieces, failed = until_error(reply, text_pieces(reply))
    events, last = family_events(reply, pieces, counts)
    if failed:
        return [(event, is_delta) for event, is_delta in events if is_delta or "messageStart" in event], True
    return [*events, ({**last, _METRICS: _invocation_metrics(counts)}, False)], False


_METRICS = "amazon-bedrock-invocationMetrics"

ROUTES = (
    Route(re.compile(r"^/model/(?P<model>[^/]+)/converse$"), _converse, bedrock_error),
    Route(re.compile(r"^/model/(?P<model>[^/]+)/converse-stream$"), _converse_stream, bedrock_error),
    Route(re.compile(r"^/model/(?P<model>[^/]+)/invoke$"), _invoke, bedrock_error),
    Route(re.compile(r"^/model/(?P<model>[^/]+)/invoke-with-response-stream$"), _invoke_stream, bedrock_error),
)
