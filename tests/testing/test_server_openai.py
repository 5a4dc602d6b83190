"""The OpenAI wire format, read back by the real openai clients (sync and async)."""

from __future__ import annotations

import base64
import struct
from typing import TYPE_CHECKING, Any

import openai
import pydantic
import pytest

from costspan.testing import ProviderServer, Reply

if TYPE_CHECKING:
    from conftest import Sdk

MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]
CHAT_USAGE = {
    "prompt_tokens": 100,
    "completion_tokens": 20,
    "total_tokens": 120,
    "prompt_tokens_details": {"cached_tokens": 60, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 8, "audio_tokens": 0},
}
RESPONSES_USAGE = {
    "input_tokens": 100,
    "input_tokens_details": {"cached_tokens": 40, "cache_write_tokens": 0},
    "output_tokens": 30,
    "output_tokens_details": {"reasoning_tokens": 10},
    "total_tokens": 130,
}


async def test_chat_completion_defaults(sdk: Sdk, server: ProviderServer) -> None:
    completion = await sdk.call(sdk.openai().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES))

    assert completion.model == "gpt-4o-mini"
    assert completion.choices[0].message.content == Reply().text
    assert completion.choices[0].finish_reason == "stop"
    assert completion.service_tier == "default"
    assert completion.usage.prompt_tokens == 12
    assert completion.usage.completion_tokens == len(Reply().text.split())
    assert completion.usage.total_tokens == 12 + completion.usage.completion_tokens
    assert server.requests[0].body["messages"] == MESSAGES


async def test_chat_completion_scripted(sdk: Sdk, server: ProviderServer) -> None:
    server.push(
        Reply(text="4", model="gpt-4o-2024-08-06", usage=CHAT_USAGE, service_tier="flex", finish_reason="length")
    )

    completion = await sdk.call(sdk.openai().chat.completions.create(model="gpt-4o", messages=MESSAGES))

    assert completion.choices[0].message.content == "4"
    assert completion.model == "gpt-4o-2024-08-06"
    assert completion.service_tier == "flex"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.model_dump(exclude_none=True) == CHAT_USAGE


async def test_chat_stream_without_usage(sdk: Sdk, server: ProviderServer) -> None:
    server.push(Reply(text="one two three four five", chunks=3))

    chunks = await sdk.drain(
        await sdk.call(sdk.openai().chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    )

    assert chunks[0].choices[0].delta.role == "assistant"
    contents = [c.choices[0].delta.content for c in chunks[1:-1]]
    assert contents == ["one", " two three", " four five"]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None and len(c.choices) == 1 for c in chunks)
    assert len({c.id for c in chunks}) == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_with_several_choices(sdk: Sdk, server: ProviderServer, stream: bool) -> None:
    """With n > 1, every choice carries the text and its own finish reason; streamed, each chunk carries one
    choice and the choices interleave."""
    server.push(Reply(text="one two", finish_reasons=("stop", "length", "content_filter")))
    result = await sdk.call(sdk.openai().chat.completions.create(model="gpt-4o", messages=MESSAGES, n=3, stream=stream))
    if not stream:
        assert [choice.message.content for choice in result.choices] == ["one two"] * 3
        assert [choice.finish_reason for choice in result.choices] == ["stop", "length", "content_filter"]
        return
    chunks = await sdk.drain(result)
    assert all(len(chunk.choices) == 1 for chunk in chunks)
    assert [chunk.choices[0].index for chunk in chunks[3:9]] == [0, 1, 2, 0, 1, 2]
    texts = ["".join(c.choices[0].delta.content or "" for c in chunks if c.choices[0].index == i) for i in range(3)]
    assert texts == ["one two"] * 3
    reasons = {c.choices[0].index: c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason}
    assert reasons == {0: "stop", 1: "length", 2: "content_filter"}


async def test_chat_stream_usage_chunk_only_when_asked(sdk: Sdk, server: ProviderServer) -> None:
    server.push(Reply(chunks=4, usage=CHAT_USAGE))
    stream = sdk.openai().chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )

    chunks = await sdk.drain(await sdk.call(stream))

    *content, finish, usage_chunk = chunks
    assert len(content) == 5  # the role chunk and four deltas
    assert finish.choices[0].finish_reason == "stop"
    assert usage_chunk.choices == []
    assert usage_chunk.usage.model_dump(exclude_none=True) == CHAT_USAGE
    assert all(c.usage is None for c in [*content, finish])


async def test_chat_stream_wire_marks_usage_null_only_when_asked(sdk: Sdk, server: ProviderServer) -> None:
    client = sdk.openai()
    for include_usage in (False, True):
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": include_usage}
        )
        response = await sdk.call(raw)
        body = await sdk.call(response.http_response.aread() if sdk.is_async else response.http_response.read())

        assert (b'"usage":null' in body) is include_usage
        assert body.endswith(b"data: [DONE]\n\n")


async def test_chat_stream_helper_accumulates(sdk: Sdk, server: ProviderServer) -> None:
    server.push(Reply(text="Four.", chunks=2, usage=CHAT_USAGE))
    manager = sdk.openai().chat.completions.stream(
        model="gpt-4o", messages=MESSAGES, stream_options={"include_usage": True}
    )

    _, final = await sdk.managed(manager, "get_final_completion")

    assert final.choices[0].message.content == "Four."
    assert final.usage.completion_tokens == 20


