"""The Anthropic Messages wire format, on Anthropic's, Vertex AI's and Amazon Bedrock's paths."""

from __future__ import annotations

import re
import uuid
from typing import Any, TypeAlias
from urllib.parse import unquote

from .reply import DEFAULT_INPUT_TOKENS, Reply, output_tokens, text_pieces
from .wire import (
    Frame,
    JsonResponse,
    RecordedRequest,
    Response,
    Route,
    StreamResponse,
    new_id,
    scripted_frames,
    sse,
    sse_named,
    until_error,
    with_headers,
)

__all__ = ["ROUTES", "bedrock_error", "bedrock_invoke", "bedrock_invoke_events", "is_anthropic", "not_found"]

_VERTEX = r"^(?:/v1)?/projects/[^/]+/locations/[^/]+/publishers/anthropic/models/"
_SSE = "text/event-stream; charset=utf-8"
_STREAM_ERROR_STATUS = 529
# message_start carries the input side of the usage; these arrive, cumulative, in message_delta.
_DELTA_USAGE = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
    "server_tool_use",
    "output_tokens_details",
)
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "messages: field required"),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "This request would exceed the rate limit for your organization."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}
_BEDROCK_ERRORS: dict[int, tuple[str, str]] = {
    400: ("ValidationException", "Malformed input request, please reformat your input and try again."),
    403: ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
    404: ("ResourceNotFoundException", "The requested resource could not be found."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "The server encountered an internal error."),
    503: ("ServiceUnavailableException", "The service is unavailable. Please try again later."),
}
_Event: TypeAlias = tuple[dict[str, Any], bool]


def is_anthropic(request: RecordedRequest) -> bool:
    """Whether a request for an unknown path came from an Anthropic client, to answer in its error format."""
    anthropic_paths = ("/v1/messages", "/model/", "/projects/", "/v1/projects/")
    return "anthropic-version" in request.headers or request.path.startswith(anthropic_paths)


def not_found(request: RecordedRequest) -> JsonResponse:
    request_id = new_id("req_")
    body = {
        "type": "error",
        "error": {"type": "not_found_error", "message": "Not Found"},
        "request_id": request_id,
    }
    return JsonResponse(404, body, {"request-id": request_id})


def error_body(reply: Reply, status: int, request_id: str) -> dict[str, Any]:
    if reply.error_body is not None:
        return reply.error_body
    default = ("api_error" if status >= 500 else "invalid_request_error", f"HTTP {status}")
    kind, message = _ERRORS.get(status, default)
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}


def error_response(reply: Reply) -> JsonResponse:
    request_id = new_id("req_")
    headers = with_headers(reply, {"request-id": request_id})
    return JsonResponse(reply.status, error_body(reply, reply.status, request_id), headers)


def bedrock_error(reply: Reply) -> JsonResponse:
    default = (
        "InternalServerException" if reply.status >= 500 else "ValidationException",
        f"HTTP {reply.status}",
    )
    name, message = _BEDROCK_ERRORS.get(reply.status, default)
    error_type = f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/"
    headers = with_headers(reply, {"x-amzn-requestid": str(uuid.uuid4()), "x-amzn-errortype": error_type})
    body = reply.error_body if reply.error_body is not None else {"message": message}
    return JsonResponse(reply.status, body, headers)


def _body(request: RecordedRequest) -> dict[str, Any]:
    return request.body if isinstance(request.body, dict) else {}


def _usage(reply: Reply) -> dict[str, Any]:
    if reply.usage is not None:
        tier = {} if reply.service_tier is None else {"service_tier": reply.service_tier}
        return tier | reply.usage
    return {
        "input_tokens": DEFAULT_INPUT_TOKENS,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens(reply),
        "service_tier": reply.service_tier or "standard",
    }


def _message(reply: Reply, model: str, text: str | None, usage: dict[str, Any]) -> dict[str, Any]:
    """A Message; `text=None` gives the empty, unfinished one that message_start carries."""
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [] if text is None else [{"type": "text", "text": text}],
        "stop_reason": None if text is None else reply.finish_reason or "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


def _events(reply: Reply, model: str, usage: dict[str, Any], stop: dict[str, Any]) -> tuple[list[_Event], bool]:
    """The stream's events, each marked when it is a content delta, and whether an in-stream error ends it."""
    final_output = usage.get("output_tokens", output_tokens(reply))
    start_usage = {k: v for k, v in usage.items() if k != "server_tool_use"} | {
        "output_tokens": _placeholder(final_output)
    }
    sent, failed = until_error(reply, text_pieces(reply))
    events: list[_Event] = [
        ({"type": "message_start", "message": _message(reply, model, None, start_usage)}, False),
        ({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}, False),
        ({"type": "ping"}, False),
        *((_text_delta(piece), True) for piece in sent),
    ]
    if failed:
        return events, True
    delta_usage = {k: usage[k] for k in _DELTA_USAGE if k in usage} | {"output_tokens": final_output}
    delta = {"stop_reason": reply.finish_reason or "end_turn", "stop_sequence": None}
    message_delta: _Event = ({"type": "message_delta", "delta": delta, "usage": delta_usage}, False)
    events += [({"type": "content_block_stop", "index": 0}, False), *[message_delta] * reply.usage_updates]
    return [*events, (stop, False)], False


