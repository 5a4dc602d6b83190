"""Streams read the way users write them: the providers' docs, our README and real services.

Every idiom runs twice, once with costspan's patches switched off (OpenTelemetry's suppress_instrumentation) and
once instrumented, against the same scripted exchange: the user must get the same chunks both times, and the
instrumented run must end exactly one span, once, with the provider's exact usage and its cost (a stream read to
the end) or with the stream marked incomplete and its usage estimated where the provider sent none (a stream left
early). The inline form, ``for chunk in client.chat.completions.create(..., stream=True)``, keeps no reference to
the stream: it is the commonest idiom, and the one a test that names the stream never sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest
from gemini.helpers import drive as gemini_drive
from opentelemetry.instrumentation.utils import suppress_instrumentation
from providers import ANTHROPIC_STREAM_USAGE

import costspan
from costspan.testing import ProviderServer, Reply
from support import API_KEY, Driver, make_driver, scrub

MESSAGES = [{"role": "user", "content": "Count to twenty, please."}]
TEXT = " ".join(str(n) for n in range(1, 21))
EARLY = 3  # chunks of text a user reads before leaving a stream


@dataclass(frozen=True)
class Target:
    """One streaming endpoint, as a user opens it and reads its text."""

    name: str
    sdk: str
    open: Callable[[Any], Any]
    """client -> the SDK's stream (an awaitable of it, on an async client)."""
    text: Callable[[Any], str]
    """The text one chunk or event carries ("" for the others)."""
    wire_usage: dict[str, Any]
    """The usage the server reports, in the provider's own shape."""
    usage: costspan.Usage
    """What costspan must report for it."""
    model: str
    managed: bool = True
    """Whether the stream is a context manager with ``close()`` (the Stainless SDKs'); google-genai's is a plain
    generator."""


def _chat_text(chunk: Any) -> str:
    return (chunk.choices[0].delta.content or "") if chunk.choices else ""


def _responses_text(event: Any) -> str:
    return event.delta if event.type == "response.output_text.delta" else ""


def _completion_text(chunk: Any) -> str:
    return chunk.choices[0].text if chunk.choices else ""


def _messages_text(event: Any) -> str:
    return event.delta.text if event.type == "content_block_delta" else ""


def _gemini_text(chunk: Any) -> str:
    return chunk.text or ""


TARGETS = [
    Target(
        "chat",
        "openai",
        lambda client: client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True),
        _chat_text,
        {"prompt_tokens": 420, "completion_tokens": 20, "total_tokens": 440,
         "prompt_tokens_details": {"cached_tokens": 128}},
        costspan.Usage(input_tokens=420, output_tokens=20, cache_read_tokens=128),
        "gpt-4.1",
    ),
    Target(
        "responses",
        "openai",
        lambda client: client.responses.create(model="gpt-4.1", input="Count to twenty.", stream=True),
        _responses_text,
        {"input_tokens": 420, "output_tokens": 20, "total_tokens": 440,
         "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}},
        costspan.Usage(input_tokens=420, output_tokens=20),
        "gpt-4.1",
    ),
    Target(
        "completions",
        "openai",
        lambda client: client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Count:", stream=True),
        _completion_text,
        {"prompt_tokens": 420, "completion_tokens": 20, "total_tokens": 440},
        costspan.Usage(input_tokens=420, output_tokens=20),
        "gpt-3.5-turbo-instruct",
    ),
    Target(
        "messages",
        "anthropic",
        lambda client: client.messages.create(
            model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES, stream=True
        ),
        _messages_text,
        ANTHROPIC_STREAM_USAGE,
        costspan.Usage(
            input_tokens=1321, output_tokens=20, cache_read_tokens=1000, cache_write_tokens=300,
            cache_write_1h_tokens=200,
        ),
        "claude-haiku-4-5",
    ),
    Target(
        "gemini",
        "google",
        lambda client: client.models.generate_content_stream(model="gemini-2.5-flash", contents="Count to twenty."),
        _gemini_text,
        {"promptTokenCount": 420, "candidatesTokenCount": 12, "thoughtsTokenCount": 8, "cachedContentTokenCount": 128},
        costspan.Usage(input_tokens=420, output_tokens=20, cache_read_tokens=128, reasoning_tokens=8),
        "gemini-2.5-flash",
        managed=False,
    ),
]  # fmt: skip


