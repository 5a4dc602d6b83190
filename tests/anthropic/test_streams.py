"""Every way a Messages stream can end, raw (``create(stream=True)``) or through the ``messages.stream()`` helper,
ends its span exactly once, says how it ended, and counts usage once."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anthropic
import pytest

from costspan.testing import ProviderServer, Reply
from support import Driver

MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "Count to twenty, please."}]
TEXT = " ".join(str(n) for n in range(1, 21))
USAGE = {
    "input_tokens": 21,
    "cache_read_input_tokens": 1000,
    "cache_creation_input_tokens": 300,
    "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
    "output_tokens": 20,
}
INPUT = 21 + 1000 + 300


@dataclass
class Opened:
    stream: Any
    """What the user iterates: the SDK's Stream, or the helper's MessageStream."""
    exit: Callable[[], None]
    """Leave the stream's `with` block."""


@pytest.fixture(params=["create", "helper"])
def open_stream(request: pytest.FixtureRequest, ant: Driver, helper: Any) -> Callable[[], Opened]:
    def open_create() -> Opened:
        stream = ant.call(ant.client.messages.create, model=MODEL, max_tokens=64, messages=MESSAGES, stream=True)
        if ant.is_async:
            return Opened(stream, lambda: ant.run(stream.__aexit__(None, None, None)))
        return Opened(stream, lambda: stream.__exit__(None, None, None))

    def open_helper() -> Opened:
        manager = ant.client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES)
        return Opened(helper.enter(manager), lambda: helper.exit(manager))

    return open_create if request.param == "create" else open_helper


