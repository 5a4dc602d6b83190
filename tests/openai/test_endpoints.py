"""Every OpenAI path a user takes yields exactly one span per HTTP request, with its usage."""

from __future__ import annotations

import gc
from typing import Any

import pydantic
import pytest

from costspan.testing import ProviderServer, Reply
from support import Driver

MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]
CHAT_USAGE = {"prompt_tokens": 14, "completion_tokens": 6, "total_tokens": 20}
RESPONSES_USAGE = {
    "input_tokens": 14,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 6,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 20,
}


class Answer(pydantic.BaseModel):
    answer: str


def test_chat_parse(oai: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(text='{"answer": "4"}', usage=CHAT_USAGE))
    completion = oai.call(oai.client.chat.completions.parse, model="gpt-4.1", messages=MESSAGES, response_format=Answer)
    assert completion.choices[0].message.parsed == Answer(answer="4")
    span = otel.span()
    assert span.name == "chat gpt-4.1"
    assert span.attributes["gen_ai.usage.output_tokens"] == 6
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)


def test_responses_parse(oai: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(text='{"answer": "4"}', usage=RESPONSES_USAGE))
    response = oai.call(oai.client.responses.parse, model="gpt-4.1", input="2 + 2?", text_format=Answer)
    assert response.output_parsed == Answer(answer="4")
    assert otel.span().attributes["gen_ai.usage.input_tokens"] == 14


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_responses_create(oai: Driver, server: ProviderServer, otel, stream: bool) -> None:
    server.push(Reply(usage=RESPONSES_USAGE, chunks=4))
    result = oai.call(oai.client.responses.create, model="gpt-4.1", input="hi", instructions="be brief", stream=stream)
    if stream:
        events = oai.collect(result)
        assert events[-1].type == "response.completed"
    attributes = otel.span().attributes
    assert attributes["gen_ai.usage.input_tokens"] == 14
    assert attributes["gen_ai.usage.output_tokens"] == 6
    assert attributes["gen_ai.request.stream"] is stream
    assert attributes["gen_ai.response.id"].startswith("resp")
    assert "stream_options" not in server.requests[-1].body


def test_interrupted_responses_stream_is_estimated(oai: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(usage=RESPONSES_USAGE, chunks=10, text="one two three four five six seven eight nine ten"))
    stream = oai.call(oai.client.responses.create, model="gpt-4.1", input="count", stream=True)
    oai.collect(stream, limit=8)
    oai.close(stream)
    attributes = otel.span().attributes
    assert attributes["costspan.usage.estimated"] is True
    assert attributes["costspan.stream.completed"] is False
    assert attributes["gen_ai.usage.output_tokens"] >= 1
    assert attributes["gen_ai.usage.cost.amount"] > 0


def test_embeddings(oai: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(usage={"prompt_tokens": 7, "total_tokens": 7}))
    result = oai.call(oai.client.embeddings.create, model="text-embedding-3-small", input=["a", "b"])
    assert len(result.data) == 2
    span = otel.span()
    assert span.name == "embeddings text-embedding-3-small"
    assert span.attributes["gen_ai.operation.name"] == "embeddings"
    assert span.attributes["gen_ai.usage.input_tokens"] == 7
    assert "gen_ai.request.stream" not in span.attributes


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_legacy_completions(oai: Driver, server: ProviderServer, otel, stream: bool) -> None:
    server.push(Reply(usage=CHAT_USAGE, chunks=3))
    result = oai.call(oai.client.completions.create, model="gpt-3.5-turbo-instruct", prompt="Say hi", stream=stream)
    if stream:
        chunks = oai.collect(result)
        assert all(chunk.choices for chunk in chunks), "the usage chunk costspan asked for reached the user"
    span = otel.span()
    assert span.name == "text_completion gpt-3.5-turbo-instruct"
    assert span.attributes["gen_ai.usage.input_tokens"] == 14


