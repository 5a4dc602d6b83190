from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import pytest

from costspan.testing import ProviderServer
from support import API_KEY, Driver, make_driver

Options = Callable[..., dict[str, Any]]


@pytest.fixture
def client_options(server: ProviderServer, otel: Any) -> Options:
    """Options for a client of the local server whose own tracing (on by default in anthropic>=2) exports where
    costspan's spans go, so that every test also shows that the SDK's span does not repeat costspan's."""

    def options(**overrides: Any) -> dict[str, Any]:
        return {
            "base_url": server.anthropic_base_url,
            "api_key": API_KEY,
            "max_retries": 0,
            "open_telemetry": {"tracer_provider": otel.tracer_provider},
            **overrides,
        }

    return options


@pytest.fixture(params=["sync", "async"])
def ant(request: pytest.FixtureRequest, client_options: Options, instrumented: None) -> Iterator[Driver]:
    """A real Anthropic client (sync or async) pointed at the local server, with costspan instrumenting."""
    options = client_options()
    yield from make_driver(
        request.param, lambda: anthropic.Anthropic(**options), lambda: anthropic.AsyncAnthropic(**options)
    )


class Helper:
    """Enters and exits ``messages.stream()`` managers the same way for the sync and the async client."""

    def __init__(self, ant: Driver) -> None:
        self.ant = ant

    def enter(self, manager: Any) -> Any:
        return self.ant.enter(manager)

    def exit(self, manager: Any) -> None:
        self.ant.exit(manager)


@pytest.fixture
def helper(ant: Driver) -> Helper:
    return Helper(ant)


@pytest.fixture
def helper_for() -> Callable[[Driver], Helper]:
    """Helpers for other clients (Bedrock, Vertex)."""
    return Helper
