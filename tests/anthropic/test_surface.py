"""What the user sees is exactly what the anthropic SDK gives without costspan: events, types, the stream helper's
methods, raw responses and exceptions."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import pydantic
import pytest
from anthropic.lib.streaming import AsyncMessageStream, MessageStream
from conftest import Instrument

from costspan.testing import ProviderServer, Reply
from support import Driver, scrub

MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "Say hello."}]
USAGE = {"input_tokens": 9, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0, "output_tokens": 5}


def test_stream_events_unchanged(ant: Driver, server: ProviderServer, bare_then_instrumented, otel) -> None:
    def run() -> list[Any]:
        server.push(Reply(chunks=7, usage=USAGE))
        stream = ant.call(ant.client.messages.create, model=MODEL, max_tokens=64, messages=MESSAGES, stream=True)
        assert isinstance(stream, anthropic.AsyncStream if ant.is_async else anthropic.Stream)
        assert isinstance(stream.response, httpx2.Response)
        return ant.collect(stream)

    bare, instrumented = bare_then_instrumented(run)
    assert [type(event) for event in bare] == [type(event) for event in instrumented]
    assert scrub(bare) == scrub(instrumented)
    assert otel.span().attributes["gen_ai.usage.output_tokens"] == 5


def test_stream_helper_unchanged(
    ant: Driver, server: ProviderServer, helper: Any, bare_then_instrumented, otel
) -> None:
    def run() -> list[Any]:
        server.push(Reply(chunks=4, usage=USAGE))
        manager = ant.client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES)
        stream = helper.enter(manager)
        assert type(stream) is (AsyncMessageStream if ant.is_async else MessageStream)
        events = ant.collect(stream)
        final = ant.run(stream.get_final_message())
        text = ant.run(stream.get_final_text())
        snapshot = stream.current_message_snapshot
        request_id = stream.request_id
        helper.exit(manager)
        return [*events, final, text, snapshot, bool(request_id)]

    bare, instrumented = bare_then_instrumented(run)
    assert [type(item) for item in bare] == [type(item) for item in instrumented]
    assert scrub(bare) == scrub(instrumented)
    span = otel.span()
    assert span.attributes["gen_ai.usage.output_tokens"] == 5
    assert span.attributes["costspan.stream.completed"] is True
    otel.lifecycle.assert_each_ended_once()


@pytest.mark.parametrize("read", ["text_stream", "until_done", "get_final_message"])
def test_helper_readers_unchanged(
    ant: Driver, server: ProviderServer, helper: Any, bare_then_instrumented, otel, read: str
) -> None:
    def run() -> Any:
        server.push(Reply(chunks=6, usage=USAGE))
        manager = ant.client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES)
        stream = helper.enter(manager)
        if read == "text_stream":
            result = ant.collect(stream.text_stream)
        elif read == "until_done":
            result = ant.run(stream.until_done())
        else:
            result = ant.run(stream.get_final_message())
        helper.exit(manager)
        return result

    bare, instrumented = bare_then_instrumented(run)
    assert type(bare) is type(instrumented)
    assert scrub(bare) == scrub(instrumented)
    span = otel.span()
    assert span.attributes["costspan.stream.completed"] is True
    assert span.attributes["gen_ai.usage.input_tokens"] == 9
    otel.lifecycle.assert_each_ended_once()


def test_parse_unchanged(ant: Driver, server: ProviderServer, bare_then_instrumented, otel) -> None:
    class Answer(pydantic.BaseModel):
        answer: str

    def run() -> Any:
        server.push(Reply(text='{"answer": "4"}', usage=USAGE))
        return ant.call(ant.client.messages.parse, model=MODEL, max_tokens=64, messages=MESSAGES, output_format=Answer)

    bare, instrumented = bare_then_instrumented(run)
    assert type(bare) is type(instrumented)
    assert instrumented.parsed_output == Answer(answer="4")
    assert otel.span().attributes["gen_ai.usage.input_tokens"] == 9


def test_raw_response_headers_and_parse(ant: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(headers={"request-id": "req_raw_1"}, usage=USAGE))
    raw = ant.call(ant.client.messages.with_raw_response.create, model=MODEL, max_tokens=64, messages=MESSAGES)
    assert isinstance(raw, anthropic.AsyncAPIResponse if ant.is_async else anthropic.APIResponse)
    assert raw.headers["request-id"] == "req_raw_1"
    message = ant.run(raw.parse())
    assert message is ant.run(raw.parse())
    assert isinstance(message, anthropic.types.Message)
    span = otel.span()
    assert span.attributes["gen_ai.usage.input_tokens"] == 9
    assert span.attributes["gen_ai.response.id"] == message.id


def test_raw_stream(ant: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(chunks=5, usage=USAGE))
    raw = ant.call(
        ant.client.messages.with_raw_response.create, model=MODEL, max_tokens=64, messages=MESSAGES, stream=True
    )
    events = ant.collect(ant.run(raw.parse()))
    assert sum(1 for event in events if event.type == "content_block_delta") == 5
    span = otel.span()
    assert span.attributes["costspan.stream.completed"] is True
    assert span.attributes["gen_ai.usage.output_tokens"] == 5
    assert "costspan.usage.estimated" not in span.attributes


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_streaming_response(ant: Driver, server: ProviderServer, otel, stream: bool) -> None:
    server.push(Reply(chunks=3, usage=USAGE))
    manager = ant.client.messages.with_streaming_response.create(
        model=MODEL, max_tokens=64, messages=MESSAGES, stream=stream
    )
    if ant.is_async:

        async def use() -> Any:
            async with manager as response:
                parsed = await response.parse()
                return [event async for event in parsed] if stream else parsed

        result = ant.run(use())
    else:
        with manager as response:
            parsed = response.parse()
            result = list(parsed) if stream else parsed
    assert result[-1].type == "message_stop" if stream else result.usage.input_tokens == 9
    assert otel.span().attributes["gen_ai.usage.input_tokens"] == 9
    otel.lifecycle.assert_each_ended_once()


def test_count_tokens_raw_response(ant: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(usage={"input_tokens": 42}))
    raw = ant.call(ant.client.messages.with_raw_response.count_tokens, model=MODEL, messages=MESSAGES)
    assert ant.run(raw.parse()).input_tokens == 42
    assert otel.span().attributes["anthropic.message.count_tokens.input_tokens"] == 42


@pytest.mark.parametrize("status", [400, 429, 500, 529])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_http_errors_pass_through(
    ant: Driver, server: ProviderServer, otel, instrument: Instrument, status: int, stream: bool
) -> None:
    server.push(Reply(status=status), Reply(status=status))
    with instrument.paused(), pytest.raises(anthropic.APIStatusError) as bare:
        ant.call(ant.client.messages.create, model=MODEL, max_tokens=64, messages=MESSAGES, stream=stream)
    error = type(bare.value)  # the SDK release's class for the status: 529's changed in anthropic 2.5
    with pytest.raises(error) as raised:
        ant.call(ant.client.messages.create, model=MODEL, max_tokens=64, messages=MESSAGES, stream=stream)
    assert type(raised.value) is error
    assert raised.value.status_code == status
    span = otel.span()
    assert span.attributes["error.type"] == error.__qualname__
    assert "gen_ai.usage.input_tokens" not in span.attributes
    assert "gen_ai.usage.cost.amount" not in span.attributes


def test_helper_http_error_passes_through(ant: Driver, server: ProviderServer, helper: Any, otel) -> None:
    server.push(Reply(status=429))
    manager = ant.client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES)
    with pytest.raises(anthropic.RateLimitError):
        helper.enter(manager)
    assert otel.span().attributes["error.type"] == "RateLimitError"
    otel.lifecycle.assert_each_ended_once()
