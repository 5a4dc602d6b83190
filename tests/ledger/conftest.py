"""Fixtures for the ledger tests: a ledger file in the test's directory, costspan instrumented to write it, and a
real OpenAI client of the local provider server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from ledger.postgres_server import PostgresServer

import costspan
from costspan.testing import ProviderServer
from support import API_KEY


@pytest.fixture
def ledger_file(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def ledger(instrument: Callable[..., None], ledger_file: Path) -> Any:
    """costspan instrumented with the test's providers and a ledger at ``ledger_file``: the LedgerProcessor."""
    instrument(ledger=ledger_file)
    return costspan.CostspanInstrumentor()._ledger


@pytest.fixture
def client(server: ProviderServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0) as client:
        yield client


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture
def postgres_url(postgres: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A fresh database of the session's PostgreSQL server, for one test's ledger."""
    return postgres.create_database(f"ledger_{abs(hash(request.node.nodeid)):x}")