async def test_responses_create(sdk: Sdk, server: ProviderServer) -> None:
    server.push(Reply(text="Four.", usage=RESPONSES_USAGE, service_tier="priority"))

    response = await sdk.call(sdk.openai().responses.create(model="gpt-4.1", input="2 + 2?"))

    assert response.output_text == "Four."
    assert response.status == "completed"
    assert response.model == "gpt-4.1"
    assert response.service_tier == "priority"
    assert response.usage.model_dump(exclude_none=True) == RESPONSES_USAGE


async def test_responses_stream_event_sequence(sdk: Sdk, server: ProviderServer) -> None:
    server.push(Reply(text="a b c d", chunks=4))

    events = await sdk.drain(await sdk.call(sdk.openai().responses.create(model="gpt-4.1", input="x", stream=True)))

    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 4,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-4].text == "a b c d"
    assert events[-1].response.usage.output_tokens == 4
    assert events[0].response.usage is None


async def test_responses_stream_helper_final_response(sdk: Sdk, server: ProviderServer) -> None:
    server.push(Reply(text="Four.", chunks=3, usage=RESPONSES_USAGE))

    events, final = await sdk.managed(sdk.openai().responses.stream(model="gpt-4.1", input="x"), "get_final_response")

    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Four."
    assert final.output_text == "Four."
    assert final.usage.input_tokens_details.cached_tokens == 40


class Answer(pydantic.BaseModel):
    answer: str


async def test_responses_parse(sdk: Sdk, server: ProviderServer) -> None:
    server.push(Reply(text='{"answer": "4"}'))

    parsed = await sdk.call(sdk.openai().responses.parse(model="gpt-4.1", input="2 + 2?", text_format=Answer))

    assert parsed.output_parsed == Answer(answer="4")
    assert server.requests[0].body["text"]["format"]["type"] == "json_schema"


@pytest.mark.parametrize("encoding", ["float", "base64"])
async def test_embeddings(sdk: Sdk, server: ProviderServer, encoding: str) -> None:
    result = await sdk.call(
        sdk.openai().embeddings.create(model="text-embedding-3-small", input=["a", "b"], encoding_format=encoding)
    )

    vectors = [e.embedding if encoding == "float" else _unpack(e.embedding) for e in result.data]
    assert [e.index for e in result.data] == [0, 1]
    assert [len(v) for v in vectors] == [8, 8]
    assert vectors[0] != vectors[1]
    assert (result.model, result.usage.prompt_tokens, result.usage.total_tokens) == (
        "text-embedding-3-small",
        12,
        12,
    )


async def test_embeddings_default_request_base64_and_get_floats(sdk: Sdk, server: ProviderServer) -> None:
    result = await sdk.call(sdk.openai().embeddings.create(model="text-embedding-3-small", input="hello", dimensions=3))

    assert server.requests[0].body["encoding_format"] == "base64"
    assert len(result.data) == 1
    assert all(isinstance(x, float) for x in result.data[0].embedding)
    assert len(result.data[0].embedding) == 3


def _unpack(packed: str) -> list[float]:
    raw = base64.b64decode(packed)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


async def test_legacy_completion(sdk: Sdk, server: ProviderServer) -> None:
    completion = await sdk.call(sdk.openai().completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi"))

    assert completion.choices[0].text == Reply().text
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 12


@pytest.mark.parametrize("include_usage", [False, True])
async def test_legacy_completion_stream(sdk: Sdk, server: ProviderServer, include_usage: bool) -> None:
    server.push(Reply(text="x y z", chunks=3))
    options: dict[str, Any] = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = sdk.openai().completions.create(model="gpt-3.5-turbo-instruct", prompt="hi", stream=True, **options)

    chunks = await sdk.drain(await sdk.call(stream))

    texts = [c.choices[0].text for c in chunks if c.choices]
    assert texts == ["x", " y", " z", ""]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = [c.usage for c in chunks if c.usage is not None]
    assert [u.completion_tokens for u in usage] == ([3] if include_usage else [])


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [
        (400, openai.BadRequestError, None),
        (401, openai.AuthenticationError, "invalid_api_key"),
        (429, openai.RateLimitError, "rate_limit_exceeded"),
        (500, openai.InternalServerError, None),
        (503, openai.InternalServerError, None),
    ],
)
async def test_http_errors(
    sdk: Sdk, server: ProviderServer, status: int, error: type[Exception], code: str | None
) -> None:
    server.push(Reply(status=status))

    with pytest.raises(error) as raised:
        await sdk.call(sdk.openai().chat.completions.create(model="gpt-4o", messages=MESSAGES))

    assert isinstance(raised.value, openai.APIStatusError)
    assert raised.value.status_code == status
    assert raised.value.code == code
    assert raised.value.request_id is not None and raised.value.request_id.startswith("req_")


async def test_scripted_error_body_and_headers(sdk: Sdk, server: ProviderServer) -> None:
    body = {"error": {"message": "slow down", "type": "tokens", "param": None, "code": "rate_limit_exceeded"}}
    server.push(Reply(status=429, error_body=body, headers={"x-request-id": "req_123"}))

    with pytest.raises(openai.RateLimitError) as raised:
        await sdk.call(sdk.openai().responses.create(model="gpt-4.1", input="x"))

    assert raised.value.body == body["error"]
    assert raised.value.request_id == "req_123"


async def test_unknown_path_is_a_provider_shaped_404(sdk: Sdk, server: ProviderServer) -> None:
    server.push(Reply(text="kept for the next call"))

    with pytest.raises(openai.NotFoundError) as raised:
        await sdk.call(sdk.openai().models.list())

    assert raised.value.type == "invalid_request_error"
    completion = await sdk.call(sdk.openai().chat.completions.create(model="gpt-4o", messages=MESSAGES))
    assert completion.choices[0].message.content == "kept for the next call"
