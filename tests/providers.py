"""What the provider-neutral tests (faults, secrets, stream endings) need to know of each SDK: how to make a
client of the local server, how to make one call each way a user does (JSON, stream, stream helper) and get its
text, how to open a stream each way a user does, and what that provider's stream spans say."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import ModuleType
from typing import Any

import anthropic
import openai
from opentelemetry.sdk.trace import TracerProvider

from costspan.providers import anthropic as anthropic_provider
from costspan.providers import openai as openai_provider
from costspan.testing import ProviderServer
from support import API_KEY, Driver

Messages = list[dict[str, str]]
WAYS = ("json", "stream", "helper")


ClientFactory = Callable[[ProviderServer, TracerProvider, dict[str, Any]], Any]


@dataclass(frozen=True)
class StreamWay:
    """One way a user opens a stream."""

    name: str
    start: Callable[[Any, Messages], Any]
    """What the user calls: it gives the SDK's stream (awaitable, on an async client) or a helper's manager."""
    with_gives_itself: bool
    """Whether ``with`` on what ``start`` gives yields that same object (the SDK's stream) or another (a helper's
    stream, out of its manager)."""


@dataclass(frozen=True)
class StreamExpectations:
    """How a provider's streams are opened, and what their spans say however they end."""

    ways: tuple[StreamWay, ...]
    usage: dict[str, Any]
    """The provider-native usage the server reports at the end of the stream."""
    exhausted: dict[str, Any]
    """Attributes, exactly, of the span of a stream read to its end with ``usage``."""
    response_id_prefix: str
    interrupted_input: int | None
    """Input tokens of a stream that ended early: exact (the provider said them as the stream began) or None,
    estimated (at least one)."""


@dataclass(frozen=True)
class ProviderUnderTest:
    name: str
    client: ClientFactory
    call: Callable[[Any, str, Messages, str], str]
    # Faults in this provider's adapter: name -> (owner, attribute, the ways a call can hit it).
    faults: dict[str, tuple[Any, str, tuple[str, ...]]]
    auth_error: type[Exception]
    async_client: ClientFactory
    streams: StreamExpectations
    create: Callable[[Any, Messages], Any]
    """One non-streaming call, as ``client.<resource>.create(...)`` (awaitable, on an async client)."""
    sdk: ModuleType
    """The SDK's module, for its exception types."""


@dataclass
class Opened:
    """A stream opened, and entered, as a user does: ``with <way's start> as stream``."""

    manager: Any
    """What ``with`` took: the SDK's stream, or a helper's manager."""
    stream: Any
    """What the user iterates: what ``with`` gave."""
    exit: Callable[[], None]
    """Leave the ``with`` block."""


def open_stream(driver: Driver, way: StreamWay, messages: Messages) -> Opened:
    manager = driver.run(way.start(driver.client, messages))
    return Opened(manager, driver.enter(manager), lambda: driver.exit(manager))


def _openai_client(
    server: ProviderServer, tracer_provider: TracerProvider, options: dict[str, Any], cls: type = openai.OpenAI
) -> Any:
    return cls(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0, **options)


def _openai_call(client: Any, way: str, messages: Messages, system: str) -> str:
    messages = [{"role": "system", "content": system}, *messages]
    if way == "helper":
        with client.chat.completions.stream(model="gpt-4.1", messages=messages) as stream:
            return stream.get_final_completion().choices[0].message.content
    if way == "stream":
        chunks = client.chat.completions.create(model="gpt-4.1", messages=messages, stream=True)
        return "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    return client.chat.completions.create(model="gpt-4.1", messages=messages).choices[0].message.content


def _openai_create(client: Any, messages: Messages, **options: Any) -> Any:
    return client.chat.completions.create(model="gpt-4.1-mini", messages=messages, **options)


def _openai_stream(client: Any, messages: Messages) -> Any:
    return _openai_create(client, messages, stream=True)


