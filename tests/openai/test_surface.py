"""What the user sees is exactly what the SDK gives without costspan: chunks, types, helpers, raw responses
and exceptions."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from conftest import Instrument

from costspan.testing import ProviderServer, Reply
from support import Driver, scrub

MESSAGES = [{"role": "user", "content": "Say hello."}]


def _dump(items: list[Any]) -> list[Any]:
    return [scrub(item) for item in items]


def test_chat_chunks_unchanged(oai: Driver, server: ProviderServer, bare_then_instrumented, otel) -> None:
    def run() -> tuple[type, type, list[Any]]:
        server.push(Reply(chunks=7, usage={"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}))
        stream = oai.call(oai.client.chat.completions.create, model="gpt-4.1", messages=MESSAGES, stream=True)
        assert isinstance(stream, openai.AsyncStream if oai.is_async else openai.Stream)
        # The response's class is the SDK release's transport's (httpx before openai 3, httpx2 since): the same
        # with costspan as without.
        return stream.__class__, stream.response.__class__, oai.collect(stream)

    (*bare_types, bare), (*instrumented_types, instrumented) = bare_then_instrumented(run)
    assert bare_types == instrumented_types
    assert _dump(bare) == _dump(instrumented)
    assert instrumented and all(chunk.choices for chunk in instrumented)
    assert len(otel.spans()) == 1


def test_chat_stream_helper_events_unchanged(oai: Driver, server: ProviderServer, bare_then_instrumented, otel) -> None:
    def run() -> list[Any]:
        server.push(Reply(chunks=4, usage={"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}))
        manager = oai.client.chat.completions.stream(model="gpt-4.1", messages=MESSAGES)
        if oai.is_async:

            async def use() -> list[Any]:
                async with manager as stream:
                    events = [event async for event in stream]
                    final = await stream.get_final_completion()
                return [*events, final.choices[0].message.content]

            return oai.run(use())
        with manager as stream:
            events = list(stream)
            return [*events, stream.get_final_completion().choices[0].message.content]

    bare, instrumented = bare_then_instrumented(run)
    assert [type(e) for e in bare] == [type(e) for e in instrumented]
    assert _dump(bare) == _dump(instrumented)
    span = otel.span()
    assert span.attributes["gen_ai.usage.output_tokens"] == 4
    assert span.attributes["costspan.stream.completed"] is True
    otel.lifecycle.assert_each_ended_once()


def test_responses_stream_helper_unchanged(oai: Driver, server: ProviderServer, bare_then_instrumented, otel) -> None:
    usage = {
        "input_tokens": 9,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 12,
    }

    def run() -> list[Any]:
        server.push(Reply(chunks=3, usage=usage))
        manager = oai.client.responses.stream(model="gpt-4.1", input="Say hello.")
        if oai.is_async:

            async def use() -> list[Any]:
                async with manager as stream:
                    events = [event.type async for event in stream]
                    final = await stream.get_final_response()
                return [*events, final.output_text]

            return oai.run(use())
        with manager as stream:
            events = [event.type for event in stream]
            return [*events, stream.get_final_response().output_text]

    bare, instrumented = bare_then_instrumented(run)
    assert bare == instrumented
    span = otel.span()
    assert span.attributes["gen_ai.usage.input_tokens"] == 9
    assert span.attributes["costspan.stream.completed"] is True


def test_raw_response_headers_and_parse(oai: Driver, server: ProviderServer, otel) -> None:
    server.push(
        Reply(
            headers={"x-request-id": "req_raw_1"},
            usage={"prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10},
        )
    )
    raw = oai.call(oai.client.chat.completions.with_raw_response.create, model="gpt-4.1", messages=MESSAGES)
    assert len(otel.spans()) == 1, "the exchange was over: the span must not wait for parse()"
    assert isinstance(raw, openai._legacy_response.LegacyAPIResponse)
    assert raw.headers["x-request-id"] == "req_raw_1"
    completion = raw.parse()
    assert completion is raw.parse()
    assert isinstance(completion, openai.types.chat.ChatCompletion)
    span = otel.span()
    assert span.attributes["gen_ai.usage.input_tokens"] == 8
    assert server.requests[-1].body.get("stream_options") is None


def test_raw_stream_is_never_altered(oai: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(chunks=5))
    raw = oai.call(
        oai.client.chat.completions.with_raw_response.create, model="gpt-4.1", messages=MESSAGES, stream=True
    )
    chunks = oai.collect(raw.parse())
    assert sum(1 for chunk in chunks if chunk.choices and chunk.choices[0].delta.content) == 5
    assert "stream_options" not in server.requests[-1].body
    span = otel.span()
    assert span.attributes["costspan.stream.completed"] is True
    assert span.attributes["costspan.usage.estimated"] is True


def test_streaming_response_parse(oai: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(usage={"prompt_tokens": 6, "completion_tokens": 3, "total_tokens": 9}))
    manager = oai.client.chat.completions.with_streaming_response.create(model="gpt-4.1", messages=MESSAGES)
    if oai.is_async:

        async def use() -> Any:
            async with manager as response:
                assert response.headers["content-type"].startswith("application/json")
                return await response.parse()

        completion = oai.run(use())
    else:
        with manager as response:
            assert response.headers["content-type"].startswith("application/json")
            completion = response.parse()
    assert completion.usage.prompt_tokens == 6
    assert otel.span().attributes["gen_ai.usage.input_tokens"] == 6
    otel.lifecycle.assert_each_ended_once()


@pytest.mark.parametrize("status", [429, 500, 400])
def test_http_errors_pass_through(
    oai: Driver, server: ProviderServer, otel, instrument: Instrument, status: int
) -> None:
    server.push(Reply(status=status), Reply(status=status))
    with instrument.paused(), pytest.raises(openai.APIStatusError) as bare:
        oai.call(oai.client.chat.completions.create, model="gpt-4.1", messages=MESSAGES)
    error = type(bare.value)
    with pytest.raises(error) as raised:
        oai.call(oai.client.chat.completions.create, model="gpt-4.1", messages=MESSAGES)
    assert type(raised.value) is error
    assert raised.value.status_code == status
    span = otel.span()
    assert span.attributes["error.type"] == error.__qualname__
    assert "gen_ai.usage.input_tokens" not in span.attributes
    assert "gen_ai.usage.cost.amount" not in span.attributes


def test_streaming_response_stream(oai: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(chunks=6))
    manager = oai.client.chat.completions.with_streaming_response.create(
        model="gpt-4.1", messages=MESSAGES, stream=True
    )
    if oai.is_async:

        async def use() -> list[Any]:
            async with manager as response:
                return [chunk async for chunk in await response.parse()]

        chunks = oai.run(use())
    else:
        with manager as response:
            chunks = list(response.parse())
    assert sum(1 for chunk in chunks if chunk.choices and chunk.choices[0].delta.content) == 6
    assert "stream_options" not in server.requests[-1].body
    span = otel.span()
    assert span.attributes["costspan.stream.completed"] is True
    otel.lifecycle.assert_each_ended_once()
