"""A failure inside costspan never reaches the user's Anthropic call: it is logged once and the call proceeds."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.trace import Tracer

from costspan.pricing import Pricing
from costspan.providers import anthropic as anthropic_provider
from costspan.telemetry import Telemetry
from costspan.testing import ProviderServer, Reply

MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "hi"}]
TEXT = "one two three"


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("injected costspan fault")


FAULTS: dict[str, tuple[Any, str]] = {
    "pricing": (Pricing, "cost"),
    "metrics": (Telemetry, "_record_metrics"),
    "span start": (Tracer, "start_span"),
    "response reading": (anthropic_provider, "_read_message"),
    "event reading": (anthropic_provider, "_read_event"),
    "stream helper tracing": (anthropic_provider, "_trace_request"),
}
# Where each fault can strike: json (create), stream (create(stream=True)), helper (messages.stream()).
WAYS = {"response reading": ("json",), "event reading": ("stream", "helper"), "stream helper tracing": ("helper",)}
CASES = [(fault, way) for fault in FAULTS for way in WAYS.get(fault, ("json", "stream", "helper"))]


def _text(client: anthropic.Anthropic, way: str) -> str:
    if way == "helper":
        with client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
            return stream.get_final_text()
    if way == "stream":
        events = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, stream=True)
        return "".join(event.delta.text for event in events if event.type == "content_block_delta")
    return client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES).content[0].text


@pytest.mark.parametrize(("fault", "way"), CASES, ids=[f"{fault}-{way}" for fault, way in CASES])
def test_fault_never_reaches_the_call(
    fault: str,
    way: str,
    monkeypatch: pytest.MonkeyPatch,
    instrument: Callable[..., None],
    client_options: Callable[..., dict[str, Any]],
    server: ProviderServer,
    caplog: pytest.LogCaptureFixture,
    otel: Any,
) -> None:
    owner, name = FAULTS[fault]
    monkeypatch.setattr(owner, name, _boom)
    instrument()
    with anthropic.Anthropic(**client_options()) as client:
        for _ in range(2):
            server.push(Reply(chunks=3, text=TEXT))
            assert _text(client, way) == TEXT
    warnings = [r for r in caplog.records if r.name == "costspan" and r.levelno >= logging.WARNING]
    assert len(warnings) == 1, "a fault is logged once, then quietly"
    if fault in ("span start", "stream helper tracing"):
        assert otel.spans() == []
    else:
        assert len(otel.spans()) == 2
        otel.lifecycle.assert_each_ended_once()


def test_untraced_helper_keeps_the_sdk_span(
    monkeypatch: pytest.MonkeyPatch, instrument: Callable[..., None], client_options, server: ProviderServer, otel
) -> None:
    """Had costspan failed to trace a request, the SDK's own span still reports it: nothing is lost."""
    monkeypatch.setattr(anthropic_provider, "_trace_request", _boom)
    instrument()
    with anthropic.Anthropic(**client_options()) as client:
        server.push(Reply(usage={"input_tokens": 5, "output_tokens": 3}))
        with client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
            stream.until_done()
    (span,) = otel.exporter.get_finished_spans()
    assert span.instrumentation_scope.name == "com.anthropic.sdk.python"
    assert span.attributes["gen_ai.usage.input_tokens"] == 5