def test_exhausted_stream_reports_provider_usage(open_stream, ant: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(text=TEXT, chunks=20, usage=USAGE))
    opened = open_stream()
    assert otel.spans() == []
    assert ant.collect(opened.stream)
    span = otel.span()
    assert span.attributes["costspan.stream.completed"] is True
    assert span.attributes["gen_ai.usage.input_tokens"] == INPUT
    assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == 1000
    assert span.attributes["gen_ai.usage.cache_write.input_tokens"] == 300
    assert span.attributes["gen_ai.usage.output_tokens"] == 20
    assert span.attributes["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert span.attributes["gen_ai.response.id"].startswith("msg_")
    assert span.attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert "costspan.usage.estimated" not in span.attributes
    opened.exit()
    otel.lifecycle.assert_each_ended_once()


def test_repeated_cumulative_usage_is_counted_once(open_stream, ant: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(text=TEXT, chunks=5, usage=USAGE, usage_updates=3))
    opened = open_stream()
    deltas = [event for event in ant.collect(opened.stream) if event.type == "message_delta"]
    assert len(deltas) == 3 and all(delta.usage.output_tokens == 20 for delta in deltas)
    attributes = otel.span().attributes
    assert attributes["gen_ai.usage.input_tokens"] == INPUT
    assert attributes["gen_ai.usage.output_tokens"] == 20
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 1000
    opened.exit()


def test_stopped_after_first_text_delta_keeps_exact_input(
    open_stream, ant: Driver, server: ProviderServer, otel
) -> None:
    server.push(Reply(text=TEXT, chunks=20, usage=USAGE))
    opened = open_stream()
    # message_start, content_block_start, then the first text delta
    assert ant.collect(opened.stream, limit=3)[-1].type == "content_block_delta"
    ant.close(opened.stream)
    attributes = otel.span().attributes
    assert attributes["costspan.stream.completed"] is False
    assert attributes["costspan.usage.estimated"] is True
    assert attributes["gen_ai.usage.input_tokens"] == INPUT, "message_start's exact input counts are kept"
    assert attributes["gen_ai.usage.cache_write.input_tokens"] == 300
    assert 1 <= attributes["gen_ai.usage.output_tokens"] < 20
    assert attributes["gen_ai.usage.cost.amount"] > 0
    opened.exit()
    otel.lifecycle.assert_each_ended_once()


def test_break_then_garbage_collection(open_stream, ant: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(text=TEXT, chunks=20, usage=USAGE))
    opened = open_stream()
    assert len(ant.collect(opened.stream, limit=4)) == 4
    assert otel.spans() == [], "the span ended while the stream was still open"
    del opened
    _collect_garbage(ant)
    span = otel.span()
    assert span.attributes["costspan.stream.completed"] is False
    assert span.attributes["costspan.usage.estimated"] is True
    assert span.attributes["gen_ai.usage.input_tokens"] == INPUT
    otel.lifecycle.assert_each_ended_once()


def test_close(open_stream, ant: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(text=TEXT, chunks=20, usage=USAGE))
    opened = open_stream()
    ant.collect(opened.stream, limit=2)
    ant.close(opened.stream)
    ant.close(opened.stream)
    assert otel.span().attributes["costspan.stream.completed"] is False
    opened.exit()
    del opened
    gc.collect()
    otel.lifecycle.assert_each_ended_once()


def test_context_manager_exit(open_stream, ant: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(text=TEXT, chunks=20, usage=USAGE))
    opened = open_stream()
    ant.collect(opened.stream, limit=1)
    opened.exit()
    assert otel.span().attributes["costspan.stream.completed"] is False, "the span waited for garbage collection"
    del opened
    gc.collect()
    otel.lifecycle.assert_each_ended_once()


def test_server_error_event_mid_stream(open_stream, ant: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(text=TEXT, chunks=20, usage=USAGE, error_after=3))
    opened = open_stream()
    with pytest.raises(anthropic.APIStatusError) as raised:
        ant.collect(opened.stream)
    span = otel.span()
    assert span.attributes["costspan.stream.completed"] is False
    assert span.attributes["error.type"] == type(raised.value).__qualname__
    assert span.attributes["costspan.usage.estimated"] is True
    assert span.attributes["gen_ai.usage.input_tokens"] == INPUT
    opened.exit()
    otel.lifecycle.assert_each_ended_once()


def test_dropped_connection(open_stream, ant: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(text=TEXT, chunks=20, usage=USAGE, drop_after=4))
    opened = open_stream()
    with pytest.raises(Exception) as raised:
        ant.collect(opened.stream)
    span = otel.span()
    assert span.attributes["costspan.stream.completed"] is False
    assert span.attributes["error.type"] == type(raised.value).__qualname__
    assert span.attributes["gen_ai.usage.output_tokens"] >= 1
    assert span.attributes["gen_ai.usage.input_tokens"] == INPUT
    opened.exit()
    otel.lifecycle.assert_each_ended_once()


def test_abandoned_stream_is_collected(open_stream, ant: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(text=TEXT, chunks=20, usage=USAGE))
    open_stream()
    _collect_garbage(ant)
    assert otel.span().attributes["costspan.stream.completed"] is False
    otel.lifecycle.assert_each_ended_once()


def test_helper_never_entered_sends_nothing(ant: Driver, server: ProviderServer, otel) -> None:
    manager = ant.client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del manager
        gc.collect()
    assert server.requests == []
    assert otel.spans() == []
    never_awaited = [w for w in caught if "was never awaited" in str(w.message)]
    assert len(never_awaited) == (1 if ant.is_async else 0), "only the SDK's own request coroutine, as without costspan"


@pytest.mark.parametrize("how", ["create", "helper"])
def test_asyncio_cancellation(how: str, server: ProviderServer, otel, client_options, instrumented: None) -> None:
    server.push(Reply(text=TEXT, chunks=50, chunk_delay=0.05, usage=USAGE))
    client = anthropic.AsyncAnthropic(**client_options())

    async def consume() -> None:
        if how == "create":
            stream = await client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, stream=True)
            async for _ in stream:
                pass
        else:
            async with client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
                async for _ in stream.text_stream:
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
    assert span.attributes["gen_ai.usage.input_tokens"] == INPUT
    otel.lifecycle.assert_each_ended_once()


def _collect_garbage(ant: Driver) -> None:
    """Collect what was dropped. An async generator left mid-iteration (the helper's ``__aiter__``) is closed by
    its event loop, as a running application's loop would, before what it holds can be collected."""
    gc.collect()
    if ant.is_async:
        for _ in range(3):
            ant.run(asyncio.sleep(0))
        gc.collect()
