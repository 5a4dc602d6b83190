"""The user's exceptions pass through costspan with their type and identity, for every provider, sync or async,
and the span says what failed."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from providers import ProviderUnderTest

from costspan.testing import ProviderServer, Reply
from support import Driver

MESSAGES = [{"role": "user", "content": "hi"}]


def test_timeout_passes_through(provider: ProviderUnderTest, driver: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(delay=1.0))
    with pytest.raises(provider.sdk.APITimeoutError):
        driver.run(provider.create(driver.client.with_options(timeout=0.2), MESSAGES))
    assert otel.span().attributes["error.type"] == "APITimeoutError"


def test_exception_identity(provider: ProviderUnderTest, driver: Driver, monkeypatch: pytest.MonkeyPatch, otel) -> None:
    sentinel = provider.sdk.APIConnectionError(request=httpx2.Request("POST", "http://127.0.0.1/v1/anything"))

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise sentinel

    async def refuse_async(*args: Any, **kwargs: Any) -> Any:
        raise sentinel

    monkeypatch.setattr(driver.client, "post", refuse_async if driver.is_async else refuse)
    with pytest.raises(provider.sdk.APIConnectionError) as raised:
        driver.run(provider.create(driver.client, MESSAGES))
    assert raised.value is sentinel
    assert otel.span().attributes["error.type"] == "APIConnectionError"
