"""boto3's bedrock-runtime Converse and ConverseStream, end to end against the local server: counts and exact costs
(Anthropic, Nova, Llama and Mistral ids, with and without regional or cross-region prefixes; cache reads and
writes), errors, interrupted streams, malformed usage, budgets, and other botocore calls left alone."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from bedrock.helpers import (
    CLAUDE,
    HAIKU_GLOBAL,
    HAIKU_REGIONAL,
    LLAMA_31_70B,
    MESSAGES,
    MISTRAL_LARGE,
    NOVA_LITE,
    NOVA_PRO,
    M,
    bedrock_client,
    converse,
    text_of,
)
from botocore.exceptions import ClientError, EventStreamError

import costspan
from costspan.budgets import Budget, BudgetExceededError
from costspan.testing import ProviderServer, Reply


@dataclass(frozen=True)
class Case:
    model: str
    usage: dict[str, int]
    """Converse's usage, in its wire shape."""
    tokens: dict[str, int]
    parts: dict[str, float]
    price_model: str


def _usage(uncached: int, output: int, read: int = 0, write: int = 0) -> dict[str, int]:
    usage = {"inputTokens": uncached, "outputTokens": output, "totalTokens": uncached + read + write + output}
    if read or write:
        usage |= {"cacheReadInputTokens": read, "cacheWriteInputTokens": write}
    return usage


CASES = {
    "claude-regional": Case(
        CLAUDE,
        _usage(100, 50, read=2000, write=500),
        {"input_tokens": 2600, "output_tokens": 50, "cache_read.input_tokens": 2000, "cache_write.input_tokens": 500},
        {
            "input": 100 * HAIKU_REGIONAL["input"] * M,
            "cache_read": 2000 * HAIKU_REGIONAL["read"] * M,
            "cache_write": 500 * HAIKU_REGIONAL["write"] * M,
            "output": 50 * HAIKU_REGIONAL["output"] * M,
        },
        "regional.anthropic.claude-haiku-4-5-20251001-v1:0",
    ),
    "claude-in-region": Case(
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        _usage(1000, 200),
        {"input_tokens": 1000, "output_tokens": 200},
        {"input": 1000 * HAIKU_REGIONAL["input"] * M, "output": 200 * HAIKU_REGIONAL["output"] * M},
        "regional.anthropic.claude-haiku-4-5-20251001-v1:0",
    ),
    "claude-global": Case(
        "global.anthropic.claude-haiku-4-5-20251001-v1:0",
        _usage(1000, 200),
        {"input_tokens": 1000, "output_tokens": 200},
        {"input": 1000 * HAIKU_GLOBAL["input"] * M, "output": 200 * HAIKU_GLOBAL["output"] * M},
        "global.anthropic.claude-haiku-4-5-20251001-v1:0",
    ),
    "nova-pro-cached": Case(
        "amazon.nova-pro-v1:0",
        _usage(500, 300, read=4000),
        {"input_tokens": 4500, "output_tokens": 300, "cache_read.input_tokens": 4000},
        {
            "input": 500 * NOVA_PRO["input"] * M,
            "cache_read": 4000 * NOVA_PRO["read"] * M,
            "output": 300 * NOVA_PRO["output"] * M,
        },
        "amazon.nova-pro-v1:0",
    ),
    "nova-lite-us": Case(
        "us.amazon.nova-lite-v1:0",
        _usage(8000, 1000),
        {"input_tokens": 8000, "output_tokens": 1000},
        {"input": 8000 * NOVA_LITE["input"] * M, "output": 1000 * NOVA_LITE["output"] * M},
        "amazon.nova-lite-v1:0",
    ),
    "llama": Case(
        "meta.llama3-1-70b-instruct-v1:0",
        _usage(700, 300),
        {"input_tokens": 700, "output_tokens": 300},
        {"input": 700 * LLAMA_31_70B["input"] * M, "output": 300 * LLAMA_31_70B["output"] * M},
        "meta.llama3-1-70b-instruct-v1:0",
    ),
    "mistral": Case(
        "mistral.mistral-large-2402-v1:0",
        _usage(700, 300),
        {"input_tokens": 700, "output_tokens": 300},
        {"input": 700 * MISTRAL_LARGE["input"] * M, "output": 300 * MISTRAL_LARGE["output"] * M},
        "mistral.mistral-large-2402-v1:0",
    ),
}


