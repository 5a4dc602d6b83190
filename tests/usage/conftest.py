"""The usage tests' exchange: one instrumentation and one client per SDK for a whole test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from usage.harness import Exchange, anthropic_client, openai_client

from costspan.testing import ProviderServer


@pytest.fixture
def exchange(otel: Any, instrument: Callable[..., None], server: ProviderServer) -> Iterator[Exchange]:
    """Shared by all the hypothesis examples of a test: each example checks only the span it added."""
    instrument()
    clients = {"openai": openai_client(server), "anthropic": anthropic_client(server)}
    yield Exchange(otel, server, clients)
    for client in clients.values():
        client.close()
