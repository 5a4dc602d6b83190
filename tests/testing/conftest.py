"""Fixtures for the provider server's own tests: a server per module and real SDK clients, sync or async."""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
import pytest

from costspan.testing import ProviderServer

API_KEY = "sk-test-provider-server"
HAS_BOTO = all(importlib.util.find_spec(name) is not None for name in ("botocore", "boto3"))


@pytest.fixture(scope="module")
def _module_server() -> Iterator[ProviderServer]:
    with ProviderServer() as server:
        yield server


@pytest.fixture
def server(_module_server: ProviderServer) -> ProviderServer:
    _module_server.reset()
    return _module_server


@dataclass
class Sdk:
    """Builds real SDK clients against the server and drives them the same way whether sync or async."""

    is_async: bool
    server: ProviderServer
    _clients: list[Any] = field(default_factory=list)

    def openai(self, **options: Any) -> Any:
        options = {"base_url": self.server.openai_base_url, "api_key": API_KEY, **options}
        return self._client(openai.OpenAI, openai.AsyncOpenAI, options)

    def azure(self, **options: Any) -> Any:
        options = {
            "azure_endpoint": self.server.url,
            "api_key": API_KEY,
            "api_version": "2024-10-21",
            **options,
        }
        return self._client(openai.AzureOpenAI, openai.AsyncAzureOpenAI, options)

    def anthropic(self, **options: Any) -> Any:
        options = {"base_url": self.server.anthropic_base_url, "api_key": API_KEY, **options}
        return self._client(anthropic.Anthropic, anthropic.AsyncAnthropic, options)

    def vertex(self) -> Any:
        options = {
            "region": "us-east5",
            "project_id": "proj",
            "access_token": "test",
            "base_url": f"{self.server.url}/v1",
        }
        return self._client(anthropic.AnthropicVertex, anthropic.AsyncAnthropicVertex, options)

    def bedrock(self) -> Any:
        if not HAS_BOTO:
            pytest.skip("the Bedrock client signs requests with botocore/boto3, which are not installed")
        options = {
            "aws_access_key": "x",
            "aws_secret_key": "y",
            "aws_region": "us-east-1",
            "base_url": self.server.url,
        }
        return self._client(anthropic.AnthropicBedrock, anthropic.AsyncAnthropicBedrock, options)

    def _client(self, sync: Callable[..., Any], asynchronous: Callable[..., Any], options: dict[str, Any]) -> Any:
        client = (asynchronous if self.is_async else sync)(max_retries=0, **options)
        self._clients.append(client)
        return client

    async def call(self, value: Any) -> Any:
        """The result of an SDK call: awaited when the client is async."""
        return await value if inspect.isawaitable(value) else value

    async def drain(self, stream: Any, into: list[Any] | None = None) -> list[Any]:
        """Every item of a stream; `into` keeps what arrived when iteration raises."""
        items = [] if into is None else into
        if hasattr(stream, "__aiter__"):
            async for item in stream:
                items.append(item)
        else:
            for item in stream:
                items.append(item)
        return items

    async def managed(self, manager: Any, final: str) -> tuple[list[Any], Any]:
        """Runs a stream helper (`messages.stream`, `responses.stream`): its events and `final()` result."""
        if self.is_async:
            async with manager as stream:
                return [event async for event in stream], await getattr(stream, final)()
        with manager as stream:
            return list(stream), getattr(stream, final)()

    async def close(self) -> None:
        for client in self._clients:
            await self.call(client.close())


@pytest.fixture(params=["sync", "async"])
async def sdk(request: pytest.FixtureRequest, server: ProviderServer) -> AsyncIterator[Sdk]:
    driver = Sdk(request.param == "async", server)
    yield driver
    await driver.close()
