"""The cloud platforms' paths and framing: Azure OpenAI, Anthropic on Vertex AI and on Amazon Bedrock."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anthropic
import pytest

from costspan.testing import ProviderServer, Reply

if TYPE_CHECKING:
    from conftest import Sdk

MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]
BEDROCK_MODEL = "anthropic.claude-haiku-4-5-20251001-v1:0"
VERTEX_MODEL = "claude-haiku-4-5@20251001"
USAGE = {
    "input_tokens": 30,
    "cache_read_input_tokens": 10,
    "cache_creation_input_tokens": 0,
    "output_tokens": 6,
}


async def test_azure_deployment_client(sdk: Sdk, server: ProviderServer) -> None:
    client = sdk.azure(azure_deployment="prod-gpt4o")

    completion = await sdk.call(client.chat.completions.create(model="gpt-4o", messages=MESSAGES))
    response = await sdk.call(client.responses.create(model="gpt-4o", input="x"))

    assert completion.choices[0].message.content == response.output_text == Reply().text
    chat, responses = server.requests
    assert chat.path == "/openai/deployments/prod-gpt4o/chat/completions"
    assert responses.path == "/openai/responses"
    assert chat.query == responses.query == {"api-version": "2024-10-21"}
    assert chat.headers["api-key"].startswith("sk-test")


async def test_azure_model_names_the_deployment_and_streams(sdk: Sdk, server: ProviderServer) -> None:
    server.push(Reply(chunks=3))
    stream = sdk.azure().chat.completions.create(
        model="my-deployment", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )

    chunks = await sdk.drain(await sdk.call(stream))

    assert server.requests[0].path == "/openai/deployments/my-deployment/chat/completions"
    assert {c.model for c in chunks} == {"my-deployment"}
    assert chunks[-1].usage.completion_tokens == 3


async def test_azure_v1_base_url(sdk: Sdk, server: ProviderServer) -> None:
    client = sdk.openai(base_url=f"{server.url}/openai/v1/")

    result = await sdk.call(client.embeddings.create(model="text-embedding-3-small", input="x"))

    assert len(result.data) == 1
    assert server.requests[0].path == "/openai/v1/embeddings"


async def test_vertex_messages(sdk: Sdk, server: ProviderServer) -> None:
    server.push(Reply(text="4", usage=USAGE), Reply(text="a b", chunks=2, usage=USAGE))
    client = sdk.vertex()

    message = await sdk.call(client.messages.create(model=VERTEX_MODEL, max_tokens=8, messages=MESSAGES))
    events, final = await sdk.managed(
        client.messages.stream(model=VERTEX_MODEL, max_tokens=8, messages=MESSAGES), "get_final_message"
    )

    assert (message.content[0].text, message.model, message.usage.input_tokens) == ("4", VERTEX_MODEL, 30)
    assert (final.content[0].text, final.usage.output_tokens) == ("a b", 6)
    assert [e.type for e in events].count("content_block_delta") == 2
    paths = [r.path.rsplit("/", 1)[-1] for r in server.requests]
    assert paths == [f"{VERTEX_MODEL}:rawPredict", f"{VERTEX_MODEL}:streamRawPredict"]
    assert "model" not in server.requests[0].body
    assert "anthropic_version" in server.requests[0].body


async def test_vertex_count_tokens_and_errors(sdk: Sdk, server: ProviderServer) -> None:
    client = sdk.vertex()

    counted = await sdk.call(client.messages.count_tokens(model=VERTEX_MODEL, messages=MESSAGES))
    server.push(Reply(status=429))
    with pytest.raises(anthropic.RateLimitError):
        await sdk.call(client.messages.create(model=VERTEX_MODEL, max_tokens=8, messages=MESSAGES))

    assert counted.input_tokens >= 1
    assert server.requests[0].path.endswith("/publishers/anthropic/models/count-tokens:rawPredict")


async def test_bedrock_invoke(sdk: Sdk, server: ProviderServer) -> None:
    server.push(Reply(text="4", usage=USAGE))

    message = await sdk.call(sdk.bedrock().messages.create(model=BEDROCK_MODEL, max_tokens=8, messages=MESSAGES))

    assert (message.content[0].text, message.model, message.usage.cache_read_input_tokens) == (
        "4",
        BEDROCK_MODEL,
        10,
    )
    request = server.requests[0]
    assert request.path == f"/model/{BEDROCK_MODEL}/invoke"
    assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256")


async def test_bedrock_event_stream(sdk: Sdk, server: ProviderServer) -> None:
    profile = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-haiku-4-5-v1:0"
    server.push(Reply(text="a b c", chunks=3, usage=USAGE, usage_updates=2))

    events, final = await sdk.managed(
        sdk.bedrock().messages.stream(model=profile, max_tokens=8, messages=MESSAGES), "get_final_message"
    )

    assert [e.type for e in events].count("content_block_delta") == 3
    assert [e.type for e in events].count("message_delta") == 2
    assert (final.content[0].text, final.model, final.usage.output_tokens) == ("a b c", profile, 6)
    assert server.requests[0].path.endswith("/invoke-with-response-stream")


async def test_bedrock_http_error(sdk: Sdk, server: ProviderServer) -> None:
    server.push(Reply(status=429))

    with pytest.raises(anthropic.RateLimitError) as raised:
        await sdk.call(sdk.bedrock().messages.create(model=BEDROCK_MODEL, max_tokens=8, messages=MESSAGES))

    assert raised.value.body == {"message": "Too many requests, please wait before trying again."}
    assert raised.value.response.headers["x-amzn-errortype"].startswith("ThrottlingException")
