"""Every way a stream can end, for every provider, sync or async, and each way of opening it (the SDK's own
stream, a stream helper), ends its span exactly once and says how it ended. What only one provider's streams do
is tested under that provider."""

from __future__ import annotations

import asyncio
import gc
import inspect
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Instrument
from providers import PROVIDERS, Opened, ProviderUnderTest, StreamWay, open_stream

from costspan.testing import ProviderServer, Reply
from support import Driver

MESSAGES = [{"role": "user", "content": "Count to twenty, please."}]
TEXT = " ".join(str(n) for n in range(1, 21))
CASES = [
    pytest.param((provider, way), id=f"{provider.name}-{way.name}")
    for provider in PROVIDERS
    for way in provider.streams.ways
]


@pytest.fixture(params=CASES)
def case(request: pytest.FixtureRequest) -> tuple[ProviderUnderTest, StreamWay]:
    return request.param


@pytest.fixture
def provider(case: tuple[ProviderUnderTest, StreamWay]) -> ProviderUnderTest:
    return case[0]


@pytest.fixture
def opener(case: tuple[ProviderUnderTest, StreamWay], driver: Driver) -> Callable[[], Opened]:
    return lambda: open_stream(driver, case[1], MESSAGES)


def _reply(provider: ProviderUnderTest, **faults: Any) -> Reply:
    return Reply(text=TEXT, chunks=20, usage=provider.streams.usage, **faults)


def _assert_interrupted_input(attributes: Any, provider: ProviderUnderTest) -> None:
    exact = provider.streams.interrupted_input
    if exact is None:
        assert attributes["gen_ai.usage.input_tokens"] >= 1
    else:
        assert attributes["gen_ai.usage.input_tokens"] == exact, "the stream's exact input counts are kept"


def test_exhausted_stream_reports_provider_usage(
    opener, provider: ProviderUnderTest, driver: Driver, server: ProviderServer, otel
) -> None:
    server.push(_reply(provider))
    opened = opener()
    assert otel.spans() == []
    assert driver.collect(opened.stream)
    span = otel.span()
    assert span.attributes["costspan.stream.completed"] is True
    for name, value in provider.streams.exhausted.items():
        assert span.attributes[name] == value, name
    assert span.attributes["gen_ai.response.id"].startswith(provider.streams.response_id_prefix)
    assert span.attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert "costspan.usage.estimated" not in span.attributes
    opened.exit()
    otel.lifecycle.assert_each_ended_once()


def test_break_then_garbage_collection(
    opener, provider: ProviderUnderTest, driver: Driver, server: ProviderServer, otel
) -> None:
    server.push(_reply(provider))
    opened = opener()
    assert len(driver.collect(opened.stream, limit=4)) == 4
    assert otel.spans() == [], "the span ended while the stream was still open"
    del opened
    _collect_garbage(driver)
    span = otel.span()
    assert span.attributes["costspan.stream.completed"] is False
    assert span.attributes["costspan.usage.estimated"] is True
    assert span.attributes["gen_ai.usage.output_tokens"] >= 1
    _assert_interrupted_input(span.attributes, provider)
    otel.lifecycle.assert_each_ended_once()


def test_close(opener, provider: ProviderUnderTest, driver: Driver, server: ProviderServer, otel) -> None:
    server.push(_reply(provider))
    opened = opener()
    driver.collect(opened.stream, limit=2)
    driver.close(opened.stream)
    driver.close(opened.stream)
    assert otel.span().attributes["costspan.stream.completed"] is False
    opened.exit()
    del opened
    gc.collect()
    otel.lifecycle.assert_each_ended_once()


def test_context_manager_exit(
    opener, case: tuple[ProviderUnderTest, StreamWay], driver: Driver, server: ProviderServer, otel
) -> None:
    provider, way = case
    server.push(_reply(provider))
    opened = opener()
    assert (opened.stream is opened.manager) is way.with_gives_itself
    driver.collect(opened.stream, limit=1)
    opened.exit()
    assert otel.span().attributes["costspan.stream.completed"] is False, "the span waited for garbage collection"
    del opened
    gc.collect()
    otel.lifecycle.assert_each_ended_once()


def _bare_sdk_raises(instrument: Instrument, opener: Callable[[], Opened], driver: Driver) -> type:
    """What the same SDK release raises for the server's next reply without costspan: what a user must see with
    it. (Which class that is changes between releases: anthropic 2.17 wraps a dropped connection in
    APIConnectionError, 2.14 let the transport's error through.)"""
    with instrument.paused():
        opened = opener()
        try:
            driver.collect(opened.stream)
        except Exception as error:
            return type(error)
        finally:
            opened.exit()
    raise AssertionError("the bare SDK raised nothing")


def test_server_error_event_mid_stream(
    opener, provider: ProviderUnderTest, driver: Driver, server: ProviderServer, otel, instrument: Instrument
) -> None:
    server.push(_reply(provider, error_after=3), _reply(provider, error_after=3))
    bare = _bare_sdk_raises(instrument, opener, driver)
    opened = opener()
    with pytest.raises(bare) as raised:
        driver.collect(opened.stream)
    assert type(raised.value) is bare
    span = otel.span()
    assert span.attributes["costspan.stream.completed"] is False
    assert span.attributes["error.type"] == type(raised.value).__qualname__
    assert span.attributes["costspan.usage.estimated"] is True
    _assert_interrupted_input(span.attributes, provider)
    opened.exit()
    otel.lifecycle.assert_each_ended_once()


def test_dropped_connection(
    opener, provider: ProviderUnderTest, driver: Driver, server: ProviderServer, otel, instrument: Instrument
) -> None:
    server.push(_reply(provider, drop_after=4), _reply(provider, drop_after=4))
    bare = _bare_sdk_raises(instrument, opener, driver)
    opened = opener()
    with pytest.raises(bare) as raised:
        driver.collect(opened.stream)
    assert type(raised.value) is bare
    span = otel.span()
    assert span.attributes["costspan.stream.completed"] is False
    assert span.attributes["error.type"] == type(raised.value).__qualname__
    assert span.attributes["gen_ai.usage.output_tokens"] >= 1
    _assert_interrupted_input(span.attributes, provider)
    opened.exit()
    otel.lifecycle.assert_each_ended_once()


def test_asyncio_cancellation(
    case: tuple[ProviderUnderTest, StreamWay], server: ProviderServer, otel, instrumented: None
) -> None:
    provider, way = case
    server.push(Reply(text=TEXT, chunks=50, chunk_delay=0.05, usage=provider.streams.usage))
    client = provider.async_client(server, otel.tracer_provider, {})

    async def consume() -> None:
        manager = way.start(client, MESSAGES)
        if inspect.isawaitable(manager):
            manager = await manager
        async with manager as stream:
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
    _assert_interrupted_input(span.attributes, provider)
    otel.lifecycle.assert_each_ended_once()


def test_abandoned_stream_is_collected(
    opener, provider: ProviderUnderTest, driver: Driver, server: ProviderServer, otel
) -> None:
    server.push(_reply(provider))
    opener()
    _collect_garbage(driver)
    assert otel.span().attributes["costspan.stream.completed"] is False
    otel.lifecycle.assert_each_ended_once()


def _collect_garbage(driver: Driver) -> None:
    """Collect what was dropped. An async generator left mid-iteration is closed by its event loop, as a running
    application's loop would; one that held another (a helper's stream over costspan's) lets that one be
    collected and closed in turn, so the loop runs a few rounds."""
    gc.collect()
    for _ in range(3 if driver.is_async else 0):
        for _ in range(3):
            driver.run(asyncio.sleep(0))
        gc.collect()
