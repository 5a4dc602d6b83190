"""No API key, header value or message content in anything costspan exports or logs, for any provider, whether
or not the SDK traces its own calls."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from providers import PROVIDERS, WAYS, ProviderUnderTest

from costspan.testing import ProviderServer, Reply
from support import API_KEY

SECRET_PROMPT = "my secret prompt 0xC0FFEE"
SECRET_SYSTEM = "secret system prompt 0xFACADE"
SECRET_ANSWER = "the secret answer 0xBEEF"
SECRET_HEADER = "header-secret-1234"


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("provider", PROVIDERS, ids=[p.name for p in PROVIDERS])
def test_nothing_secret_is_exported(
    provider: ProviderUnderTest,
    way: str,
    instrumented: None,
    server: ProviderServer,
    otel: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="costspan")
    messages = [{"role": "user", "content": SECRET_PROMPT}]
    with provider.client(server, otel.tracer_provider, {"default_headers": {"X-Custom-Auth": SECRET_HEADER}}) as client:
        server.push(Reply(text=SECRET_ANSWER, chunks=3))
        assert provider.call(client, way, messages, SECRET_SYSTEM) == SECRET_ANSWER
        server.push(Reply(status=401))
        with pytest.raises(provider.auth_error):
            provider.call(client, "json", messages, SECRET_SYSTEM)
    assert API_KEY in server.requests[0].headers["authorization"], "the secrets did reach the server"
    exported = json.dumps(
        [span.to_json() for span in otel.exporter.get_finished_spans()]
        + [str(point.attributes) for points in otel.metrics().values() for point in points]
        + [record.getMessage() for record in caplog.records]
    )
    assert len(otel.spans()) == 2
    for secret in (API_KEY, SECRET_HEADER, SECRET_PROMPT, SECRET_SYSTEM, SECRET_ANSWER, "Bearer"):
        assert secret not in exported
