"""google-genai calls end to end, sync and async: request attributes, provider errors, streams cut by the network or
by the provider's in-stream error, usage the server got wrong, and embeddings."""

from __future__ import annotations

from typing import Any

import pytest
from gemini.helpers import PROMPT, drive, generate, text_of
from google.genai import errors

import costspan
from costspan.testing import ProviderServer, Reply
from support import Driver

USAGE = {"promptTokenCount": 40, "candidatesTokenCount": 20, "totalTokenCount": 60}
TEXT = " ".join(str(n) for n in range(1, 21))


def test_request_attributes(gem: Driver, server: ProviderServer, otel: Any) -> None:
    config = {"temperature": 0.2, "top_p": 0.9, "top_k": 40, "max_output_tokens": 256, "stop_sequences": ["END"]}
    server.push(Reply(text="Hi there", chunks=2))
    generate(gem, stream=True, model="models/gemini-2.5-flash", **config, seed=7)
    attributes = otel.span().attributes
    port = int(server.url.rsplit(":", 1)[1])
    assert {key: attributes[key] for key in attributes if key.startswith(("gen_ai.request", "server."))} == {
        "gen_ai.request.model": "gemini-2.5-flash",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.top_k": 40,
        "gen_ai.request.seed": 7,
        "gen_ai.request.max_tokens": 256,
        "gen_ai.request.stop_sequences": ("END",),
        "gen_ai.request.stream": True,
        "server.address": "127.0.0.1",
        "server.port": port,
    }
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.response.model"] == "gemini-2.5-flash"
    assert len(attributes["gen_ai.response.id"]) == 22
    assert PROMPT not in str(dict(attributes)), "no message content without the capture option"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(
    ("status", "error"), [(400, errors.ClientError), (429, errors.ClientError), (500, errors.ServerError)]
)
def test_a_failed_request_costs_nothing(
    status: int, error: type[Exception], stream: bool, gem: Driver, server: ProviderServer, otel: Any
) -> None:
    """The SDK raises its own error, unchanged; the span says why and bills nothing (the sync stream sends its
    request only when first read: that too fails the call, unbilled)."""
    server.push(Reply(status=status))
    with pytest.raises(error) as raised:
        generate(gem, stream=stream)
    assert raised.value.code == status
    attributes = otel.span().attributes
    assert attributes["error.type"] == error.__name__
    assert not any(key.startswith(("gen_ai.usage", "costspan.cost")) for key in attributes)
    assert "costspan.stream.completed" not in attributes
    otel.lifecycle.assert_each_ended_once()


@pytest.mark.parametrize(
    ("fault", "raised"),
    [({"drop_after": 5}, Exception), ({"error_after": 5}, errors.ServerError)],
    ids=["connection-cut", "in-stream-error"],
)
def test_an_interrupted_stream_keeps_its_exact_input_and_estimates_its_output(
    fault: dict[str, int], raised: type[Exception], gem: Driver, server: ProviderServer, otel: Any
) -> None:
    """Every chunk carries the prompt's count; the final usage never came: output is estimated from the text
    streamed, and the call is flagged estimated and incomplete."""
    server.push(Reply(text=TEXT, chunks=20, usage=USAGE, **fault))
    stream = gem.run(gem.client.models.generate_content_stream(model="gemini-2.5-flash", contents=PROMPT))
    seen: list[Any] = []
    with pytest.raises(raised):
        if gem.is_async:

            async def read() -> None:
                async for chunk in stream:
                    seen.append(chunk)

            gem.run(read())
        else:
            seen.extend(stream)
    assert len(seen) == 5
    attributes = otel.span().attributes
    assert attributes["costspan.stream.completed"] is False
    assert attributes["costspan.usage.estimated"] is True
    assert attributes["gen_ai.usage.input_tokens"] == 40
    assert 1 <= attributes["gen_ai.usage.output_tokens"] < 20
    cost = costspan.cost_of(
        "gcp.gemini", "gemini-2.5-flash", costspan.Usage(40, attributes["gen_ai.usage.output_tokens"])
    )
    assert cost is not None and attributes["gen_ai.usage.cost.amount"] == pytest.approx(cost.amount, abs=1e-12)
    otel.lifecycle.assert_each_ended_once()


