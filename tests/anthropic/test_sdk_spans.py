"""One call, one set of usage numbers: the anthropic SDK's own span (scope com.anthropic.sdk.python) gives way to
costspan's for the calls costspan instruments, whether the SDK's tracing is on or off, so a backend summing
gen_ai.usage.* over every exported span counts each call once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import pytest

import costspan
from costspan.providers import anthropic as anthropic_provider
from costspan.testing import ProviderServer, Reply
from support import Driver, make_driver

SDK_SCOPE = "com.anthropic.sdk.python"
MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "hi"}]
USAGE = {"input_tokens": 30, "cache_read_input_tokens": 500, "cache_creation_input_tokens": 70, "output_tokens": 9}
INPUT = 30 + 500 + 70


@pytest.fixture(params=["sdk-tracing-on", "option-off", "env-off"])
def sdk_tracing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, otel) -> dict[str, Any]:
    """The client's open_telemetry option (and environment) for each way the SDK's own tracing can be set."""
    if request.param == "sdk-tracing-on":
        return {"open_telemetry": {"tracer_provider": otel.tracer_provider}}
    if request.param == "option-off":
        return {"open_telemetry": False}
    monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "false")
    return {"open_telemetry": None}


@pytest.fixture(params=["sync", "async"])
def client(request: pytest.FixtureRequest, client_options, sdk_tracing: dict[str, Any]) -> Iterator[Driver]:
    options = client_options(**sdk_tracing)
    yield from make_driver(
        request.param, lambda: anthropic.Anthropic(**options), lambda: anthropic.AsyncAnthropic(**options)
    )


def _call(client: Driver, way: str) -> None:
    messages = client.client.messages
    if way == "helper":
        manager = messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES)

        async def use() -> None:
            async with manager as stream:
                await stream.until_done()

        if client.is_async:
            client.run(use())
        else:
            with manager as stream:
                stream.until_done()
        return
    result = client.call(messages.create, model=MODEL, max_tokens=64, messages=MESSAGES, stream=way == "stream")
    if way == "stream":
        client.collect(result)


def _usage_totals(otel) -> tuple[int, int, int]:
    spans = otel.exporter.get_finished_spans()
    with_usage = [span for span in spans if "gen_ai.usage.input_tokens" in span.attributes]
    return (
        len(with_usage),
        sum(span.attributes["gen_ai.usage.input_tokens"] for span in with_usage),
        sum(span.attributes.get("gen_ai.usage.output_tokens", 0) for span in spans),
    )


@pytest.mark.parametrize("way", ["json", "stream", "helper"])
def test_usage_summed_over_every_span_counts_the_call_once(
    client: Driver, server: ProviderServer, otel, instrumented: None, way: str
) -> None:
    server.push(Reply(usage=USAGE, chunks=3))
    _call(client, way)
    assert _usage_totals(otel) == (1, INPUT, 9)
    assert [span.instrumentation_scope.name for span in otel.exporter.get_finished_spans()] == ["costspan.instrumentor"]
    otel.lifecycle.assert_each_ended_once()


@pytest.mark.parametrize("way", ["json", "stream", "helper"])
def test_without_costspan_the_sdk_span_is_back(client: Driver, server: ProviderServer, otel, way: str) -> None:
    """The control: the SDK's span is there when costspan is not, and uninstrumenting restores it."""
    costspan.CostspanInstrumentor().instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    costspan.CostspanInstrumentor().uninstrument()
    server.push(Reply(usage=USAGE, chunks=3))
    _call(client, way)
    scopes = [span.instrumentation_scope.name for span in otel.exporter.get_finished_spans()]
    if client.client.open_telemetry["traces"]["enabled"]:
        assert scopes == [SDK_SCOPE]
        assert _usage_totals(otel) == (1, INPUT, 9)
    else:
        assert scopes == []


def test_other_sdk_calls_keep_their_sdk_span(server: ProviderServer, otel, client_options, instrumented) -> None:
    with anthropic.Anthropic(**client_options()) as client, pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-haiku-4-5")
    (span,) = otel.exporter.get_finished_spans()
    assert span.instrumentation_scope.name == SDK_SCOPE
    assert span.name == "anthropic.models.retrieve"


@pytest.mark.parametrize("propagation", [True, False], ids=["propagation", "no-propagation"])
def test_sdk_propagates_costspan_span(
    server: ProviderServer, otel, client_options, instrumented: None, propagation: bool
) -> None:
    """The SDK still sends the trace context it would have sent, naming costspan's span as the parent."""
    tracing = {"tracer_provider": otel.tracer_provider, "propagation": propagation}
    with anthropic.Anthropic(**client_options(open_telemetry=tracing)) as client:
        client.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)
    traceparent = server.requests[-1].headers.get("traceparent")
    if propagation:
        span = otel.span().context
        assert traceparent.startswith(f"00-{span.trace_id:032x}-{span.span_id:016x}-")
    else:
        assert traceparent is None


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("injected costspan fault")


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