def test_stream_helper_closed_early_ends_at_close(oai: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(chunks=30, usage=CHAT_USAGE))
    manager = oai.client.chat.completions.stream(model="gpt-4.1", messages=MESSAGES)
    if oai.is_async:

        async def use() -> None:
            async with manager as stream:
                async for _ in stream:
                    break

        oai.run(use())
    else:
        with manager as stream:
            for _ in stream:
                break
    assert otel.span().attributes["costspan.stream.completed"] is False, "the span waited for garbage collection"
    gc.collect()
    otel.lifecycle.assert_each_ended_once()


def test_request_attributes(oai: Driver, server: ProviderServer, otel) -> None:
    oai.call(
        oai.client.chat.completions.create,
        model="gpt-4.1",
        messages=MESSAGES,
        max_completion_tokens=100,
        temperature=0.2,
        top_p=0.9,
        stop=["END"],
        seed=7,
        service_tier="flex",
    )
    attributes = otel.span().attributes
    assert attributes["gen_ai.request.max_tokens"] == 100
    assert attributes["gen_ai.request.temperature"] == 0.2
    assert attributes["gen_ai.request.top_p"] == 0.9
    assert attributes["gen_ai.request.stop_sequences"] == ("END",)
    assert attributes["gen_ai.request.seed"] == 7
    assert attributes["openai.request.service_tier"] == "flex"
    assert attributes["server.address"] == "127.0.0.1"
    assert isinstance(attributes["server.port"], int)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_chat_with_several_choices_reports_every_finish_reason(
    oai: Driver, server: ProviderServer, otel, stream: bool
) -> None:
    server.push(Reply(text="four", usage=CHAT_USAGE, finish_reasons=("stop", "length", "content_filter")))
    result = oai.call(oai.client.chat.completions.create, model="gpt-4.1", messages=MESSAGES, n=3, stream=stream)
    if stream:
        oai.collect(result)
    span = otel.span()
    assert span.attributes["gen_ai.request.choice.count"] == 3
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop", "length", "content_filter")
    assert span.attributes["gen_ai.usage.output_tokens"] == 6


def _without_usage(events: list[Any]) -> list[Any]:
    """A gateway that drops the usage chunk: the output is estimated from the streamed text."""
    return [event for event in events if not (isinstance(event, dict) and event.get("usage"))]


def _choices_merged(events: list[Any]) -> list[Any]:
    """A gateway that sends two choices' deltas in one chunk, and no usage chunk."""
    merged: list[Any] = []
    for event in _without_usage(events):
        previous = merged[-1] if merged else None
        if (
            isinstance(event, dict)
            and isinstance(previous, dict)
            and len(previous["choices"]) == len(event["choices"]) == 1
        ):
            merged[-1] = {**previous, "choices": previous["choices"] + event["choices"]}
        else:
            merged.append(event)
    return merged


def test_chat_chunks_carrying_several_choices_count_every_choices_text(
    oai: Driver, server: ProviderServer, otel
) -> None:
    """n > 1 choices merged into shared chunks read the same as one choice per chunk: every choice's text in the
    estimate, every finish reason."""
    reasons = ("stop", "length", "content_filter")
    texts = []
    for events in (_without_usage, _choices_merged):
        server.push(Reply(text="one two three four five", finish_reasons=reasons, events=events))
        stream = oai.call(oai.client.chat.completions.create, model="gpt-4.1", messages=MESSAGES, n=3, stream=True)
        chunks = oai.collect(stream)
        by_choice = [
            "".join(c.delta.content or "" for k in chunks for c in k.choices if c.index == i) for i in range(3)
        ]
        texts.append(by_choice)
    assert max(len(chunk.choices) for chunk in chunks) == 2
    assert texts[0] == texts[1] == ["one two three four five"] * 3
    plain, merged = (span.attributes for span in otel.spans())
    assert merged["costspan.usage.estimated"] is True
    assert merged["gen_ai.usage.output_tokens"] == plain["gen_ai.usage.output_tokens"] > 0
    assert merged["gen_ai.response.finish_reasons"] == plain["gen_ai.response.finish_reasons"] == reasons
