"""The SDK's Amazon Bedrock and Google Vertex AI clients: spans named for the platform (aws.bedrock,
gcp.vertex_ai) with the platform's model ids priced as the model they serve."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from costspan.testing import ProviderServer, Reply
from support import API_KEY, Driver, make_driver

M = 1e-6
USAGE = {"input_tokens": 1000, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0, "output_tokens": 100}
MESSAGES = [{"role": "user", "content": "hi"}]
HAS_BOTOCORE = importlib.util.find_spec("botocore") is not None

# USD per MTok from genai-prices' data, provider "aws": AWS's price list for Claude Sonnet 4.5 on Bedrock, where a
# geographic cross-region profile (us., eu., ...) costs 10% more than the global one.
BEDROCK_SONNET_45_REGIONAL = {"input": 3.3, "output": 16.5}
BEDROCK_SONNET_45_GLOBAL = {"input": 3, "output": 15}
# genai-prices has no Vertex AI entry for it: Anthropic's own price applies (provider "anthropic").
SONNET_45 = {"input": 3, "output": 15}


@pytest.fixture(params=["sync", "async"])
def bedrock(request: pytest.FixtureRequest, server: ProviderServer, otel, instrumented: None) -> Iterator[Driver]:
    # An API key (bearer token) rather than AWS credentials: signing requests would need botocore.
    options = {
        "api_key": API_KEY,
        "aws_region": "us-east-1",
        "base_url": server.url,
        "max_retries": 0,
        "open_telemetry": {"tracer_provider": otel.tracer_provider},
    }
    yield from make_driver(
        request.param,
        lambda: anthropic.AnthropicBedrock(**options),
        lambda: anthropic.AsyncAnthropicBedrock(**options),
    )


@pytest.fixture(params=["sync", "async"])
def vertex(request: pytest.FixtureRequest, server: ProviderServer, otel, instrumented: None) -> Iterator[Driver]:
    options = {
        "region": "us-east5",
        "project_id": "costspan-test",
        "access_token": "vertex-token",
        "base_url": f"{server.url}/v1",
        "max_retries": 0,
        "open_telemetry": {"tracer_provider": otel.tracer_provider},
    }
    yield from make_driver(
        request.param,
        lambda: anthropic.AnthropicVertex(**options),
        lambda: anthropic.AsyncAnthropicVertex(**options),
    )


def _assert_priced(otel, provider: str, model: str, price_model: str, prices: dict[str, float]) -> dict[str, Any]:
    attributes = otel.span().attributes
    assert attributes["gen_ai.provider.name"] == provider
    assert attributes["gen_ai.request.model"] == model
    assert attributes["gen_ai.usage.input_tokens"] == 1000
    assert attributes["gen_ai.usage.output_tokens"] == 100
    assert attributes["costspan.price.model"] == price_model
    expected = 1000 * prices["input"] * M + 100 * prices["output"] * M
    assert math.isclose(attributes["gen_ai.usage.cost.amount"], expected, rel_tol=0, abs_tol=1e-9)
    return dict(attributes)


@pytest.mark.parametrize(
    ("model", "price_model", "prices"),
    [
        (
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "regional.anthropic.claude-sonnet-4-5-20250929-v1:0",
            BEDROCK_SONNET_45_REGIONAL,
        ),
        (
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            BEDROCK_SONNET_45_GLOBAL,
        ),
    ],
    ids=["us", "global"],
)
@pytest.mark.parametrize("beta", [False, True], ids=["messages", "beta.messages"])
def test_bedrock(
    bedrock: Driver, server: ProviderServer, otel, model: str, price_model: str, prices: dict, beta: bool
) -> None:
    server.push(Reply(usage=USAGE))
    messages = bedrock.client.beta.messages if beta else bedrock.client.messages
    bedrock.call(messages.create, model=model, max_tokens=256, messages=MESSAGES)
    assert server.requests[-1].path == f"/model/{model}/invoke"
    attributes = _assert_priced(otel, "aws.bedrock", model, price_model, prices)
    assert attributes["server.address"] == "127.0.0.1"
    otel.lifecycle.assert_each_ended_once()


@pytest.mark.skipif(not HAS_BOTOCORE, reason="the Bedrock client decodes its event streams with botocore")
def test_bedrock_stream(bedrock: Driver, server: ProviderServer, otel) -> None:
    model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    server.push(Reply(usage=USAGE, chunks=3))
    bedrock.collect(
        bedrock.call(bedrock.client.messages.create, model=model, max_tokens=256, messages=MESSAGES, stream=True)
    )
    _assert_priced(
        otel, "aws.bedrock", model, "regional.anthropic.claude-sonnet-4-5-20250929-v1:0", BEDROCK_SONNET_45_REGIONAL
    )


def test_bedrock_count_tokens_is_refused_by_the_sdk(bedrock: Driver, server: ProviderServer, otel) -> None:
    with pytest.raises(anthropic.AnthropicError, match="not supported in Bedrock"):
        bedrock.call(bedrock.client.messages.count_tokens, model="us.anthropic.claude-sonnet-4-5", messages=MESSAGES)
    assert server.requests == []
    attributes = otel.span().attributes
    assert attributes["gen_ai.provider.name"] == "aws.bedrock"
    assert attributes["error.type"] == "AnthropicError"


@pytest.mark.parametrize("way", ["json", "stream", "helper", "beta", "beta-helper"])
def test_vertex(vertex: Driver, server: ProviderServer, otel, helper_for, way: str) -> None:
    model = "claude-sonnet-4-5@20250929"
    server.push(Reply(usage=USAGE, chunks=3))
    messages = vertex.client.beta.messages if way.startswith("beta") else vertex.client.messages
    if way.endswith("helper"):
        manager = messages.stream(model=model, max_tokens=256, messages=MESSAGES)
        helper = helper_for(vertex)
        vertex.run(helper.enter(manager).until_done())
        helper.exit(manager)
    else:
        result = vertex.call(messages.create, model=model, max_tokens=256, messages=MESSAGES, stream=way == "stream")
        if way == "stream":
            vertex.collect(result)
    specifier = "rawPredict" if way in ("json", "beta") else "streamRawPredict"
    assert server.requests[-1].path.endswith(f"/publishers/anthropic/models/{model}:{specifier}")
    attributes = _assert_priced(otel, "gcp.vertex_ai", model, "claude-sonnet-4-5", SONNET_45)
    assert ("costspan.stream.completed" in attributes) is (specifier == "streamRawPredict")
    otel.lifecycle.assert_each_ended_once()


@pytest.mark.parametrize("beta", [False, True], ids=["messages", "beta.messages"])
def test_vertex_count_tokens(vertex: Driver, server: ProviderServer, otel, beta: bool) -> None:
    server.push(Reply(usage={"input_tokens": 77}))
    messages = vertex.client.beta.messages if beta else vertex.client.messages
    counted = vertex.call(messages.count_tokens, model="claude-sonnet-4-5@20250929", messages=MESSAGES)
    assert counted.input_tokens == 77
    attributes = otel.span().attributes
    assert attributes["gen_ai.provider.name"] == "gcp.vertex_ai"
    assert attributes["anthropic.message.count_tokens.input_tokens"] == 77
    assert "gen_ai.usage.cost.amount" not in attributes
