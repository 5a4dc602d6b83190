"""The OpenAI wire format on OpenAI's and Azure OpenAI's paths: chat, responses, embeddings, completions."""

from __future__ import annotations

import base64
import math
import re
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .reply import DEFAULT_INPUT_TOKENS, Reply, output_tokens, text_pieces
from .wire import (
    DONE,
    Event,
    Handler,
    JsonResponse,
    RecordedRequest,
    Response,
    Route,
    StreamResponse,
    new_id,
    scripted_frames,
    sse_named,
    until_error,
    with_headers,
)

__all__ = ["ROUTES", "error_response", "not_found"]

_PREFIX = r"^(?:/openai/deployments/(?P<deployment>[^/]+)|/openai(?:/v1)?|/v1)?"
_EMBEDDING_DIMENSIONS = 8
_STREAM_ERROR_STATUS = 500
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "We could not parse the JSON body of your request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided: sk-test****."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model does not exist or you do not have access to it.",
    ),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again in 1s."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def error_body(reply: Reply, status: int) -> dict[str, Any]:
    if reply.error_body is not None:
        return reply.error_body
    default = ("server_error" if status >= 500 else "invalid_request_error", None, f"HTTP {status}")
    kind, code, message = _ERRORS.get(status, default)
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def error_response(reply: Reply) -> JsonResponse:
    return JsonResponse(reply.status, error_body(reply, reply.status), _headers(reply))


def not_found(request: RecordedRequest) -> JsonResponse:
    message = f"Invalid URL ({request.method} {request.path})"
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    return JsonResponse(404, body, {"x-request-id": new_id("req_")})


def _headers(reply: Reply) -> dict[str, str]:
    return with_headers(reply, {"x-request-id": new_id("req_"), "openai-processing-ms": "1"})


def _body(request: RecordedRequest) -> dict[str, Any]:
    return request.body if isinstance(request.body, dict) else {}


def _model(request: RecordedRequest, reply: Reply, match: re.Match[str]) -> str:
    deployment = match["deployment"]
    requested = _body(request).get("model") or (unquote(deployment) if deployment else "unknown")
    return reply.model or str(requested)


def _envelope(prefix: str, kind: str, model: str, **extra: Any) -> dict[str, Any]:
    """The fields every chunk of one answer shares."""
    return {"id": new_id(prefix), "object": kind, "created": int(time.time()), "model": model, **extra}


def _ending(reply: Reply, failed: bool, last: dict[str, Any], usage: dict[str, Any] | None) -> list[Event]:
    """How a chat or legacy completion stream ends: the in-stream error, or the last chunks and [DONE]."""
    if failed:
        return [(error_body(reply, _STREAM_ERROR_STATUS), False)]
    chunks = [last] if usage is None else [last, usage]
    return [*((chunk, False) for chunk in chunks), (DONE, False)]


def _wants_usage(request: RecordedRequest) -> bool:
    options = _body(request).get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _usage_chunk(envelope: dict[str, Any], usage: dict[str, Any], wanted: bool) -> dict[str, Any] | None:
    return {**envelope, "choices": [], "usage": usage} if wanted else None


def _chat_usage(reply: Reply) -> dict[str, Any]:
    """CompletionUsage, which chat and legacy completions share."""
    if reply.usage is not None:
        return reply.usage
    output = output_tokens(reply)
    return {
        "prompt_tokens": DEFAULT_INPUT_TOKENS,
        "completion_tokens": output,
        "total_tokens": DEFAULT_INPUT_TOKENS + output,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat(request: RecordedRequest, reply: Reply, match: re.Match[str]) -> Response:
    tier = {"service_tier": reply.service_tier or "default", "system_fingerprint": "fp_costspan"}
    envelope = _envelope("chatcmpl-", "chat.completion", _model(request, reply, match), **tier)
    count = _choice_count(request)
    if _body(request).get("stream"):
        return _chat_stream(envelope | {"object": "chat.completion.chunk"}, reply, _wants_usage(request), count)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(text_pieces(reply)),
        "refusal": None,
        "annotations": [],
    }
    choices = [
        {"index": index, "message": message, "logprobs": None, "finish_reason": _finish_reason(reply, index)}
        for index in range(count)
    ]
    return JsonResponse(200, envelope | {"choices": choices, "usage": _chat_usage(reply)}, _headers(reply))


