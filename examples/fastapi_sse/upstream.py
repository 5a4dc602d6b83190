"""The provider side: one streaming call per request, opened before the response starts and closed by whoever
reads it to its end (or stops reading it)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Literal, get_args

import anthropic
import openai

__all__ = ["ANTHROPIC_MODELS", "DEFAULT_MODEL", "OPENAI_MODELS", "Clients", "Model", "Upstream", "open_stream"]

# The models this service offers: a request may name only these (pydantic answers 422 to any other), so a user
# cannot pick a model whose price the budget was not sized for.
Model = Literal["claude-sonnet-4-6", "claude-haiku-4-5", "gpt-4.1", "gpt-4.1-mini"]
DEFAULT_MODEL: Model = "claude-sonnet-4-6"
ANTHROPIC_MODELS = frozenset(name for name in get_args(Model) if name.startswith("claude-"))
OPENAI_MODELS = frozenset(get_args(Model)) - ANTHROPIC_MODELS
UPSTREAM_ERRORS = (anthropic.APIError, openai.APIError)


@dataclass
class Clients:
    """The SDK clients, made and closed by the application's lifespan. OpenAI is optional."""

    anthropic: anthropic.AsyncAnthropic
    openai: openai.AsyncOpenAI | None

    async def aclose(self) -> None:
        await self.anthropic.close()
        if self.openai is not None:
            await self.openai.close()


@dataclass
class Upstream:
    """An open provider stream: its text deltas, and what closes it (the HTTP response to the provider)."""

    texts: AsyncIterator[str]
    closing: AsyncExitStack


class ProviderNotConfigured(LookupError):
    """The request named a model of a provider this service has no client for."""


async def open_stream(
    clients: Clients,
    model: Model,
    prompt: str,
    *,
    system: str | None,
    max_tokens: int,
    temperature: float,
) -> Upstream:
    """Send the request and wait for the provider's answer to begin. Whatever refuses the call (a budget, the
    provider's status) raises here, before the service has answered anything."""
    closing = AsyncExitStack()
    if model in ANTHROPIC_MODELS:
        texts = await _open_anthropic(clients.anthropic, closing, model, prompt, system, max_tokens, temperature)
    else:
        if clients.openai is None:
            raise ProviderNotConfigured(f"{model} needs OPENAI_API_KEY, which this service was started without")
        texts = await _open_openai(clients.openai, closing, model, prompt, system, max_tokens, temperature)
    return Upstream(texts, closing)


async def _open_anthropic(
    client: anthropic.AsyncAnthropic,
    closing: AsyncExitStack,
    model: str,
    prompt: str,
    system: str | None,
    max_tokens: int,
    temperature: float,
) -> AsyncIterator[str]:
    options: dict[str, Any] = {} if system is None else {"system": system}
    manager = client.messages.stream(
        model=model,
        max_tokens=max_tokens,
        messages=[{"role": "user", "content": prompt}],
        # anthropic>=2 takes sampling parameters in the body only.
        extra_body={"temperature": temperature},
        **options,
    )
    stream = await closing.enter_async_context(manager)
    return stream.text_stream


async def _open_openai(
    client: openai.AsyncOpenAI,
    closing: AsyncExitStack,
    model: str,
    prompt: str,
    system: str | None,
    max_tokens: int,
    temperature: float,
) -> AsyncIterator[str]:
    messages: list[Any] = [] if system is None else [{"role": "system", "content": system}]
    messages.append({"role": "user", "content": prompt})
    stream = await client.chat.completions.create(
        model=model, messages=messages, max_completion_tokens=max_tokens, temperature=temperature, stream=True
    )
    await closing.enter_async_context(stream)
    texts = _chat_texts(stream)
    closing.push_async_callback(texts.aclose)
    return texts


async def _chat_texts(stream: openai.AsyncStream[Any]) -> AsyncGenerator[str, None]:
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            yield chunk.choices[0].delta.content
