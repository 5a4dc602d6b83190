"""The usage tests' fixtures: the exchange (one instrumentation and one client per SDK for a whole test) and the
settlements the telemetry receives."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from usage.harness import Exchange, anthropic_client, openai_client

from costspan.settle import Settlement
from costspan.telemetry import Telemetry
from costspan.testing import ProviderServer


@pytest.fixture
def exchange(otel: Any, instrument: Callable[..., None], server: ProviderServer) -> Iterator[Exchange]:
    """Shared by all the hypothesis examples of a test: each example checks only the span it added."""
    instrument()
    clients = {"openai": openai_client(server), "anthropic": anthropic_client(server)}
    yield Exchange(otel, server, clients)
    for client in clients.values():
        client.close()


@pytest.fixture
def settlements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Settlement]]:
    """Every settlement handed to the telemetry: the record the budgets and the ledger receive too."""
    seen: list[Settlement] = []
    report = Telemetry.report

    def recording(self: Telemetry, call: Any, settlement: Settlement, *args: Any) -> None:
        seen.append(settlement)
        report(self, call, settlement, *args)

    monkeypatch.setattr(Telemetry, "report", recording)
    yield seen
