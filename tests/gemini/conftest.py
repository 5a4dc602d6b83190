"""Fixtures for the google-genai tests (see helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gemini.helpers import drive

from costspan.testing import ProviderServer
from support import Driver


@pytest.fixture(params=["sync", "async"])
def gem(request: pytest.FixtureRequest, server: ProviderServer, instrumented: None) -> Iterator[Driver]:
    """A Gemini API client (sync or async) of the local server, with costspan instrumenting."""
    yield from drive(request.param, server)
