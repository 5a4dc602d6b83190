"""No API key, header value or message content in anything costspan exports or logs."""

from __future__ import annotations

import json
import logging
from typing import Any

import openai
import pytest

from costspan.testing import ProviderServer, Reply
from support import API_KEY

SECRET_PROMPT = "my secret prompt 0xC0FFEE"
SECRET_ANSWER = "the secret answer 0xBEEF"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_nothing_secret_is_exported(
    stream: bool, instrumented: None, server: ProviderServer, otel: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="costspan")
    client = openai.OpenAI(
        base_url=server.openai_base_url,
        api_key=API_KEY,
        max_retries=0,
        default_headers={"X-Custom-Auth": "header-secret-1234"},
    )
    server.push(Reply(text=SECRET_ANSWER, chunks=3))
    result = client.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": SECRET_PROMPT}], stream=stream
    )
    if stream:
        list(result)
    server.push(Reply(status=401))
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": SECRET_PROMPT}])
    exported = json.dumps(
        [span.to_json() for span in otel.exporter.get_finished_spans()]
        + [str(point.attributes) for points in otel.metrics().values() for point in points]
        + [record.getMessage() for record in caplog.records]
    )
    assert len(otel.spans()) == 2
    for secret in (API_KEY, "header-secret-1234", SECRET_PROMPT, SECRET_ANSWER, "Bearer"):
        assert secret not in exported
