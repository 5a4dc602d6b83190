"""Request and run totals: the real SDK clients (each provider, sync and async) against the local provider
server, costspan instrumenting into the test's in-memory providers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from providers import PROVIDERS, ProviderUnderTest

from costspan.testing import ProviderServer
from support import Driver, make_driver

if TYPE_CHECKING:
    from conftest import Otel


@pytest.fixture(params=PROVIDERS, ids=lambda provider: provider.name)
def provider(request: pytest.FixtureRequest) -> ProviderUnderTest:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=["sync", "async"])
def llm(
    request: pytest.FixtureRequest, provider: ProviderUnderTest, server: ProviderServer, otel: Otel
) -> Iterator[Driver]:
    """A real client of ``provider`` (sync or async) pointed at the local server."""
    yield from make_driver(
        request.param,
        lambda: provider.client(server, otel.tracer_provider, {}),
        lambda: provider.async_client(server, otel.tracer_provider, {}),
    )
