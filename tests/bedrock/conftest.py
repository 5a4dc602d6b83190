"""Fixtures for the Bedrock tests (see helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from bedrock.helpers import bedrock_client

from costspan.testing import ProviderServer


@pytest.fixture
def client(server: ProviderServer, instrument: Any) -> Iterator[Any]:
    """A bedrock-runtime client created before costspan instruments, as an application's often is."""
    client = bedrock_client(server)
    instrument()
    yield client
    client.close()
