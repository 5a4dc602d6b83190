"""boto3's bedrock-runtime Converse and ConverseStream, end to end against the local server: counts and exact costs
(Anthropic, Nova, Llama and Mistral ids, with and without regional or cross-region prefixes; cache reads and
writes), errors, interrupted streams, malformed usage, budgets, and other botocore calls left alone."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from bedrock.helpers import CASES, CLAUDE, MESSAGES, bedrock_client, converse, text_of
from botocore.exceptions import ClientError, EventStreamError
from cost_cases import CostCase, assert_priced

import costspan
from costspan.budgets import Budget, BudgetExceededError
from costspan.testing import ProviderServer, Reply
from support import wait_for_hangup


@pytest.mark.parametrize("stream", [False, True], ids=["converse", "converse-stream"])
@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_cost_matches_hand_computation(
    case: CostCase, stream: bool, client: Any, server: ProviderServer, otel: Any
) -> None:
    server.push(Reply(usage=case.usage, chunks=4))
    converse(client, stream=stream, model=case.model, maxTokens=512)
    span = otel.span()
    assert span.name == f"chat {case.model}"
    attributes = span.attributes
    assert attributes["gen_ai.provider.name"] == "aws.bedrock"
    assert attributes["gen_ai.request.max_tokens"] == 512
    assert attributes["gen_ai.request.stream"] is stream
    assert_priced(attributes, case)
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
    wait_for_hangup(server)
    refused, cut = otel.spans()
    assert refused.attributes["error.type"] == cut.attributes["error.type"] == "BudgetExceededError"
    assert cut.attributes["costspan.stream.completed"] is False
    assert budget.spent() == pytest.approx(cut.attributes["gen_ai.usage.cost.amount"], abs=1e-9)
    assert budget.spent() <= budget.limit_usd + _claude_cost(0, 2)  # but for the chunk that crossed it