def _choice_count(request: RecordedRequest) -> int:
    n = _body(request).get("n")
    return n if isinstance(n, int) and n > 1 else 1


def _finish_reason(reply: Reply, index: int) -> str:
    if reply.finish_reasons:
        return reply.finish_reasons[index % len(reply.finish_reasons)]
    return reply.finish_reason or "stop"


def _chat_stream(envelope: dict[str, Any], reply: Reply, wants_usage: bool, count: int) -> StreamResponse:
    """Each chunk carries one choice; with n > 1 the choices' chunks interleave, as the real API sends them."""

    # The real API puts `"usage": null` on every chunk only when the final usage chunk was asked for.
    def chunk(index: int, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return envelope | {"choices": [choice]} | ({"usage": None} if wants_usage else {})

    sent, failed = until_error(reply, text_pieces(reply))
    choices = range(count)
    events: list[Event] = [(chunk(i, {"role": "assistant", "content": "", "refusal": None}), False) for i in choices]
    events += [(chunk(i, {"content": piece}), True) for piece in sent for i in choices]
    *ends, last = [chunk(i, {}, _finish_reason(reply, i)) for i in choices]
    events += [(end, False) for end in ends if not failed]
    events += _ending(reply, failed, last, _usage_chunk(envelope, _chat_usage(reply), wants_usage))
    return StreamResponse(
        "text/event-stream; charset=utf-8", scripted_frames(reply, events, sse_named), _headers(reply)
    )


def _completions(request: RecordedRequest, reply: Reply, match: re.Match[str]) -> Response:
    envelope = _envelope("cmpl-", "text_completion", _model(request, reply, match))
    finish_reason = reply.finish_reason or "stop"
    if not _body(request).get("stream"):
        choice = _completion_choice("".join(text_pieces(reply)), finish_reason)
        return JsonResponse(200, envelope | {"choices": [choice], "usage": _chat_usage(reply)}, _headers(reply))
    wants_usage = _wants_usage(request)
    marker = {"usage": None} if wants_usage else {}
    sent, failed = until_error(reply, text_pieces(reply))
    events: list[Event] = [(envelope | {"choices": [_completion_choice(p, None)]} | marker, True) for p in sent]
    last = envelope | {"choices": [_completion_choice("", finish_reason)]} | marker
    events += _ending(reply, failed, last, _usage_chunk(envelope, _chat_usage(reply), wants_usage))
    return StreamResponse(
        "text/event-stream; charset=utf-8", scripted_frames(reply, events, sse_named), _headers(reply)
    )


def _completion_choice(text: str, finish_reason: str | None) -> dict[str, Any]:
    return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}


def _embeddings(request: RecordedRequest, reply: Reply, match: re.Match[str]) -> Response:
    body = _body(request)
    dimensions = int(body.get("dimensions") or _EMBEDDING_DIMENSIONS)
    packed = body.get("encoding_format") == "base64"
    data = [
        {"object": "embedding", "index": index, "embedding": _embedding(item, dimensions, packed)}
        for index, item in enumerate(_embedding_inputs(body.get("input")))
    ]
    default = {"prompt_tokens": DEFAULT_INPUT_TOKENS, "total_tokens": DEFAULT_INPUT_TOKENS}
    usage = reply.usage if reply.usage is not None else default
    answer = {"object": "list", "data": data, "model": _model(request, reply, match), "usage": usage}
    return JsonResponse(200, answer, _headers(reply))


def _embedding_inputs(value: Any) -> list[Any]:
    """One item per embedded input: a string, or a list of token ids, is a single input."""
    if isinstance(value, list) and value and not all(isinstance(v, int) for v in value):
        return value
    return [value]


def _embedding(item: Any, dimensions: int, packed: bool) -> list[float] | str:
    seed = zlib.crc32(repr(item).encode())
    vector = [round(math.sin(seed + i), 6) for i in range(dimensions)]
    if not packed:
        return vector
    return base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()


