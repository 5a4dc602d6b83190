"""The Anthropic Messages wire format, read back by the real anthropic clients (sync and async)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import anthropic
import pytest

from costspan.testing import ProviderServer, Reply

if TYPE_CHECKING:
    from conftest import Sdk

MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]
USAGE = {
    "input_tokens": 50,
    "cache_creation_input_tokens": 200,
    "cache_read_input_tokens": 1000,
    "cache_creation": {"ephemeral_5m_input_tokens": 150, "ephemeral_1h_input_tokens": 50},
    "output_tokens": 42,
    "server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 0},
}


async def test_message_defaults(sdk: Sdk, server: ProviderServer) -> None:
    message = await sdk.call(sdk.anthropic().messages.create(model=MODEL, max_tokens=64, messages=MESSAGES))

    assert message.content[0].text == Reply().text
    assert message.model == MODEL
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 12
    assert message.usage.output_tokens == len(Reply().text.split())
    assert (message.usage.cache_read_input_tokens, message.usage.cache_creation_input_tokens) == (0, 0)
    assert message.usage.service_tier == "standard"


async def test_message_scripted_usage_is_verbatim_plus_service_tier(sdk: Sdk, server: ProviderServer) -> None:
    server.push(Reply(text="4", usage=USAGE, service_tier="priority", finish_reason="max_tokens", model="claude-x"))

    message = await sdk.call(sdk.anthropic().messages.create(model=MODEL, max_tokens=64, messages=MESSAGES))

    assert message.usage.model_dump(exclude_none=True) == {**USAGE, "service_tier": "priority"}
    assert (message.content[0].text, message.stop_reason, message.model) == ("4", "max_tokens", "claude-x")


async def test_stream_event_order(sdk: Sdk, server: ProviderServer) -> None:
    server.push(Reply(text="a b c", chunks=3, usage=USAGE, usage_updates=2))

    stream = await sdk.call(sdk.anthropic().messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, stream=True))
    events = await sdk.drain(stream)

    assert [e.type for e in events] == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_delta",
        "message_stop",
    ]
    start = events[0].message.usage
    assert (start.input_tokens, start.cache_read_input_tokens, start.output_tokens) == (50, 1000, 1)
    assert start.server_tool_use is None
    deltas = [e.usage.model_dump(exclude_none=True) for e in events if e.type == "message_delta"]
    expected = {k: v for k, v in USAGE.items() if k != "cache_creation"}
    assert deltas == [expected, expected]
    assert events[-2].delta.stop_reason == "end_turn"


async def test_stream_wire_has_ping_and_named_events(sdk: Sdk, server: ProviderServer) -> None:
    server.push(Reply(chunks=2))
    client = sdk.anthropic()

    response = await sdk.call(
        client.messages.with_raw_response.create(model=MODEL, max_tokens=64, messages=MESSAGES, stream=True)
    )
    raw = response.http_response
    body = (await raw.aread() if sdk.is_async else raw.read()).decode()

    names = [line.removeprefix("event: ") for line in body.splitlines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.headers["request-id"].startswith("req_")


async def test_stream_helper_final_message_takes_cumulative_usage(sdk: Sdk, server: ProviderServer) -> None:
    server.push(Reply(text="Four.", chunks=2, usage=USAGE, usage_updates=3))
    manager = sdk.anthropic().messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES)

    _, final = await sdk.managed(manager, "get_final_message")

    assert final.content[0].text == "Four."
    assert final.usage.output_tokens == 42
    assert final.usage.cache_read_input_tokens == 1000
    assert final.usage.server_tool_use.web_search_requests == 2


@pytest.mark.sdk("anthropic>=2.3")  # 2.0-2.2 send ?beta=true on every beta.messages call
async def test_beta_messages_with_and_without_beta_query(sdk: Sdk, server: ProviderServer) -> None:
    beta = sdk.anthropic().beta.messages

    for query in ({}, {"beta": "true"}):
        message = await sdk.call(beta.create(model=MODEL, max_tokens=8, messages=MESSAGES, extra_query=query))
        assert message.content[0].text == Reply().text

    assert [(r.path, r.query) for r in server.requests] == [
        ("/v1/messages", {}),
        ("/v1/messages", {"beta": "true"}),
    ]


async def test_count_tokens_is_deterministic(sdk: Sdk, server: ProviderServer) -> None:
    client = sdk.anthropic()
    long = [{"role": "user", "content": "word " * 100}]

    counts = [
        await sdk.call(client.messages.count_tokens(model=MODEL, messages=messages))
        for messages in (MESSAGES, MESSAGES, long)
    ]

    assert counts[0].input_tokens == counts[1].input_tokens >= 1
    assert counts[2].input_tokens > counts[0].input_tokens
    server.push(Reply(usage={"input_tokens": 777}))
    scripted = await sdk.call(client.messages.count_tokens(model=MODEL, messages=MESSAGES))
    assert scripted.input_tokens == 777


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ],
)
async def test_http_errors(sdk: Sdk, server: ProviderServer, status: int, kind: str) -> None:
    """The status and the body are the server's; the class the SDK maps them to is the SDK release's (529's
    changed in anthropic 2.5, to a subclass of InternalServerError)."""
    server.push(Reply(status=status))

    with pytest.raises(anthropic.APIStatusError) as raised:
        await sdk.call(sdk.anthropic().messages.create(model=MODEL, max_tokens=8, messages=MESSAGES))

    assert raised.value.status_code == status
    assert raised.value.body["error"]["type"] == kind
    assert raised.value.request_id == raised.value.body["request_id"]


async def test_scripted_error_body_and_request_id(sdk: Sdk, server: ProviderServer) -> None:
    body = {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Number of request tokens exceeded"},
    }
    server.push(Reply(status=429, error_body=body, headers={"request-id": "req_123", "retry-after": "7"}))

    with pytest.raises(anthropic.RateLimitError) as raised:
        await sdk.call(sdk.anthropic().messages.create(model=MODEL, max_tokens=8, messages=MESSAGES))

    assert raised.value.body == body
    assert raised.value.request_id == "req_123"
    assert raised.value.response.headers["retry-after"] == "7"


async def test_unknown_path_is_an_anthropic_404(sdk: Sdk, server: ProviderServer) -> None:
    with pytest.raises(anthropic.NotFoundError) as raised:
        await sdk.call(sdk.anthropic().models.list())

    assert raised.value.body["error"]["type"] == "not_found_error"
    assert json.loads(raised.value.response.text)["type"] == "error"
