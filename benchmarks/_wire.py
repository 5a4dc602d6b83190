"""An in-memory OpenAI: the real ``openai.OpenAI`` client over an httpx2 transport that answers from pre-built
bytes, so the timed loop measures the SDK and the instrumentation, not a network.

The bodies have the shape the real API sends: a chat completion with cached-token usage, and a stream of
``STREAM_CHUNKS`` content chunks, followed by the usage-only chunk when (and only when) the request asks for
``stream_options.include_usage`` (then every chunk also carries ``"usage": null``, as the API does).
"""

from __future__ import annotations

import json
from typing import Any

import openai
import openai._base_client

__all__ = [
    "CACHED_TOKENS",
    "INPUT_TOKENS",
    "MODEL",
    "OUTPUT_TOKENS",
    "REQUEST",
    "RESPONSE_ID",
    "RESPONSE_MODEL",
    "STREAM_CHUNKS",
    "STREAM_REQUEST",
    "STREAM_USAGE_REQUEST",
    "make_client",
]

MODEL = "gpt-4.1-mini"
RESPONSE_MODEL = "gpt-4.1-mini-2025-04-14"
RESPONSE_ID = "chatcmpl-BenchmarkReplayed0001"
STREAM_CHUNKS = 200
INPUT_TOKENS = 1200
CACHED_TOKENS = 1024
OUTPUT_TOKENS = STREAM_CHUNKS - 2

REQUEST: dict[str, Any] = {
    "model": MODEL,
    "messages": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Describe the weather in Lisbon today."},
    ],
    "temperature": 0.2,
    "max_completion_tokens": 512,
}
STREAM_REQUEST: dict[str, Any] = {**REQUEST, "stream": True}
STREAM_USAGE_REQUEST: dict[str, Any] = {**STREAM_REQUEST, "stream_options": {"include_usage": True}}

_USAGE = {
    "prompt_tokens": INPUT_TOKENS,
    "completion_tokens": OUTPUT_TOKENS,
    "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
    "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
_ENVELOPE = {
    "id": RESPONSE_ID,
    "created": 1767225600,
    "model": RESPONSE_MODEL,
    "service_tier": "default",
    "system_fingerprint": "fp_b3nchm4rk",
}
_WORDS = [f" word{index}" for index in range(OUTPUT_TOKENS)]
_JSON_HEADERS = {"content-type": "application/json", "x-request-id": "req_benchmark"}
_SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "x-request-id": "req_benchmark"}


def _completion_body() -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": "".join(_WORDS), "refusal": None, "annotations": []}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
    body = {**_ENVELOPE, "object": "chat.completion", "choices": [choice], "usage": _USAGE}
    return json.dumps(body).encode()


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _stream_frames(include_usage: bool) -> tuple[bytes, ...]:
    """One SSE event per frame: a role chunk, the content chunks, the finish chunk, [the usage chunk], [DONE]."""
    envelope = {**_ENVELOPE, "object": "chat.completion.chunk"}
    marker = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return _event({**envelope, "choices": [choice], **marker})

    frames = [chunk({"role": "assistant", "content": "", "refusal": None})]
    frames += [chunk({"content": word}) for word in _WORDS]
    frames.append(chunk({}, "stop"))
    if include_usage:
        frames.append(_event({**envelope, "choices": [], "usage": _USAGE}))
    frames.append(b"data: [DONE]\n\n")
    return tuple(frames)


# The HTTP client module the installed SDK builds on: httpx2 from openai 3, httpx before.
httpx2: Any = openai._base_client.httpx2 if hasattr(openai._base_client, "httpx2") else openai._base_client.httpx


class ReplayTransport(httpx2.BaseTransport):
    """Answers every chat completion request from pre-built bytes, streaming one SSE event per read."""

    def __init__(self) -> None:
        self._completion = _completion_body()
        self._stream = _stream_frames(include_usage=False)
        self._stream_with_usage = _stream_frames(include_usage=True)

    def handle_request(self, request: Any) -> Any:
        body = json.loads(request.content)
        if not body.get("stream"):
            return httpx2.Response(200, headers=_JSON_HEADERS, content=self._completion)
        options = body.get("stream_options") or {}
        frames = self._stream_with_usage if options.get("include_usage") else self._stream
        return httpx2.Response(200, headers=_SSE_HEADERS, content=iter(frames))


def make_client() -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-benchmark-not-a-key",
        http_client=httpx2.Client(transport=ReplayTransport()),
        max_retries=0,
    )
