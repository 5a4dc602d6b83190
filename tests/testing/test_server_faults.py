"""Scripted faults as the real clients see them: delays, timeouts, dropped connections, in-stream errors."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import anthropic
import openai
import pytest
from server_streams import ANTHROPIC_APIS, STREAMING_APIS, client_for, open_stream, text_deltas

from costspan.testing import ProviderServer, Reply

if TYPE_CHECKING:
    from conftest import Sdk


@pytest.mark.parametrize("api", ["chat", "anthropic"])
async def test_delay_beyond_client_timeout(sdk: Sdk, server: ProviderServer, api: str) -> None:
    server.push(Reply(delay=1.0))
    client = client_for(sdk, api, timeout=0.2)

    with pytest.raises((openai.APITimeoutError, anthropic.APITimeoutError)) as raised:
        await sdk.call(open_stream(client, api))

    assert raised.type is (openai.APITimeoutError if api == "chat" else anthropic.APITimeoutError)


@pytest.mark.parametrize("api", ["chat", "anthropic"])
async def test_first_chunk_and_chunk_delays(sdk: Sdk, server: ProviderServer, api: str) -> None:
    server.push(Reply(chunks=3, first_chunk_delay=0.2, chunk_delay=0.05))
    began = time.perf_counter()
    stream = await sdk.call(open_stream(client_for(sdk, api), api))
    opened = time.perf_counter() - began
    arrivals: list[float] = []

    if sdk.is_async:
        async for _ in stream:
            arrivals.append(time.perf_counter() - began)
    else:
        for _ in stream:
            arrivals.append(time.perf_counter() - began)

    assert opened < arrivals[0]
    assert arrivals[0] >= 0.2
    assert arrivals[-1] - arrivals[0] >= 0.05 * 3


def assert_dropped_connection(raised: BaseException) -> None:
    """The client saw the connection end before the body did: the transport's RemoteProtocolError, raised as it
    is or wrapped by the SDK (as APIConnectionError, by openai 3 and anthropic 2.17; earlier releases let it
    through). Which of the two is the SDK's choice, and may change in any release: the server's promise is only
    that the client sees a connection dropped mid-body."""
    chain = []
    error: BaseException | None = raised
    while error is not None and len(chain) < 10:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert any(type(e).__name__ == "RemoteProtocolError" and type(e).__module__.startswith("httpx") for e in chain), (
        f"not a dropped connection: {[type(e) for e in chain]}"
    )
    sdk = type(raised).__module__.split(".")[0]
    assert sdk.startswith("httpx") or isinstance(raised, (openai.APIConnectionError, anthropic.APIConnectionError))


@pytest.mark.parametrize("api", STREAMING_APIS)
@pytest.mark.parametrize("drop_after", [0, 2, 10])
async def test_drop_after(sdk: Sdk, server: ProviderServer, api: str, drop_after: int) -> None:
    server.push(Reply(text="one two three four", chunks=4, drop_after=drop_after))
    seen: list[Any] = []
    stream = await sdk.call(open_stream(client_for(sdk, api), api))

    with pytest.raises(Exception) as raised:
        await sdk.drain(stream, into=seen)

    assert_dropped_connection(raised.value)
    assert text_deltas(seen) == ["one", " two", " three", " four"][:drop_after]


@pytest.mark.parametrize("api", ["chat", "completions"])
async def test_error_after_openai(sdk: Sdk, server: ProviderServer, api: str) -> None:
    server.push(Reply(chunks=4, error_after=2))
    seen: list[Any] = []
    stream = await sdk.call(open_stream(client_for(sdk, api), api))

    with pytest.raises(openai.APIError) as raised:
        await sdk.drain(stream, into=seen)

    assert type(raised.value) is openai.APIError
    assert raised.value.type == "server_error"
    assert len(text_deltas(seen)) == 2


async def test_error_after_openai_responses_is_a_failed_event(sdk: Sdk, server: ProviderServer) -> None:
    server.push(Reply(text="a b c d", chunks=4, error_after=3))

    events = await sdk.drain(await sdk.call(open_stream(client_for(sdk, "responses"), "responses")))

    assert text_deltas(events) == ["a", " b", " c"]
    failed = events[-1]
    assert failed.type == "response.failed"
    assert (failed.response.status, failed.response.error.code) == ("failed", "server_error")
    assert failed.response.output[0].content[0].text == "a b c"
    assert failed.response.usage is None


@pytest.mark.parametrize("api", ANTHROPIC_APIS)
async def test_error_after_anthropic(sdk: Sdk, server: ProviderServer, api: str) -> None:
    server.push(Reply(chunks=4, error_after=1))
    seen: list[Any] = []
    stream = await sdk.call(open_stream(client_for(sdk, api), api))

    with pytest.raises(anthropic.APIStatusError) as raised:
        await sdk.drain(stream, into=seen)

    assert type(raised.value) is anthropic.APIStatusError
    expected = "modelStreamErrorException" if api == "bedrock" else "overloaded_error"
    assert raised.value.body["error"]["type"] == expected
    assert len(text_deltas(seen)) == 1
    assert "message_delta" not in [e.type for e in seen]


async def test_error_after_uses_the_scripted_error_body(sdk: Sdk, server: ProviderServer) -> None:
    body = {"type": "error", "error": {"type": "api_error", "message": "boom"}}
    server.push(Reply(chunks=2, error_after=0, error_body=body))

    with pytest.raises(anthropic.APIStatusError) as raised:
        await sdk.drain(await sdk.call(open_stream(client_for(sdk, "anthropic"), "anthropic")))

    assert raised.value.body == body


@pytest.mark.parametrize("api", ["chat", "anthropic"])
async def test_client_recovers_after_a_drop_or_an_abandoned_stream(sdk: Sdk, server: ProviderServer, api: str) -> None:
    server.push(Reply(chunks=3, drop_after=1), Reply(chunks=50, chunk_delay=0.01), Reply(chunks=2))
    client = client_for(sdk, api)
    with pytest.raises(Exception) as raised:
        await sdk.drain(await sdk.call(open_stream(client, api)))
    assert_dropped_connection(raised.value)

    abandoned = await sdk.call(open_stream(client, api))
    await sdk.call(abandoned.close())
    finished = await sdk.drain(await sdk.call(open_stream(client, api)))
    answer = await sdk.call(open_stream(client, api))

    assert len(text_deltas(finished)) == 2
    assert len(text_deltas(await sdk.drain(answer))) == len(Reply().text.split())


@pytest.mark.parametrize("api", ["chat", "anthropic"])
async def test_hangup_is_seen_when_the_client_closes_mid_pause(sdk: Sdk, server: ProviderServer, api: str) -> None:
    """A client that closes a stream while the server waits between chunks (a provider thinking) is a hang-up at
    once, not only when the server next writes: tests of how fast a client lets go of a stream rely on it."""
    server.push(Reply(chunks=4, chunk_delay=2.0))
    stream = await sdk.call(open_stream(client_for(sdk, api), api))
    await sdk.call(stream.close())
    closed = time.monotonic()
    while not server.hangups:
        assert time.monotonic() - closed < 1.0, "the hang-up was not seen within a second"
        time.sleep(0.01)
    assert [request.path for request in server.hangups] == [server.requests[0].path]


async def test_stream_read_to_its_end_is_no_hangup(sdk: Sdk, server: ProviderServer) -> None:
    server.push(Reply(chunks=3, chunk_delay=0.01))
    await sdk.drain(await sdk.call(open_stream(client_for(sdk, "anthropic"), "anthropic")))
    time.sleep(0.1)
    assert server.hangups == []