@dataclass(frozen=True)
class _Draft:
    """What every event of one Responses API answer repeats."""

    request: dict[str, Any]
    reply: Reply
    model: str
    response_id: str = field(default_factory=lambda: new_id("resp_"))
    item_id: str = field(default_factory=lambda: new_id("msg_"))
    created_at: int = field(default_factory=lambda: int(time.time()))


def _responses(request: RecordedRequest, reply: Reply, match: re.Match[str]) -> Response:
    draft = _Draft(_body(request), reply, _model(request, reply, match))
    if draft.request.get("stream"):
        return _responses_stream(draft)
    final = _response(draft, "completed", [_message(draft, "".join(text_pieces(reply)), "completed")])
    return JsonResponse(200, final, _headers(reply))


def _response(draft: _Draft, status: str, output: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    request = draft.request
    completed = status == "completed"
    return {
        "id": draft.response_id,
        "object": "response",
        "created_at": draft.created_at,
        "status": status,
        "background": False,
        "completed_at": int(time.time()) if completed else None,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "metadata": request.get("metadata") or {},
        "model": draft.model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": draft.reply.service_tier or "default",
        "store": request.get("store", True),
        "temperature": request.get("temperature", 1.0),
        "text": request.get("text") or {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": request.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": _responses_usage(draft.reply) if completed else None,
        "user": None,
        **extra,
    }


def _responses_usage(reply: Reply) -> dict[str, Any]:
    if reply.usage is not None:
        return reply.usage
    output = output_tokens(reply)
    return {
        "input_tokens": DEFAULT_INPUT_TOKENS,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": DEFAULT_INPUT_TOKENS + output,
    }


def _message(draft: _Draft, text: str | None, status: str) -> dict[str, Any]:
    content = [] if text is None else [_text_part(text)]
    return {"id": draft.item_id, "type": "message", "status": status, "content": content, "role": "assistant"}


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _responses_stream(draft: _Draft) -> StreamResponse:
    sent, failed = until_error(draft.reply, text_pieces(draft.reply))
    where = {"item_id": draft.item_id, "output_index": 0, "content_index": 0}
    deltas = [{"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []} for piece in sent]
    ending = _failure(draft, "".join(sent)) if failed else _completion(draft, "".join(sent), where)
    events = [(event, False) for event in _opening(draft, where)]
    events += [(delta, True) for delta in deltas] + [(event, False) for event in ending]
    numbered = [(event | {"sequence_number": n}, is_delta) for n, (event, is_delta) in enumerate(events)]
    frames = scripted_frames(draft.reply, numbered, sse_named)
    return StreamResponse("text/event-stream; charset=utf-8", frames, _headers(draft.reply))


def _opening(draft: _Draft, where: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"type": "response.created", "response": _response(draft, "in_progress", [])},
        {"type": "response.in_progress", "response": _response(draft, "in_progress", [])},
        {"type": "response.output_item.added", "output_index": 0, "item": _message(draft, None, "in_progress")},
        {"type": "response.content_part.added", **where, "part": _text_part("")},
    ]


def _completion(draft: _Draft, text: str, where: dict[str, Any]) -> list[dict[str, Any]]:
    item = _message(draft, text, "completed")
    return [
        {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": _text_part(text)},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": _response(draft, "completed", [item])},
    ]


def _failure(draft: _Draft, partial: str) -> list[dict[str, Any]]:
    body = error_body(draft.reply, _STREAM_ERROR_STATUS)
    error = body.get("error", body)
    reason = {"code": error.get("code") or "server_error", "message": error.get("message", "")}
    failed = _response(draft, "failed", [_message(draft, partial, "incomplete")], error=reason)
    return [{"type": "response.failed", "response": failed}]


def _route(endpoint: str, handle: Handler) -> Route:
    return Route(re.compile(f"{_PREFIX}{endpoint}$"), handle, error_response)


ROUTES = (
    _route("/chat/completions", _chat),
    _route("/responses", _responses),
    _route("/embeddings", _embeddings),
    _route("/completions", _completions),
)
