"""What only OpenAI's chat streams do: the usage chunk costspan asks for is hidden, one the user asked for is
kept. How every stream ends (exhausted, closed, broken off, failed, cancelled, abandoned) is tested for every
provider in tests/core/test_stream_endings.py."""

from __future__ import annotations

from providers import OPENAI

from costspan.testing import ProviderServer, Reply
from support import Driver

MESSAGES = [{"role": "user", "content": "Count to twenty, please."}]
USAGE = OPENAI.streams.usage


def _stream(oai: Driver, **kwargs: object) -> object:
    return oai.call(oai.client.chat.completions.create, model="gpt-4.1-mini", messages=MESSAGES, stream=True, **kwargs)


def test_usage_chunk_costspan_asks_for_is_hidden(oai: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(chunks=20, usage=USAGE))
    chunks = oai.collect(_stream(oai))
    assert all(chunk.choices for chunk in chunks), "the usage chunk costspan asked for reached the user"
    assert server.requests[-1].body["stream_options"] == {"include_usage": True}
    assert otel.span().attributes["gen_ai.usage.output_tokens"] == 20, "its usage was read all the same"
    otel.lifecycle.assert_each_ended_once()


def test_user_requested_usage_chunk_is_kept(oai: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(chunks=5, usage=USAGE))
    chunks = oai.collect(_stream(oai, stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    assert otel.span().attributes["gen_ai.usage.output_tokens"] == 20