@pytest.mark.parametrize(
    ("usage", "input_tokens", "output_tokens"),
    [
        ({"promptTokenCount": -5, "candidatesTokenCount": 20}, None, 20),
        ({"candidatesTokenCount": 20}, None, 20),
        ({"promptTokenCount": 40, "candidatesTokenCount": 10**12}, 40, None),
        ({"promptTokenCount": 40, "candidatesTokenCount": 20, "thoughtsTokenCount": -1}, 40, 20),
        ({"promptTokenCount": 40, "candidatesTokenCount": 20, "cachedContentTokenCount": 400}, 40, 20),
    ],
    ids=["negative-prompt", "no-prompt", "huge-candidates", "negative-thoughts", "cache-beyond-prompt"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_malformed_usage_is_estimated_never_free(
    usage: dict[str, Any],
    input_tokens: int | None,
    output_tokens: int | None,
    stream: bool,
    gem: Driver,
    server: ProviderServer,
    otel: Any,
) -> None:
    """A count that is no token count is replaced by an estimate (input from the prompt, output from the text);
    the call is flagged estimated and still priced; the user's call goes on untouched."""
    server.push(Reply(text=TEXT, chunks=20, usage=usage))
    assert text_of(generate(gem, stream=stream)) == TEXT
    attributes = otel.span().attributes
    assert attributes["costspan.usage.estimated"] is True
    if input_tokens is not None:
        assert attributes["gen_ai.usage.input_tokens"] == input_tokens
    else:
        assert attributes["gen_ai.usage.input_tokens"] >= 1
    if output_tokens is not None:
        assert attributes["gen_ai.usage.output_tokens"] == output_tokens
    else:
        assert 1 <= attributes["gen_ai.usage.output_tokens"] <= 100
    assert attributes.get("gen_ai.usage.cache_read.input_tokens", 0) <= attributes["gen_ai.usage.input_tokens"]
    assert attributes["gen_ai.usage.cost.amount"] > 0


def test_embeddings_on_the_gemini_api_are_estimated(gem: Driver, server: ProviderServer, otel: Any) -> None:
    """The Gemini API's batchEmbedContents reports no usage: the input is estimated from the texts."""
    result = gem.run(gem.client.models.embed_content(model="gemini-embedding-001", contents=["first", "second"]))
    assert len(result.embeddings) == 2
    span = otel.span()
    assert span.name == "embeddings gemini-embedding-001"
    attributes = span.attributes
    assert attributes["gen_ai.usage.input_tokens"] >= 2
    assert attributes["gen_ai.usage.output_tokens"] == 0
    assert attributes["costspan.usage.estimated"] is True
    assert attributes["costspan.price.model"] == "gemini-embedding-001"
    assert attributes["gen_ai.usage.cost.amount"] == pytest.approx(attributes["gen_ai.usage.input_tokens"] * 0.15e-6)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_embeddings_on_vertex_ai_are_exact(mode: str, server: ProviderServer, otel: Any, instrumented: None) -> None:
    server.push(Reply(usage={"promptTokenCount": 1234}))
    for driver in drive(mode, server, "vertex"):
        driver.run(driver.client.models.embed_content(model="gemini-embedding-001", contents="one long document"))
    # embedContent (newer SDKs) reports a usageMetadata, predict (older ones) each embedding's token count.
    assert server.requests[0].path.endswith(("/gemini-embedding-001:embedContent", "/gemini-embedding-001:predict"))
    attributes = otel.span().attributes
    assert attributes["gen_ai.provider.name"] == "gcp.vertex_ai"
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (1234, 0)
    assert "costspan.usage.estimated" not in attributes
    assert attributes["gen_ai.usage.cost.amount"] == pytest.approx(1234 * 0.15e-6, abs=1e-12)


def test_count_tokens_is_left_alone(gem: Driver, server: ProviderServer, otel: Any) -> None:
    assert not hasattr(gem.client.models.count_tokens, "__wrapped__")
    assert hasattr(gem.client.models._generate_content, "__wrapped__")