# Idioms: (name, sync form, async form, reads to the end). A form takes a zero-argument opener (which returns the
# stream, or on an async client an awaitable of it) and the target's text reader, and returns what the user got.
def inline_for(open_: Callable[[], Any], text: Callable[[Any], str]) -> list[Any]:
    got = []
    for chunk in open_():
        got.append(chunk)
    return got


async def inline_async_for(open_: Callable[[], Any], text: Callable[[Any], str]) -> list[Any]:
    got = []
    async for chunk in await open_():
        got.append(chunk)
    return got


def named(open_: Callable[[], Any], text: Callable[[Any], str]) -> list[Any]:
    stream = open_()
    got = []
    for chunk in stream:
        got.append(chunk)
    return got


async def named_async(open_: Callable[[], Any], text: Callable[[Any], str]) -> list[Any]:
    stream = await open_()
    got = []
    async for chunk in stream:
        got.append(chunk)
    return got


def with_block(open_: Callable[[], Any], text: Callable[[Any], str]) -> list[Any]:
    with open_() as stream:
        return [chunk for chunk in stream]


async def async_with_block(open_: Callable[[], Any], text: Callable[[Any], str]) -> list[Any]:
    async with await open_() as stream:
        return [chunk async for chunk in stream]


def as_list(open_: Callable[[], Any], text: Callable[[Any], str]) -> list[Any]:
    return list(open_())


async def as_list_async(open_: Callable[[], Any], text: Callable[[Any], str]) -> list[Any]:
    return [chunk async for chunk in await open_()]


def joined(open_: Callable[[], Any], text: Callable[[Any], str]) -> str:
    return "".join(text(chunk) for chunk in open_())


async def joined_async(open_: Callable[[], Any], text: Callable[[Any], str]) -> str:
    return "".join([text(chunk) async for chunk in await open_()])


def next_loop(open_: Callable[[], Any], text: Callable[[Any], str]) -> list[Any]:
    stream = open_()
    got = []
    while True:
        try:
            got.append(next(stream))
        except StopIteration:
            return got


async def anext_loop(open_: Callable[[], Any], text: Callable[[Any], str]) -> list[Any]:
    stream = await open_()
    got = []
    while True:
        try:
            got.append(await anext(stream))
        except StopAsyncIteration:
            return got


def sse_lines(open_: Callable[[], Any], text: Callable[[Any], str]) -> Iterator[str]:
    """A generator that wraps a stream, as a web framework's streaming response consumes it."""
    for chunk in open_():
        yield f"data: {text(chunk)}\n\n"


async def sse_lines_async(open_: Callable[[], Any], text: Callable[[Any], str]) -> AsyncIterator[str]:
    async for chunk in await open_():
        yield f"data: {text(chunk)}\n\n"


def sse_to_the_end(open_: Callable[[], Any], text: Callable[[Any], str]) -> list[str]:
    return list(sse_lines(open_, text))


async def sse_to_the_end_async(open_: Callable[[], Any], text: Callable[[Any], str]) -> list[str]:
    return [line async for line in sse_lines_async(open_, text)]


def in_another_thread(open_: Callable[[], Any], text: Callable[[Any], str]) -> list[Any]:
    stream = open_()
    got: list[Any] = []
    worker = threading.Thread(target=lambda: got.extend(stream))
    worker.start()
    worker.join()
    return got


def _enough(got: list[Any], text: Callable[[Any], str]) -> bool:
    return sum(1 for chunk in got if text(chunk)) == EARLY


def break_early(open_: Callable[[], Any], text: Callable[[Any], str]) -> list[Any]:
    got = []
    for chunk in open_():
        got.append(chunk)
        if _enough(got, text):
            break
    return got


async def break_early_async(open_: Callable[[], Any], text: Callable[[Any], str]) -> list[Any]:
    got = []
    async for chunk in await open_():
        got.append(chunk)
        if _enough(got, text):
            break
    return got