@pytest.mark.parametrize("stream", [False, True], ids=["converse", "converse-stream"])
@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_cost_matches_hand_computation(
    case: Case, stream: bool, client: Any, server: ProviderServer, otel: Any
) -> None:
    server.push(Reply(usage=case.usage, chunks=4))
    converse(client, stream=stream, model=case.model, maxTokens=512)
    span = otel.span()
    assert span.name == f"chat {case.model}"
    attributes = span.attributes
    assert attributes["gen_ai.provider.name"] == "aws.bedrock"
    assert attributes["gen_ai.request.max_tokens"] == 512
    assert attributes["gen_ai.request.stream"] is stream
    for key, value in case.tokens.items():
        assert attributes[f"gen_ai.usage.{key}"] == value, key
    for part in ("input", "output", "cache_read", "cache_write", "other"):
        assert attributes[f"costspan.cost.{part}"] == pytest.approx(case.parts.get(part, 0.0), abs=1e-9), part
    assert attributes["gen_ai.usage.cost.amount"] == pytest.approx(sum(case.parts.values()), abs=1e-9)
    assert attributes["costspan.price.model"] == case.price_model
    assert attributes["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert "costspan.usage.estimated" not in attributes
    assert len(attributes["aws.request_id"]) == 36  # a uuid, the response's x-amzn-requestid
    assert "gen_ai.response.id" not in attributes  # Bedrock gives no id of the completion
    otel.lifecycle.assert_each_ended_once()


def test_the_user_gets_what_boto3_gives(client: Any, server: ProviderServer, otel: Any) -> None:
    """Same response dict, same events, the stream still botocore's EventStream (and closable)."""
    from botocore.eventstream import EventStream

    server.push(Reply(text="one two three", chunks=3), Reply(text="one two three", chunks=3))
    response = client.converse(modelId=CLAUDE, messages=MESSAGES)
    assert text_of(response) == "one two three"
    assert set(response) == {"ResponseMetadata", "output", "stopReason", "usage", "metrics"}
    streamed = client.converse_stream(modelId=CLAUDE, messages=MESSAGES)
    assert isinstance(streamed["stream"], EventStream)
    assert set(streamed) == {"ResponseMetadata", "stream"}
    events = list(streamed["stream"])
    assert text_of(events) == "one two three"
    assert [next(iter(event)) for event in events][-2:] == ["messageStop", "metadata"]
    assert len(otel.spans()) == 2


def test_a_failed_request_costs_nothing(client: Any, server: ProviderServer, otel: Any) -> None:
    server.push(Reply(status=429))
    with pytest.raises(ClientError) as raised:
        converse(client)
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    attributes = otel.span().attributes
    assert attributes["error.type"] == "ThrottlingException"
    assert not any(key.startswith(("gen_ai.usage", "costspan.cost")) for key in attributes)


def test_an_interrupted_stream_is_estimated(client: Any, server: ProviderServer, otel: Any) -> None:
    server.push(Reply(text=" ".join(str(n) for n in range(20)), chunks=20, error_after=5))
    events: list[Any] = []
    with pytest.raises(EventStreamError):
        events.extend(client.converse_stream(modelId=CLAUDE, messages=MESSAGES)["stream"])
    assert sum("contentBlockDelta" in event for event in events) == 5
    attributes = otel.span().attributes
    assert (attributes["costspan.stream.completed"], attributes["costspan.usage.estimated"]) == (False, True)
    assert attributes["error.type"] == "EventStreamError"
    assert attributes["gen_ai.usage.input_tokens"] >= 1
    assert 1 <= attributes["gen_ai.usage.output_tokens"] < 20
    assert attributes["gen_ai.usage.cost.amount"] > 0


@pytest.mark.parametrize(
    "usage",
    [{"inputTokens": -1, "outputTokens": 9}, {"outputTokens": 9}, {"inputTokens": 12, "outputTokens": 10**12}],
    ids=["negative", "missing", "too-large"],
)
def test_malformed_usage_is_estimated_never_free(usage: Any, client: Any, server: ProviderServer, otel: Any) -> None:
    server.push(Reply(usage=usage))  # type: ignore[arg-type]
    assert text_of(converse(client)) == "The quick brown fox jumps over the lazy dog."
    attributes = otel.span().attributes
    assert attributes["costspan.usage.estimated"] is True
    assert attributes["gen_ai.usage.input_tokens"] >= 1 and attributes["gen_ai.usage.output_tokens"] >= 1
    assert attributes["gen_ai.usage.cost.amount"] > 0


def test_other_botocore_calls_are_left_alone(client: Any, server: ProviderServer, otel: Any) -> None:
    """Another service's client, and a bedrock-runtime operation costspan does not trace, go straight through."""
    s3 = bedrock_client(server, "s3")
    with pytest.raises(ClientError):
        s3.list_buckets()
    with pytest.raises(ClientError):
        client.apply_guardrail(guardrailIdentifier="g", guardrailVersion="1", source="INPUT", content=[])
    assert otel.spans() == []
    assert len(server.requests) == 2


def test_uninstrument_restores_botocore(server: ProviderServer, otel: Any, instrument: Any) -> None:
    from botocore.client import BaseClient

    original = BaseClient.__dict__["_make_api_call"]
    instrument()
    assert BaseClient.__dict__["_make_api_call"] is not original
    costspan.CostspanInstrumentor().uninstrument()
    assert BaseClient.__dict__["_make_api_call"] is original
    client = bedrock_client(server)
    converse(client)
    assert otel.spans() == []
    instrument()
    converse(client)
    assert len(otel.spans()) == 1


def _claude_cost(input_tokens: int, output_tokens: int) -> float:
    cost = costspan.cost_of("aws.bedrock", CLAUDE, costspan.Usage(input_tokens, output_tokens))
    assert cost is not None
    return cost.amount


def test_budget_refuses_before_sending_and_cuts_a_stream(server: ProviderServer, otel: Any, instrument: Any) -> None:
    budget = Budget(_claude_cost(20, 20) * 2, name=f"bedrock-{uuid.uuid4().hex[:8]}")
    instrument(budgets=[budget], default_max_output_tokens=20)
    client = bedrock_client(server)
    with pytest.raises(BudgetExceededError):
        converse(client, maxTokens=4000)
    assert server.requests == [], "a refused call is never sent"
    server.push(Reply(text="storm " * 300, chunks=150, chunk_delay=0.002))
    events: list[Any] = []
    with pytest.raises(BudgetExceededError):
        for event in client.converse_stream(modelId=CLAUDE, messages=MESSAGES)["stream"]:
            events.append(event)
    assert 1 <= len(events) < 150
    deadline = time.monotonic() + 5
    while not server.hangups:
        assert time.monotonic() < deadline, "the stream was not closed upstream"
        time.sleep(0.02)
    refused, cut = otel.spans()
    assert refused.attributes["error.type"] == cut.attributes["error.type"] == "BudgetExceededError"
    assert cut.attributes["costspan.stream.completed"] is False
    assert budget.spent() == pytest.approx(cut.attributes["gen_ai.usage.cost.amount"], abs=1e-9)
    assert budget.spent() <= budget.limit_usd + _claude_cost(0, 2)  # but for the chunk that crossed it
