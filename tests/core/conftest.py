"""Fixtures for the provider-neutral tests: each runs for every provider, with a sync and an async client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from providers import PROVIDERS, ProviderUnderTest

from costspan.testing import ProviderServer
from support import Driver, make_driver


@pytest.fixture(params=PROVIDERS, ids=[p.name for p in PROVIDERS])
def provider(request: pytest.FixtureRequest) -> ProviderUnderTest:
    return request.param


@pytest.fixture(params=["sync", "async"])
def driver(
    request: pytest.FixtureRequest, provider: ProviderUnderTest, server: ProviderServer, otel: Any, instrumented: None
) -> Iterator[Driver]:
    """A real client of the provider (sync or async) pointed at the local server, with costspan instrumenting."""
    yield from make_driver(
        request.param,
        lambda: provider.client(server, otel.tracer_provider, {}),
        lambda: provider.async_client(server, otel.tracer_provider, {}),
    )
