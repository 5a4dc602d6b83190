"""The server's own contract: lifecycle, queue, recording, HTTP framing, Reply rules and AWS event-stream frames."""

from __future__ import annotations

import base64
import http.client
import json
import struct
import threading
import time
import zlib
from typing import Any

import httpx2
import pytest

from costspan.testing import ProviderServer, RecordedRequest, Reply
from costspan.testing.eventstream import chunk, exception
from costspan.testing.reply import text_pieces

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}


def post(server: ProviderServer, path: str, body: Any) -> httpx2.Response:
    with httpx2.Client(base_url=server.url) as client:
        return client.post(path, json=body, headers={"X-Trace": "T1"}, params={"api-version": "1"})


def test_lifecycle() -> None:
    server = ProviderServer()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url

    server.start()
    with pytest.raises(RuntimeError, match="already running"):
        server.start()
    assert server.url.startswith("http://127.0.0.1:")
    assert server.openai_base_url == f"{server.url}/v1"
    assert server.anthropic_base_url == server.url
    server.stop()
    server.stop()

    with server as again:
        assert again is server
        assert post(server, "/v1/chat/completions", CHAT).status_code == 200


def test_replies_are_taken_in_order_then_defaults(server: ProviderServer) -> None:
    server.push(Reply(text="first"), Reply(text="second"))

    texts = [post(server, "/v1/chat/completions", CHAT).json()["choices"][0]["message"]["content"] for _ in range(3)]

    assert texts == ["first", "second", Reply().text]


def test_requests_are_recorded_and_reset(server: ProviderServer) -> None:
    server.push(Reply(text="dropped by reset"))
    post(server, "/v1/chat/completions", CHAT)
    with httpx2.Client(base_url=server.url) as client:
        client.post("/v1/chat/completions", content=b"not json")

    first, second = server.requests
    assert first == RecordedRequest("POST", "/v1/chat/completions", {"api-version": "1"}, first.headers, CHAT)
    assert first.headers["x-trace"] == "T1"
    assert second.body is None
    server.reset()
    assert server.requests == []
    assert post(server, "/v1/chat/completions", CHAT).json()["choices"][0]["message"]["content"] == Reply().text


def test_unknown_method_or_path_is_404_and_keeps_the_queue(server: ProviderServer) -> None:
    server.push(Reply(status=500))
    with httpx2.Client(base_url=server.url) as client:
        get = client.get("/v1/chat/completions")
        anthropic_404 = client.post("/v1/nothing", json={}, headers={"anthropic-version": "2023-06-01"})

    assert (get.status_code, get.json()["error"]["type"]) == (404, "invalid_request_error")
    assert (anthropic_404.status_code, anthropic_404.json()["error"]["type"]) == (404, "not_found_error")
    assert post(server, "/v1/chat/completions", CHAT).status_code == 500


def test_every_answer_carries_a_request_id(server: ProviderServer) -> None:
    server.push(Reply(), Reply(headers={"x-request-id": "req_mine"}))

    generated, scripted = (post(server, "/v1/chat/completions", CHAT) for _ in range(2))
    anthropic = post(server, "/v1/messages", {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": []})

    assert generated.headers["x-request-id"].startswith("req_")
    assert scripted.headers["x-request-id"] == "req_mine"
    assert anthropic.headers["request-id"].startswith("req_")


def test_streams_are_chunked_and_keep_the_connection_alive(server: ProviderServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]), timeout=5)
    bodies, sockets = [], []
    for stream in (True, False, True):
        connection.request("POST", "/v1/chat/completions", json.dumps({**CHAT, "stream": stream}))
        response = connection.getresponse()
        bodies.append((response.getheader("Transfer-Encoding"), response.read()))
        sockets.append(connection.sock)
    connection.close()

    assert sockets[0] is not None
    assert sockets.count(sockets[0]) == 3
    assert [encoding for encoding, _ in bodies] == ["chunked", None, "chunked"]
    assert bodies[0][1].endswith(b"data: [DONE]\n\n")
    assert json.loads(bodies[1][1])["object"] == "chat.completion"


