"""Amazon Bedrock's Converse API wire format: ``/model/{modelId}/converse`` (JSON) and
``/model/{modelId}/converse-stream`` (AWS event-stream framing), as boto3's ``bedrock-runtime`` client calls it.
(InvokeModel with an Anthropic body is the Anthropic wire format's Bedrock route.)"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from . import eventstream
from .anthropic_wire import bedrock_error
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
    frames = scripted_frames(reply, events, _event)
    if failed:
        text = (reply.error_body or {}).get("message", "The model stream was interrupted.")
        frames.append(Frame(eventstream.exception(_STREAM_ERROR, str(text))))
    return StreamResponse("application/vnd.amazon.eventstream", frames, _headers(reply))


ROUTES = (
    Route(re.compile(r"^/model/(?P<model>[^/]+)/converse$"), _converse, bedrock_error),
    Route(re.compile(r"^/model/(?P<model>[^/]+)/converse-stream$"), _converse_stream, bedrock_error),
)
