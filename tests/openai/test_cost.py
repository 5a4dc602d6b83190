"""Span token counts equal the server's usage, and the cost equals a hand computation from the published
prices (USD per million tokens, as genai-prices carries them and OpenAI's pricing page lists them)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pytest

from costspan.testing import ProviderServer, Reply
from support import Driver

M = 1e-6  # USD per token, for prices given per million tokens


@dataclass(frozen=True)
class Case:
    model: str
    usage: dict[str, Any]
    expected_usd: float
    tokens: dict[str, int]
    service_tier: str | None = None
    endpoint: str = "chat"
    breakdown: dict[str, float] = field(default_factory=dict)


def _chat_usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0},
    }


def _responses_usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + completion,
    }


CASES = {
    # gpt-4.1: $2 input, $8 output
    "gpt-4.1": Case("gpt-4.1", _chat_usage(1000, 500), 1000 * 2 * M + 500 * 8 * M,
                    {"input_tokens": 1000, "output_tokens": 500}),
    # gpt-4.1-mini: $0.40 input, $1.60 output
    "gpt-4.1-mini": Case("gpt-4.1-mini", _chat_usage(2000, 1000), 2000 * 0.4 * M + 1000 * 1.6 * M,
                         {"input_tokens": 2000, "output_tokens": 1000}),
    # gpt-4o-mini: $0.15 input, $0.60 output
    "gpt-4o-mini": Case("gpt-4o-mini", _chat_usage(10_000, 2000), 10_000 * 0.15 * M + 2000 * 0.6 * M,
                        {"input_tokens": 10_000, "output_tokens": 2000}),
    # o4-mini: $1.10 input, $4.40 output; reasoning tokens are part of the output and billed as output
    "o4-mini reasoning": Case("o4-mini", _chat_usage(500, 3000, reasoning=2500), 500 * 1.1 * M + 3000 * 4.4 * M,
                              {"input_tokens": 500, "output_tokens": 3000, "reasoning.output_tokens": 2500}),
    # gpt-4.1 cached input: 904 uncached at $2, 4096 cached at $0.50, 100 output at $8
    "cached input": Case("gpt-4.1", _chat_usage(5000, 100, cached=4096),
                         904 * 2 * M + 4096 * 0.5 * M + 100 * 8 * M,
                         {"input_tokens": 5000, "output_tokens": 100, "cache_read.input_tokens": 4096},
                         breakdown={"input": 904 * 2 * M, "cache_read": 4096 * 0.5 * M, "output": 100 * 8 * M}),
    # gpt-5 flex tier: $0.625 input, $5 output (half the standard $1.25 / $10)
    "flex tier": Case("gpt-5", _chat_usage(1000, 1000), 1000 * 0.625 * M + 1000 * 5 * M,
                      {"input_tokens": 1000, "output_tokens": 1000}, service_tier="flex"),
    # gpt-4.1 priority tier: $3.50 input, $14 output
    "priority tier": Case("gpt-4.1", _chat_usage(1000, 1000), 1000 * 3.5 * M + 1000 * 14 * M,
                          {"input_tokens": 1000, "output_tokens": 1000}, service_tier="priority"),
    # text-embedding-3-small: $0.02 input
    "embeddings": Case("text-embedding-3-small", {"prompt_tokens": 12_345, "total_tokens": 12_345},
                       12_345 * 0.02 * M, {"input_tokens": 12_345}, endpoint="embeddings"),
    # gpt-5.4 above 272K input tokens: the whole request at the long-context rates, $5 input, $22.50 output
    "long context": Case("gpt-5.4", _responses_usage(300_000, 1000), 300_000 * 5 * M + 1000 * 22.5 * M,
                         {"input_tokens": 300_000, "output_tokens": 1000}, endpoint="responses"),
    # gpt-5.4 below the threshold: $2.50 input, $15 output
    "below long context": Case("gpt-5.4", _responses_usage(200_000, 1000), 200_000 * 2.5 * M + 1000 * 15 * M,
                               {"input_tokens": 200_000, "output_tokens": 1000}, endpoint="responses"),
    # legacy completions, gpt-4o-mini prices
    "legacy completion": Case("gpt-4o-mini", _chat_usage(300, 40), 300 * 0.15 * M + 40 * 0.6 * M,
                              {"input_tokens": 300, "output_tokens": 40}, endpoint="completions"),
}  # fmt: skip


def _call(oai: Driver, case: Case, stream: bool) -> None:
    client = oai.client
    if case.endpoint == "embeddings":
        oai.call(client.embeddings.create, model=case.model, input=["some text", "more text"])
        return
    if case.endpoint == "responses":
        result = oai.call(client.responses.create, model=case.model, input="hello", stream=stream)
    elif case.endpoint == "completions":
        result = oai.call(client.completions.create, model=case.model, prompt="hello", stream=stream)
    else:
        result = oai.call(
            client.chat.completions.create,
            model=case.model,
            messages=[{"role": "user", "content": "hello"}],
            stream=stream,
            **({"service_tier": case.service_tier} if case.service_tier else {}),
        )
    if stream:
        oai.collect(result)


RUNS = [
    (name, stream)
    for name, case in CASES.items()
    for stream in (False, True)
    if not (stream and case.endpoint == "embeddings")
]


@pytest.mark.parametrize(("name", "stream"), RUNS, ids=[f"{n}-{'stream' if s else 'json'}" for n, s in RUNS])
def test_span_cost_equals_hand_computed(oai: Driver, server: ProviderServer, otel, name: str, stream: bool) -> None:
    case = CASES[name]
    server.push(Reply(usage=case.usage, service_tier=case.service_tier, chunks=3))
    _call(oai, case, stream)

    attributes = otel.span().attributes
    for key, value in case.tokens.items():
        assert attributes[f"gen_ai.usage.{key}"] == value, key
    assert "costspan.usage.estimated" not in attributes
    amount = attributes["gen_ai.usage.cost.amount"]
    assert math.isclose(amount, case.expected_usd, rel_tol=0, abs_tol=1e-9), (amount, case.expected_usd)
    parts = [attributes[f"costspan.cost.{part}"] for part in ("input", "output", "cache_read", "cache_write", "other")]
    assert math.isclose(sum(parts), amount, rel_tol=0, abs_tol=1e-12)
    for part, value in case.breakdown.items():
        assert math.isclose(attributes[f"costspan.cost.{part}"], value, rel_tol=0, abs_tol=1e-9), part
    assert attributes["gen_ai.usage.cost.currency"] == "USD"
    assert attributes["gen_ai.usage.cost.source"] == "local"
    assert attributes["costspan.price.source"].startswith("genai-prices")
    if case.service_tier:
        assert attributes["openai.response.service_tier"] == case.service_tier


def test_unknown_model_is_unpriced_never_zero(oai: Driver, server: ProviderServer, otel, caplog) -> None:
    for _ in range(2):
        server.push(Reply(usage=_chat_usage(100, 10)))
        oai.call(
            oai.client.chat.completions.create,
            model="totally-new-model-9",
            messages=[{"role": "user", "content": "x"}],
        )
    for span in otel.spans():
        assert span.attributes["costspan.cost.unpriced"] is True
        assert "gen_ai.usage.cost.amount" not in span.attributes
        assert span.attributes["gen_ai.usage.input_tokens"] == 100
    assert sum("totally-new-model-9" in record.getMessage() for record in caplog.records) == 1
    assert "costspan.cost" not in otel.metrics()


def test_azure_deployment_priced_through_alias(server: ProviderServer, otel, instrument) -> None:
    import openai

    instrument(model_aliases={"prod-gpt": "gpt-4.1-mini"})
    client = openai.AzureOpenAI(
        azure_endpoint=server.url,
        azure_deployment="prod-gpt",
        api_key="azure-key",
        api_version="2024-10-21",
        max_retries=0,
    )
    server.push(Reply(model="prod-gpt", usage=_chat_usage(2000, 1000)))
    client.chat.completions.create(model="prod-gpt", messages=[{"role": "user", "content": "hello"}])
    attributes = otel.span().attributes
    assert attributes["gen_ai.provider.name"] == "azure.ai.openai"
    assert attributes["server.address"] == "127.0.0.1"
    assert math.isclose(attributes["gen_ai.usage.cost.amount"], 2000 * 0.4 * M + 1000 * 1.6 * M, abs_tol=1e-9)
    assert attributes["costspan.price.model"] == "gpt-4.1-mini"


def test_configured_deployment_price_wins_over_the_response_model(server: ProviderServer, otel, instrument) -> None:
    import openai

    instrument(prices={"models": {"prod-gpt": {"input": 0.3, "output": 1.2}}})
    client = openai.AzureOpenAI(
        azure_endpoint=server.url, azure_deployment="prod-gpt", api_key="azure-key", api_version="2024-10-21"
    )
    server.push(Reply(model="gpt-4.1-mini-2025-04-14", usage=_chat_usage(2000, 1000)))
    client.chat.completions.create(model="prod-gpt", messages=[{"role": "user", "content": "hello"}])
    attributes = otel.span().attributes
    assert attributes["gen_ai.response.model"] == "gpt-4.1-mini-2025-04-14"
    assert math.isclose(attributes["gen_ai.usage.cost.amount"], 2000 * 0.3 * M + 1000 * 1.2 * M, abs_tol=1e-9)
    assert attributes["costspan.price.model"] == "prod-gpt"
    assert attributes["costspan.price.source"] == "override"