def test_stop_interrupts_a_delayed_reply() -> None:
    server = ProviderServer()
    server.start()
    server.push(Reply(delay=30))
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            post(server, "/v1/chat/completions", CHAT)
        except httpx2.HTTPError as error:
            outcome.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    while not server.requests:
        time.sleep(0.01)
    began = time.perf_counter()
    server.stop()
    caller.join(5)

    assert time.perf_counter() - began < 2
    assert len(outcome) == 1


@pytest.mark.parametrize(
    ("text", "chunks", "expected"),
    [
        ("Hello there, world.", None, ["Hello", " there,", " world."]),
        ("  padded  ", None, ["  padded  "]),
        ("a b c d e", 2, ["a b", " c d e"]),
        ("abc", 3, ["a", "b", "c"]),
        ("ab", 5, ["a", "b", " ", "a", "b"]),
        ("", None, []),
    ],
)
def test_text_pieces(text: str, chunks: int | None, expected: list[str]) -> None:
    assert text_pieces(Reply(text=text, chunks=chunks)) == expected


@pytest.mark.parametrize("chunks", [1, 7, 9, 40, 200])
def test_text_pieces_are_exactly_chunks_non_empty_deltas(chunks: int) -> None:
    pieces = text_pieces(Reply(chunks=chunks))

    assert len(pieces) == chunks
    assert all(pieces)
    assert "".join(pieces).startswith(Reply().text)


@pytest.mark.parametrize(
    "options",
    [
        {"chunks": 0},
        {"chunks": 2, "text": ""},
        {"status": 302},
        {"usage_updates": 0},
        {"delay": -1},
        {"drop_after": -1},
    ],
)
def test_reply_rejects_impossible_scripts(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        Reply(**options)


def test_reply_is_frozen() -> None:
    with pytest.raises(AttributeError):
        Reply().text = "changed"  # type: ignore[misc]


def decode_frame(frame: bytes) -> tuple[dict[str, str], bytes]:
    """An independent reading of the AWS event-stream framing, checking both CRCs."""
    total, headers_length, prelude_crc = struct.unpack(">III", frame[:12])
    assert total == len(frame)
    assert prelude_crc == zlib.crc32(frame[:8])
    assert struct.unpack(">I", frame[-4:])[0] == zlib.crc32(frame[:-4])
    headers, raw = {}, frame[12 : 12 + headers_length]
    while raw:
        name_length = raw[0]
        name = raw[1 : 1 + name_length].decode()
        kind, value_length = struct.unpack(">BH", raw[1 + name_length : 4 + name_length])
        assert kind == 7
        headers[name] = raw[4 + name_length : 4 + name_length + value_length].decode()
        raw = raw[4 + name_length + value_length :]
    return headers, frame[12 + headers_length : -4]


def test_eventstream_chunk_frame() -> None:
    event = b'{"type":"message_stop"}'

    headers, payload = decode_frame(chunk(event))

    assert headers == {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    assert base64.b64decode(json.loads(payload)["bytes"]) == event


def test_eventstream_exception_frame() -> None:
    headers, payload = decode_frame(exception("throttlingException", "slow down"))

    assert headers[":message-type"] == "exception"
    assert headers[":exception-type"] == "throttlingException"
    assert json.loads(payload) == {"message": "slow down"}


def test_eventstream_frames_decode_with_botocore() -> None:
    eventstream = pytest.importorskip("botocore.eventstream")
    buffer = eventstream.EventStreamBuffer()
    buffer.add_data(chunk(b'{"type":"ping"}') + exception("internalServerException", "boom"))

    first, second = list(buffer)

    assert first.to_response_dict()["status_code"] == 200
    assert second.headers[":exception-type"] == "internalServerException"