def break_in_with(open_: Callable[[], Any], text: Callable[[Any], str]) -> list[Any]:
    got = []
    with open_() as stream:
        for chunk in stream:
            got.append(chunk)
            if _enough(got, text):
                break
    return got


async def break_in_async_with(open_: Callable[[], Any], text: Callable[[Any], str]) -> list[Any]:
    got = []
    async with await open_() as stream:
        async for chunk in stream:
            got.append(chunk)
            if _enough(got, text):
                break
    return got


def _has_text(line: str) -> str:
    return line.removeprefix("data: ").strip()


def sse_closed_early(open_: Callable[[], Any], text: Callable[[Any], str]) -> list[str]:
    lines = sse_lines(open_, text)
    got: list[str] = []
    while not _enough(got, _has_text):
        got.append(next(lines))
    lines.close()
    return got


async def sse_closed_early_async(open_: Callable[[], Any], text: Callable[[Any], str]) -> list[str]:
    lines = sse_lines_async(open_, text)
    got: list[str] = []
    while not _enough(got, _has_text):
        got.append(await anext(lines))
    await lines.aclose()
    return got


Form = Callable[[Callable[[], Any], Callable[[Any], str]], Any]
# Idioms that need a stream with ``with`` (a context manager), which a plain generator is not.
MANAGED = frozenset({"with", "break-in-with"})
IDIOMS: list[tuple[str, Form | None, Form | None, bool]] = [
    ("inline-for", inline_for, inline_async_for, True),
    ("named", named, named_async, True),
    ("with", with_block, async_with_block, True),
    ("list", as_list, as_list_async, True),
    ("join", joined, joined_async, True),
    ("next-loop", next_loop, anext_loop, True),
    ("sse-generator", sse_to_the_end, sse_to_the_end_async, True),
    ("other-thread", in_another_thread, None, True),
    ("break", break_early, break_early_async, False),
    ("break-in-with", break_in_with, break_in_async_with, False),
    ("sse-generator-closed", sse_closed_early, sse_closed_early_async, False),
]
CASES = [
    pytest.param(target, form, to_the_end, mode, id=f"{target.name}-{name}-{mode}")
    for target in TARGETS
    for name, sync_form, async_form, to_the_end in IDIOMS
    for mode, form in (("sync", sync_form), ("async", async_form))
    if form is not None and (target.managed or name not in MANAGED)
]


@contextlib.contextmanager
def _driver(sdk: str, mode: str, server: ProviderServer) -> Iterator[Driver]:
    """A real client of the SDK, sync or async, pointed at the local server."""
    if sdk == "openai":
        options = {"base_url": server.openai_base_url, "api_key": API_KEY, "max_retries": 0}
        yield from make_driver(mode, lambda: openai.OpenAI(**options), lambda: openai.AsyncOpenAI(**options))
    elif sdk == "google":
        yield from gemini_drive(mode, server)
    else:
        options = {"base_url": server.anthropic_base_url, "api_key": API_KEY, "max_retries": 0}
        yield from make_driver(
            mode, lambda: anthropic.Anthropic(**options), lambda: anthropic.AsyncAnthropic(**options)
        )


def _run(driver: Driver, form: Form, target: Target) -> Any:
    got = form(lambda: target.open(driver.client), target.text)
    return driver.run(got) if isinstance(got, Awaitable) else got


def _settle_dropped(driver: Driver) -> None:
    """What a running application does for a stream nobody closed: collect it and, for an async generator, let
    its event loop close it."""
    gc.collect()
    for _ in range(3 if driver.is_async else 0):
        for _ in range(3):
            driver.run(asyncio.sleep(0))
        gc.collect()


def _reply(target: Target, **faults: Any) -> Reply:
    return Reply(text=TEXT, chunks=20, usage=target.wire_usage, **faults)


