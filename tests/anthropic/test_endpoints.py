"""Every Anthropic path a user takes yields exactly one span per request, with the attributes SPEC.md names."""

from __future__ import annotations

import anthropic
import pytest
from opentelemetry import trace

from costspan.testing import ProviderServer, Reply
from support import Driver

MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]
USAGE = {"input_tokens": 14, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0, "output_tokens": 6}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_request_and_response_attributes(ant: Driver, server: ProviderServer, otel, stream: bool) -> None:
    server.push(
        Reply(
            usage=USAGE,
            service_tier="standard",
            chunks=3,
            finish_reason="max_tokens",
            model="claude-haiku-4-5-20251001",
        )
    )
    result = ant.call(
        ant.client.messages.create,
        model=MODEL,
        messages=MESSAGES,
        max_tokens=100,
        # anthropic>=2 takes sampling parameters in the request body only
        extra_body={"temperature": 0.2, "top_p": 0.9, "top_k": 40},
        stop_sequences=["END"],
        service_tier="standard_only",
        stream=stream,
    )
    if stream:
        ant.collect(result)
    span = otel.span()
    assert span.name == f"chat {MODEL}"
    assert span.kind == trace.SpanKind.CLIENT
    assert span.instrumentation_scope.name == "costspan.instrumentor"
    expected = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": MODEL,
        "gen_ai.request.max_tokens": 100,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.top_k": 40,
        "gen_ai.request.stop_sequences": ("END",),
        "gen_ai.request.stream": stream,
        "anthropic.request.service_tier": "standard_only",
        "anthropic.response.service_tier": "standard",
        "server.address": "127.0.0.1",
        "gen_ai.response.model": "claude-haiku-4-5-20251001",
        "gen_ai.response.finish_reasons": ("max_tokens",),
        "gen_ai.usage.input_tokens": 14,
        "gen_ai.usage.output_tokens": 6,
    }
    assert {key: span.attributes.get(key) for key in expected} == expected
    assert ("costspan.stream.completed" in span.attributes) is stream
    assert ("gen_ai.response.time_to_first_chunk" in span.attributes) is stream
    assert isinstance(span.attributes["server.port"], int)
    assert span.attributes["gen_ai.response.id"].startswith("msg_")


def test_request_attributes_absent_when_not_given(ant: Driver, server: ProviderServer, otel) -> None:
    ant.call(ant.client.messages.create, model=MODEL, max_tokens=10, messages=MESSAGES)
    attributes = otel.span().attributes
    for absent in (
        "gen_ai.request.temperature",
        "gen_ai.request.top_p",
        "gen_ai.request.top_k",
        "gen_ai.request.stop_sequences",
        "anthropic.request.service_tier",
        "gen_ai.conversation.id",
    ):
        assert absent not in attributes, absent
    assert attributes["anthropic.response.service_tier"] == "standard"


@pytest.mark.parametrize("beta", [False, True], ids=["messages", "beta.messages"])
def test_count_tokens_has_no_usage_and_no_cost(ant: Driver, server: ProviderServer, otel, beta: bool) -> None:
    server.push(Reply(usage={"input_tokens": 1234}))
    messages = ant.client.beta.messages if beta else ant.client.messages
    counted = ant.call(messages.count_tokens, model=MODEL, messages=MESSAGES, system="Be brief.")
    assert counted.input_tokens == 1234
    span = otel.span()
    assert span.name == f"count_tokens {MODEL}"
    assert span.attributes["gen_ai.operation.name"] == "count_tokens"
    assert span.attributes["anthropic.message.count_tokens.input_tokens"] == 1234
    assert not [key for key in span.attributes if key.startswith(("gen_ai.usage", "costspan.cost", "costspan.usage"))]
    metrics = otel.metrics()
    assert "gen_ai.client.token.usage" not in metrics and "costspan.cost" not in metrics
    assert metrics["gen_ai.client.operation.duration"][0].attributes["gen_ai.operation.name"] == "count_tokens"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_beta_messages_create(ant: Driver, server: ProviderServer, otel, stream: bool) -> None:
    server.push(Reply(usage=USAGE, chunks=3))
    result = ant.call(
        ant.client.beta.messages.create,
        model=MODEL,
        max_tokens=64,
        messages=MESSAGES,
        betas=["context-management-2025-06-27"],
        stream=stream,
    )
    if stream:
        assert ant.collect(result)[-1].type == "message_stop"
    assert server.requests[-1].headers["anthropic-beta"] == "context-management-2025-06-27"
    attributes = otel.span().attributes
    assert attributes["gen_ai.usage.input_tokens"] == 14
    assert attributes["gen_ai.usage.output_tokens"] == 6
    assert attributes["gen_ai.request.stream"] is stream


def test_beta_stream_helper(ant: Driver, server: ProviderServer, helper, otel) -> None:
    server.push(Reply(usage=USAGE, chunks=3))
    manager = ant.client.beta.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES)
    stream = helper.enter(manager)
    final = ant.run(stream.get_final_message())
    helper.exit(manager)
    assert isinstance(final, anthropic.types.beta.BetaMessage)
    span = otel.span()
    assert span.attributes["gen_ai.usage.output_tokens"] == 6
    assert span.attributes["gen_ai.request.stream"] is True
    assert span.attributes["gen_ai.response.id"] == final.id
    otel.lifecycle.assert_each_ended_once()


def test_beta_parse(ant: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(text="4", usage=USAGE))
    message = ant.call(ant.client.beta.messages.parse, model=MODEL, max_tokens=64, messages=MESSAGES)
    assert message.content[0].text == "4"
    assert otel.span().attributes["gen_ai.usage.output_tokens"] == 6


def test_stream_helper_span_covers_the_request_not_the_manager(
    ant: Driver, server: ProviderServer, helper, otel
) -> None:
    server.push(Reply(usage=USAGE, chunks=3))
    manager = ant.client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES, extra_body={"temperature": 0.5})
    assert otel.lifecycle.started == {}, "no span before the manager posts"
    stream = helper.enter(manager)
    ant.run(stream.until_done())
    helper.exit(manager)
    attributes = otel.span().attributes
    assert attributes["gen_ai.request.temperature"] == 0.5
    assert attributes["gen_ai.request.max_tokens"] == 64
    assert len(server.requests) == 1


def test_conversation_id_of_the_client_is_kept(server: ProviderServer, otel, client_options, instrumented) -> None:
    options = client_options(open_telemetry={"tracer_provider": otel.tracer_provider, "conversation_id": "conv_7"})
    with anthropic.Anthropic(**options) as client:
        client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    assert otel.span().attributes["gen_ai.conversation.id"] == "conv_7"


def test_current_span_is_the_parent(ant: Driver, server: ProviderServer, otel) -> None:
    tracer = otel.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle request") as parent:
        ant.call(ant.client.messages.create, model=MODEL, max_tokens=10, messages=MESSAGES)
    span = otel.span()
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
