"""A failure inside costspan never reaches the user's call: it is logged once and the call proceeds."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import Tracer

from costspan.pricing import Pricing
from costspan.providers import openai as openai_provider
from costspan.telemetry import Telemetry
from costspan.testing import ProviderServer, Reply
from support import API_KEY

MESSAGES = [{"role": "user", "content": "hi"}]


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("injected costspan fault")


@pytest.fixture
def client(server: ProviderServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0)


FAULTS: dict[str, tuple[Any, str]] = {
    "pricing": (Pricing, "cost"),
    "metrics": (Telemetry, "_record_metrics"),
    "span start": (Tracer, "start_span"),
    "response reading": (openai_provider, "_read_chat_usage"),
    "chunk reading": (openai_provider, "_read_chat_chunk"),
}


CASES = [(fault, stream) for fault in FAULTS for stream in (False, True) if stream or fault != "chunk reading"]


@pytest.mark.parametrize(("fault", "stream"), CASES, ids=[f"{f}-{'stream' if s else 'json'}" for f, s in CASES])
def test_fault_never_reaches_the_call(
    fault: str,
    stream: bool,
    monkeypatch: pytest.MonkeyPatch,
    instrument: Callable[..., None],
    client: openai.OpenAI,
    server: ProviderServer,
    caplog: pytest.LogCaptureFixture,
    otel: Any,
) -> None:
    owner, name = FAULTS[fault]
    monkeypatch.setattr(owner, name, _boom)
    instrument()
    for _ in range(2):
        server.push(Reply(chunks=3, text="one two three"))
        result = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=stream)
        if stream:
            assert "".join(c.choices[0].delta.content or "" for c in result) == "one two three"
        else:
            assert result.choices[0].message.content == "one two three"
    warnings = [r for r in caplog.records if r.name == "costspan" and r.levelno >= logging.WARNING]
    assert len(warnings) == 1, "a fault is logged once, then quietly"
    if fault != "span start":
        assert len(otel.spans()) == 2
        otel.lifecycle.assert_each_ended_once()