@pytest.mark.parametrize(("target", "form", "to_the_end", "mode"), CASES)
def test_idiom(
    target: Target, form: Form, to_the_end: bool, mode: str, server: ProviderServer, otel: Any, instrumented: None
) -> None:
    with _driver(target.sdk, mode, server) as driver:
        server.push(_reply(target))
        with suppress_instrumentation():
            bare = _run(driver, form, target)
        # A lazy stream (google-genai's sync generator) read in another thread sends its request there, outside
        # the suppressed context: the bare run's span, if any, is not the one under test.
        otel.exporter.clear()
        server.push(_reply(target))
        seen = _run(driver, form, target)
        _settle_dropped(driver)
        assert scrub(seen) == scrub(bare), "the user got other chunks than without costspan"
        assert seen, "the idiom read nothing"
        span = otel.span()
        otel.lifecycle.assert_each_ended_once()
        attributes = span.attributes
        assert attributes["costspan.stream.completed"] is to_the_end
        if to_the_end:
            _assert_exact(attributes, target)
        else:
            _assert_estimated(attributes, target)


def _assert_exact(attributes: Any, target: Target) -> None:
    usage = target.usage
    assert attributes["gen_ai.usage.input_tokens"] == usage.input_tokens
    assert attributes["gen_ai.usage.output_tokens"] == usage.output_tokens
    assert attributes.get("gen_ai.usage.cache_read.input_tokens", 0) == usage.cache_read_tokens
    assert attributes.get("gen_ai.usage.cache_write.input_tokens", 0) == usage.cache_write_tokens
    assert "costspan.usage.estimated" not in attributes
    cost = costspan.cost_of(target.sdk, target.model, usage)
    assert cost is not None and cost.amount > 0
    assert attributes["gen_ai.usage.cost.amount"] == pytest.approx(cost.amount, rel=1e-12)


def _assert_estimated(attributes: Any, target: Target) -> None:
    """A stream left early: the provider's final counts never came, so output is estimated; Anthropic said its
    input as the stream began, and Gemini says it in every chunk, so that stays exact."""
    assert attributes["costspan.usage.estimated"] is True
    assert 1 <= attributes["gen_ai.usage.output_tokens"] < target.usage.output_tokens
    if target.sdk in ("anthropic", "google"):
        assert attributes["gen_ai.usage.input_tokens"] == target.usage.input_tokens
    else:
        assert attributes["gen_ai.usage.input_tokens"] >= 1
    assert attributes["gen_ai.usage.cost.amount"] > 0


def _cancelled_read(driver: Driver, target: Target, otel: Any, when: Callable[[asyncio.Event], Awaitable[Any]]) -> Any:
    """Read a stream in an asyncio task, as a service does, and cancel the task once ``when`` returns (it gets the
    event the reader sets at the first text it sees); the attributes of the call's span, ended once, cancelled."""
    texted = asyncio.Event()

    async def read() -> None:
        async for chunk in await target.open(driver.client):
            if target.text(chunk):
                texted.set()

    async def cancel() -> None:
        task = asyncio.create_task(read())
        await when(texted)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    driver.run(cancel())
    _settle_dropped(driver)
    attributes = otel.span().attributes
    otel.lifecycle.assert_each_ended_once()
    assert (attributes["costspan.stream.completed"], attributes["error.type"]) == (False, "CancelledError")
    return attributes


@pytest.mark.parametrize("target", TARGETS, ids=[target.name for target in TARGETS])
def test_task_cancelled_mid_stream(target: Target, server: ProviderServer, otel: Any, instrumented: None) -> None:
    """An asyncio task reading a stream is cancelled (a client went away, a timeout): the span ends once, marked
    incomplete and cancelled, with what was used so far."""

    async def mid_stream(texted: asyncio.Event) -> None:
        await texted.wait()
        await asyncio.sleep(0.05)

    with _driver(target.sdk, "async", server) as driver:
        server.push(_reply(target, chunk_delay=0.02))
        _assert_estimated(_cancelled_read(driver, target, otel, mid_stream), target)


