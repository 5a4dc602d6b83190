from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from costspan.testing import ProviderServer
from support import API_KEY, Driver, make_driver


@pytest.fixture(params=["sync", "async"])
def oai(request: pytest.FixtureRequest, server: ProviderServer, instrumented: None) -> Iterator[Driver]:
    """A real OpenAI client (sync or async) pointed at the local server, with costspan instrumenting."""
    kwargs = {"base_url": server.openai_base_url, "api_key": API_KEY, "max_retries": 0}
    yield from make_driver(request.param, lambda: openai.OpenAI(**kwargs), lambda: openai.AsyncOpenAI(**kwargs))
