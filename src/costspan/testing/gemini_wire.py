"""Google's Gemini REST wire format, on the Gemini API's paths and Vertex AI's (project and express mode):
``:generateContent``, ``:streamGenerateContent?alt=sse``, and embeddings (``:batchEmbedContents`` on the Gemini
API, ``:embedContent`` and ``:predict`` on Vertex AI)."""

from __future__ import annotations

import re
from typing import Any

from .reply import DEFAULT_INPUT_TOKENS, Reply, output_tokens, text_pieces
from .wire import (
    Event,
    Frame,
    JsonResponse,
    RecordedRequest,
    Response,
    Route,
    StreamResponse,
    new_id,
    scripted_frames,
    sse,
    until_error,
    with_headers,
)

__all__ = ["ROUTES", "error_response"]

_MODELS = r"^/(?:v1|v1beta|v1alpha|v1beta1)/(?:projects/[^/]+/locations/[^/]+/)?(?:publishers/google/)?models/"
_SSE = "text/event-stream"
_STREAM_ERROR_STATUS = 500
_EMBEDDING_DIMENSIONS = 8
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error_body(reply: Reply, status: int) -> dict[str, Any]:
    if reply.error_body is not None:
        return reply.error_body
    name = _STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
    return {"error": {"code": status, "message": f"HTTP {status}: {name}", "status": name}}


def error_response(reply: Reply) -> JsonResponse:
    return JsonResponse(reply.status, error_body(reply, reply.status), _headers(reply))


def _headers(reply: Reply) -> dict[str, str]:
    return with_headers(reply, {"x-gemini-service-tier": "standard", "server-timing": "gfet4t7; dur=1"})


def _usage(reply: Reply) -> dict[str, Any]:
    if reply.usage is not None:
        return reply.usage
    output = output_tokens(reply)
    return {
        "promptTokenCount": DEFAULT_INPUT_TOKENS,
        "candidatesTokenCount": output,
        "totalTokenCount": DEFAULT_INPUT_TOKENS + output,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": DEFAULT_INPUT_TOKENS}],
    }


def _prompt_only(usage: dict[str, Any]) -> dict[str, Any]:
    """What a stream's chunks before the last carry, as Gemini sends them: the prompt's counts only."""
    return {key: value for key, value in usage.items() if key.startswith("prompt")}


def _response(reply: Reply, model: str, text: str, finished: bool, usage: dict[str, Any] | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finished:
        candidate["finishReason"] = reply.finish_reason or "STOP"
    out: dict[str, Any] = {"candidates": [candidate], "modelVersion": model, "responseId": new_id("")[:22]}
    if usage is not None:
        out["usageMetadata"] = usage
    return out


def _generate(request: RecordedRequest, reply: Reply, match: re.Match[str]) -> Response:
    model = reply.model or match["model"]
    usage = _usage(reply)
    if match["method"] == "generateContent":
        return JsonResponse(200, _response(reply, model, "".join(text_pieces(reply)), True, usage), _headers(reply))
    pieces, failed = until_error(reply, text_pieces(reply))
    events: list[Event] = []
    for index, piece in enumerate(pieces):
        last = not failed and index == len(pieces) - 1
        chunk_usage = usage if last else _prompt_only(usage)
        events.append((_response(reply, model, piece, last, chunk_usage), True))
    frames = scripted_frames(reply, events, sse)
    if failed:
        frames.append(Frame(sse(error_body(reply, _STREAM_ERROR_STATUS))))
    return StreamResponse(_SSE, frames, _headers(reply))


def _embed(request: RecordedRequest, reply: Reply, match: re.Match[str]) -> Response:
    """The Gemini API's batchEmbedContents reports no usage (a scripted usage is sent as usageMetadata); Vertex
    AI's embedContent (Gemini embedding models) a usageMetadata, and its predict (the others) each embedding's
    token count."""
    body = request.body if isinstance(request.body, dict) else {}
    method = match["method"]
    if method == "batchEmbedContents":
        count = len(body.get("requests") or ())
        out: dict[str, Any] = {"embeddings": [{"values": _vector(i)} for i in range(count)]}
        if reply.usage is not None:
            out["usageMetadata"] = reply.usage
        return JsonResponse(200, out, _headers(reply))
    usage = reply.usage if reply.usage is not None else {"promptTokenCount": DEFAULT_INPUT_TOKENS}
    if method == "embedContent":
        return JsonResponse(200, {"embedding": {"values": _vector(0)}, "usageMetadata": usage}, _headers(reply))
    instances = body.get("instances") or ()
    statistics = {"token_count": usage.get("promptTokenCount"), "truncated": False}
    predictions = [{"embeddings": {"values": _vector(i), "statistics": statistics}} for i in range(len(instances))]
    metadata = {"billableCharacterCount": sum(len(str(item.get("content", ""))) for item in instances)}
    return JsonResponse(200, {"predictions": predictions, "metadata": metadata}, _headers(reply))


def _vector(index: int) -> list[float]:
    return [round(0.1 * (index + 1) * (d + 1), 3) for d in range(_EMBEDDING_DIMENSIONS)]


ROUTES = (
    Route(
        re.compile(f"{_MODELS}(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$"),
        _generate,
        error_response,
    ),
    Route(
        re.compile(f"{_MODELS}(?P<model>[^/:]+):(?P<method>batchEmbedContents|embedContent|predict)$"),
        _embed,
        error_response,
    ),
)