def _placeholder(final_output: Any) -> Any:
    """message_start's output count: at most 1 of a final count; a scripted value that is no count, as it is."""
    is_count = isinstance(final_output, (int, float)) and not isinstance(final_output, bool)
    return min(1, final_output) if is_count else final_output


def _text_delta(piece: str) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}


def _answer(reply: Reply, model: str, stream: bool) -> Response:
    request_id = new_id("req_")
    headers = with_headers(reply, {"request-id": request_id})
    usage = _usage(reply)
    if not stream:
        return JsonResponse(200, _message(reply, model, "".join(text_pieces(reply)), usage), headers)
    events, failed = _events(reply, model, usage, {"type": "message_stop"})
    frames = scripted_frames(reply, events, sse_named)
    if failed:
        error = error_body(reply, _STREAM_ERROR_STATUS, request_id)
        frames.append(Frame(sse(error, "error")))
    return StreamResponse(_SSE, frames, headers)


def _messages(request: RecordedRequest, reply: Reply, match: re.Match[str]) -> Response:
    body = _body(request)
    return _answer(reply, reply.model or str(body.get("model", "unknown")), bool(body.get("stream")))


def _vertex(request: RecordedRequest, reply: Reply, match: re.Match[str]) -> Response:
    return _answer(reply, _path_model(reply, match), match["specifier"] == "streamRawPredict")


def _path_model(reply: Reply, match: re.Match[str]) -> str:
    """Vertex and Bedrock name the model in the (percent-encoded) path instead of the body."""
    return reply.model or unquote(match["model"])


def _count_tokens(request: RecordedRequest, reply: Reply, match: re.Match[str]) -> Response:
    body = _body(request)
    prompt = [body.get("system"), body.get("messages"), body.get("tools")]
    counted = reply.usage if reply.usage is not None else {"input_tokens": max(1, _characters(prompt) // 4)}
    return JsonResponse(200, counted, with_headers(reply, {"request-id": new_id("req_")}))


def _characters(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        value = list(value.values())
    return sum(_characters(item) for item in value) if isinstance(value, list) else 0


def bedrock_invoke(request: RecordedRequest, reply: Reply, match: re.Match[str]) -> Response:
    """InvokeModel with an Anthropic body (bedrock_wire routes each model family)."""
    usage = _usage(reply)
    message = _message(reply, _path_model(reply, match), "".join(text_pieces(reply)), usage)
    counts = {
        "x-amzn-bedrock-input-token-count": str(usage.get("input_tokens", 0)),
        "x-amzn-bedrock-output-token-count": str(usage.get("output_tokens", 0)),
        "x-amzn-bedrock-cache-read-input-token-count": str(usage.get("cache_read_input_tokens", 0)),
        "x-amzn-bedrock-cache-write-input-token-count": str(usage.get("cache_creation_input_tokens", 0)),
        "x-amzn-bedrock-invocation-latency": "100",
    }
    return JsonResponse(200, message, with_headers(reply, {"x-amzn-requestid": str(uuid.uuid4()), **counts}))


def bedrock_invoke_events(reply: Reply, match: re.Match[str]) -> tuple[list[_Event], bool]:
    """InvokeModelWithResponseStream's events for an Anthropic body: the Messages stream, whose message_stop
    carries Bedrock's invocation metrics (bedrock_wire frames them); and whether an in-stream error ends it."""
    usage = _usage(reply)
    metrics = {
        "inputTokenCount": usage.get("input_tokens", 0),
        "outputTokenCount": usage.get("output_tokens", output_tokens(reply)),
        "cacheReadInputTokenCount": usage.get("cache_read_input_tokens", 0),
        "cacheWriteInputTokenCount": usage.get("cache_creation_input_tokens", 0),
        "invocationLatency": 100,
        "firstByteLatency": 10,
    }
    stop = {"type": "message_stop", "amazon-bedrock-invocationMetrics": metrics}
    return _events(reply, _path_model(reply, match), usage, stop)


ROUTES = (
    Route(re.compile(r"^/v1/messages/count_tokens$"), _count_tokens, error_response),
    Route(re.compile(f"{_VERTEX}count-tokens:rawPredict$"), _count_tokens, error_response),
    Route(re.compile(r"^/v1/messages$"), _messages, error_response),
    Route(
        re.compile(f"{_VERTEX}(?P<model>[^/]+):(?P<specifier>rawPredict|streamRawPredict)$"),
        _vertex,
        error_response,
    ),
)
