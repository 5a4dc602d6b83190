"""What the provider-neutral tests (faults, secrets) need to know of each SDK: how to make a client of the
local server, and how to make one call each way a user does (JSON, stream, stream helper) and get its text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
from opentelemetry.sdk.trace import TracerProvider

from costspan.providers import anthropic as anthropic_provider
from costspan.providers import openai as openai_provider
from costspan.testing import ProviderServer
from support import API_KEY

Messages = list[dict[str, str]]
WAYS = ("json", "stream", "helper")


@dataclass(frozen=True)
class ProviderUnderTest:
    name: str
    client: Callable[[ProviderServer, TracerProvider, dict[str, Any]], Any]
    call: Callable[[Any, str, Messages, str], str]
    # Faults in this provider's adapter: name -> (owner, attribute, the ways a call can hit it).
    faults: dict[str, tuple[Any, str, tuple[str, ...]]]
    auth_error: type[Exception]


def _openai_client(server: ProviderServer, tracer_provider: TracerProvider, options: dict[str, Any]) -> Any:
    return openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0, **options)


def _openai_call(client: Any, way: str, messages: Messages, system: str) -> str:
    messages = [{"role": "system", "content": system}, *messages]
    if way == "helper":
        with client.chat.completions.stream(model="gpt-4.1", messages=messages) as stream:
            return stream.get_final_completion().choices[0].message.content
    if way == "stream":
        chunks = client.chat.completions.create(model="gpt-4.1", messages=messages, stream=True)
        return "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    return client.chat.completions.create(model="gpt-4.1", messages=messages).choices[0].message.content


def _anthropic_client(server: ProviderServer, tracer_provider: TracerProvider, options: dict[str, Any]) -> Any:
    # The SDK's own tracing exports where costspan's spans go, as it does by default under a global provider.
    return anthropic.Anthropic(
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


PROVIDERS = [
    ProviderUnderTest(
        "openai",
        _openai_client,
        _openai_call,
        {
            "response reading": (openai_provider, "_read_chat_usage", WAYS),
            "chunk reading": (openai_provider, "_read_chat_chunk", ("stream", "helper")),
        },
        openai.AuthenticationError,
    ),
    ProviderUnderTest(
        "anthropic",
        _anthropic_client,
        _anthropic_call,
        {
            "response reading": (anthropic_provider, "_read_message", ("json",)),
            "event reading": (anthropic_provider, "_read_event", ("stream", "helper")),
            "stream helper tracing": (anthropic_provider, "_trace_request", ("helper",)),
        },
        anthropic.AuthenticationError,
    ),
]