def _anthropic_client(
    server: ProviderServer, tracer_provider: TracerProvider, options: dict[str, Any], cls: type = anthropic.Anthropic
) -> Any:
    # The SDK's own tracing exports where costspan's spans go, as it does by default under a global provider.
    return cls(
        base_url=server.anthropic_base_url,
        api_key=API_KEY,
        max_retries=0,
        open_telemetry={"tracer_provider": tracer_provider},
        **options,
    )


def _anthropic_call(client: Any, way: str, messages: Messages, system: str) -> str:
    arguments: dict[str, Any] = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": messages, "system": system}
    if way == "helper":
        with client.messages.stream(**arguments) as stream:
            return stream.get_final_text()
    if way == "stream":
        events = client.messages.create(**arguments, stream=True)
        return "".join(event.delta.text for event in events if event.type == "content_block_delta")
    return client.messages.create(**arguments).content[0].text


def _anthropic_create(client: Any, messages: Messages, **options: Any) -> Any:
    options.setdefault("max_tokens", 64)
    return client.messages.create(model="claude-haiku-4-5", messages=messages, **options)


def _anthropic_create_stream(client: Any, messages: Messages) -> Any:
    return _anthropic_create(client, messages, stream=True)


def _anthropic_stream_helper(client: Any, messages: Messages) -> Any:
    return client.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=messages)


# Anthropic's usage as a stream reports it: input in message_start (cache reads and writes apart), output at the end.
ANTHROPIC_STREAM_USAGE = {
    "input_tokens": 21,
    "cache_read_input_tokens": 1000,
    "cache_creation_input_tokens": 300,
    "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
    "output_tokens": 20,
}
ANTHROPIC_INPUT = 21 + 1000 + 300

OPENAI = ProviderUnderTest(
    "openai",
    _openai_client,
    _openai_call,
    {
        "response reading": (openai_provider, "_read_chat_usage", WAYS),
        "chunk reading": (openai_provider, "_read_chat_chunk", ("stream", "helper")),
    },
    openai.AuthenticationError,
    partial(_openai_client, cls=openai.AsyncOpenAI),
    StreamExpectations(
        ways=(StreamWay("create", _openai_stream, with_gives_itself=True),),
        usage={"prompt_tokens": 21, "completion_tokens": 20, "total_tokens": 41},
        exhausted={
            "gen_ai.usage.input_tokens": 21,
            "gen_ai.usage.output_tokens": 20,
            "gen_ai.response.finish_reasons": ("stop",),
        },
        response_id_prefix="chatcmpl-",
        interrupted_input=None,
    ),
    _openai_create,
    openai,
)
ANTHROPIC = ProviderUnderTest(
    "anthropic",
    _anthropic_client,
    _anthropic_call,
    {
        "response reading": (anthropic_provider, "_read_message", ("json",)),
        "event reading": (anthropic_provider, "_read_event", ("stream", "helper")),
        "stream helper tracing": (anthropic_provider, "_trace_request", ("helper",)),
    },
    anthropic.AuthenticationError,
    partial(_anthropic_client, cls=anthropic.AsyncAnthropic),
    StreamExpectations(
        ways=(
            StreamWay("create", _anthropic_create_stream, with_gives_itself=True),
            StreamWay("helper", _anthropic_stream_helper, with_gives_itself=False),
        ),
        usage=ANTHROPIC_STREAM_USAGE,
        exhausted={
            "gen_ai.usage.input_tokens": ANTHROPIC_INPUT,
            "gen_ai.usage.cache_read.input_tokens": 1000,
            "gen_ai.usage.cache_write.input_tokens": 300,
            "gen_ai.usage.output_tokens": 20,
            "gen_ai.response.finish_reasons": ("end_turn",),
        },
        response_id_prefix="msg_",
        interrupted_input=ANTHROPIC_INPUT,
    ),
    _anthropic_create,
    anthropic,
)
PROVIDERS = [OPENAI, ANTHROPIC]
