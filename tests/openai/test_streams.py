"""Every way a chat stream can end ends its span exactly once, and says how it ended."""

from __future__ import annotations

import asyncio
import gc

import openai
import pytest

from costspan.testing import ProviderServer, Reply
from support import Driver

MESSAGES = [{"role": "user", "content": "Count to twenty, please."}]
USAGE = {"prompt_tokens": 21, "completion_tokens": 20, "total_tokens": 41}


def _stream(oai: Driver, **kwargs: object) -> object:
    return oai.call(oai.client.chat.completions.create, model="gpt-4.1-mini", messages=MESSAGES, stream=True, **kwargs)


def test_exhausted_stream_reports_provider_usage(oai: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(chunks=20, usage=USAGE))
    chunks = oai.collect(_stream(oai))
    span = otel.span()
    assert span.attributes["costspan.stream.completed"] is True
    assert span.attributes["gen_ai.usage.input_tokens"] == 21
    assert span.attributes["gen_ai.usage.output_tokens"] == 20
    assert "costspan.usage.estimated" not in span.attributes
    assert span.attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert all(chunk.choices for chunk in chunks), "the usage chunk costspan asked for reached the user"
    assert server.requests[-1].body["stream_options"] == {"include_usage": True}
    otel.lifecycle.assert_each_ended_once()


def test_user_requested_usage_chunk_is_kept(oai: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(chunks=5, usage=USAGE))
    chunks = oai.collect(_stream(oai, stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    assert otel.span().attributes["gen_ai.usage.output_tokens"] == 20


def test_break_then_garbage_collection(oai: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(chunks=20, usage=USAGE))
    stream = _stream(oai)
    assert len(oai.collect(stream, limit=3)) == 3
    assert otel.spans() == [], "the span ended while the stream was still open"
    del stream
    gc.collect()
    span = otel.span()
    assert span.attributes["costspan.stream.completed"] is False
    assert span.attributes["costspan.usage.estimated"] is True
    assert span.attributes["gen_ai.usage.output_tokens"] >= 1
    assert span.attributes["gen_ai.usage.input_tokens"] >= 1
    otel.lifecycle.assert_each_ended_once()


def test_close(oai: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(chunks=20, usage=USAGE))
    stream = _stream(oai)
    oai.collect(stream, limit=2)
    oai.close(stream)
    oai.close(stream)
    assert otel.span().attributes["costspan.stream.completed"] is False
    del stream
    gc.collect()
    otel.lifecycle.assert_each_ended_once()


def test_context_manager_exit(oai: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(chunks=20, usage=USAGE))
    stream = _stream(oai)
    if oai.is_async:

        async def use() -> None:
            async with stream as entered:
                assert entered is stream
                async for _ in entered:
                    break

        oai.run(use())
    else:
        with stream as entered:
            assert entered is stream
            for _ in entered:
                break
    assert otel.span().attributes["costspan.stream.completed"] is False
    otel.lifecycle.assert_each_ended_once()


def test_server_error_mid_stream(oai: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(chunks=20, error_after=3))
    with pytest.raises(openai.APIError) as raised:
        oai.collect(_stream(oai))
    span = otel.span()
    assert span.attributes["costspan.stream.completed"] is False
    assert span.attributes["error.type"] == type(raised.value).__qualname__
    assert span.attributes["costspan.usage.estimated"] is True
    otel.lifecycle.assert_each_ended_once()


def test_dropped_connection(oai: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(chunks=20, drop_after=4))
    with pytest.raises(Exception) as raised:
        oai.collect(_stream(oai))
    span = otel.span()
    assert span.attributes["costspan.stream.completed"] is False
    assert span.attributes["error.type"] == type(raised.value).__qualname__
    assert span.attributes["gen_ai.usage.output_tokens"] >= 1
    otel.lifecycle.assert_each_ended_once()


def test_asyncio_cancellation(server: ProviderServer, otel, instrumented: None) -> None:
    server.push(Reply(chunks=50, chunk_delay=0.05, usage=USAGE))
    client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0)

    async def consume() -> None:
        stream = await client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, stream=True)
        async for _ in stream:
            pass

    async def main() -> None:
        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.close()

    asyncio.run(main())
    gc.collect()
    span = otel.span()
    assert span.attributes["costspan.stream.completed"] is False
    assert span.attributes["error.type"] == "CancelledError"
    otel.lifecycle.assert_each_ended_once()


def test_abandoned_stream_is_collected(oai: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(chunks=20, usage=USAGE))
    _stream(oai)
    gc.collect()
    assert otel.span().attributes["costspan.stream.completed"] is False
    otel.lifecycle.assert_each_ended_once()