@pytest.mark.parametrize("target", TARGETS, ids=[target.name for target in TARGETS])
def test_task_cancelled_before_the_first_chunk(
    target: Target, server: ProviderServer, otel: Any, instrumented: None
) -> None:
    """The provider answered and its first chunk is on the way when the task is cancelled (a client that gave up
    on a slow model): the provider was sent the prompt, so the call costs its estimated input, never $0."""

    async def answered(texted: asyncio.Event) -> None:
        while not server.requests:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.1)  # the answer's headers are out; its first chunk is not
        assert not texted.is_set()

    with _driver(target.sdk, "async", server) as driver:
        server.push(_reply(target, first_chunk_delay=0.5))
        attributes = _cancelled_read(driver, target, otel, answered)
    assert "gen_ai.response.time_to_first_chunk" not in attributes, "the first chunk had arrived"
    assert attributes["costspan.usage.estimated"] is True
    assert attributes["gen_ai.usage.input_tokens"] >= 1
    assert attributes["gen_ai.usage.output_tokens"] == 0
    assert attributes["gen_ai.usage.cost.amount"] == attributes["costspan.cost.input"] > 0


# The SDKs' stream helpers, each read every way their docs show: (name, target, open, read, read_async).
def _chat_helper(client: Any) -> Any:
    return client.chat.completions.stream(model="gpt-4.1", messages=MESSAGES)


def _responses_helper(client: Any) -> Any:
    return client.responses.stream(model="gpt-4.1", input="Count to twenty.")


def _messages_helper(client: Any) -> Any:
    return client.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES)


def _events(stream: Any) -> list[Any]:
    return list(stream)


async def _events_async(stream: Any) -> list[Any]:
    return [event async for event in stream]


def _text_stream(stream: Any) -> str:
    return "".join(stream.text_stream)


async def _text_stream_async(stream: Any) -> str:
    return "".join([text async for text in stream.text_stream])


def _until_done(stream: Any) -> None:
    stream.until_done()


async def _until_done_async(stream: Any) -> None:
    await stream.until_done()


def _method(name: str) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    async def read_async(stream: Any) -> Any:
        return await getattr(stream, name)()

    return (lambda stream: getattr(stream, name)()), read_async


_READS = {
    "events": (_events, _events_async),
    "text_stream": (_text_stream, _text_stream_async),
    "until_done": (_until_done, _until_done_async),
    "get_final_completion": _method("get_final_completion"),
    "get_final_response": _method("get_final_response"),
    "get_final_message": _method("get_final_message"),
    "get_final_text": _method("get_final_text"),
}
HELPERS = [
    ("chat.completions.stream", TARGETS[0], _chat_helper, ("events", "get_final_completion", "until_done")),
    ("responses.stream", TARGETS[1], _responses_helper, ("events", "get_final_response", "until_done")),
    (
        "messages.stream",
        TARGETS[3],
        _messages_helper,
        ("events", "text_stream", "get_final_message", "until_done", "get_final_text"),
    ),
]
HELPER_CASES = [
    pytest.param(target, open_, read, mode, id=f"{name}-{read}-{mode}")
    for name, target, open_, reads in HELPERS
    for read in reads
    for mode in ("sync", "async")
]


@pytest.mark.parametrize(("target", "open_", "read", "mode"), HELPER_CASES)
def test_stream_helper(
    target: Target,
    open_: Callable[[Any], Any],
    read: str,
    mode: str,
    server: ProviderServer,
    otel: Any,
    instrumented: None,
) -> None:
    read_sync, read_async = _READS[read]

    async def use_async(client: Any) -> Any:
        async with open_(client) as stream:
            return await read_async(stream)

    def use(client: Any) -> Any:
        with open_(client) as stream:
            return read_sync(stream)

    with _driver(target.sdk, mode, server) as driver:
        got = []
        for suppressed in (True, False):
            server.push(_reply(target))
            with suppress_instrumentation() if suppressed else contextlib.nullcontext():
                got.append(driver.run(use_async(driver.client)) if driver.is_async else use(driver.client))
        assert scrub(got[0]) == scrub(got[1]), "the helper gave other results than without costspan"
        attributes = otel.span().attributes
        otel.lifecycle.assert_each_ended_once()
        assert attributes["costspan.stream.completed"] is True
        _assert_exact(attributes, target)
