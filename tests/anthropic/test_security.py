"""No API key, header value or message content in anything exported or logged for Anthropic calls, whether
the SDK's own tracing is on or not."""

from __future__ import annotations

import json
import logging
from typing import Any

import anthropic
import pytest

from costspan.testing import ProviderServer, Reply
from support import API_KEY

SECRET_PROMPT = "my secret prompt 0xC0FFEE"
SECRET_SYSTEM = "secret system prompt 0xFACADE"
SECRET_ANSWER = "the secret answer 0xBEEF"
MESSAGES = [{"role": "user", "content": SECRET_PROMPT}]


@pytest.mark.parametrize("way", ["json", "stream", "helper"])
def test_nothing_secret_is_exported(
    way: str, instrumented: None, client_options, server: ProviderServer, otel: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="costspan")
    options = client_options(default_headers={"X-Custom-Auth": "header-secret-1234"})
    with anthropic.Anthropic(**options) as client:
        server.push(Reply(text=SECRET_ANSWER, chunks=3))
        arguments = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": MESSAGES, "system": SECRET_SYSTEM}
        if way == "helper":
            with client.messages.stream(**arguments) as stream:
                stream.until_done()
        else:
            result = client.messages.create(**arguments, stream=way == "stream")
            if way == "stream":
                list(result)
        server.push(Reply(status=401))
        with pytest.raises(anthropic.AuthenticationError):
            client.messages.create(**arguments)
    assert server.requests[0].headers["authorization"] == f"Bearer {API_KEY}", "the secrets did reach the server"
    exported = json.dumps(
        [span.to_json() for span in otel.exporter.get_finished_spans()]
        + [str(point.attributes) for points in otel.metrics().values() for point in points]
        + [record.getMessage() for record in caplog.records]
    )
    assert len(otel.spans()) == 2
    for secret in (API_KEY, "header-secret-1234", SECRET_PROMPT, SECRET_SYSTEM, SECRET_ANSWER, "Bearer"):
        assert secret not in exported
