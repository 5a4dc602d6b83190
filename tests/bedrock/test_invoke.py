"""boto3's InvokeModel and InvokeModelWithResponseStream with each model family's own body (Anthropic, Meta Llama,
Mistral, Amazon Nova): counts from Bedrock's token-count headers and from the last chunk's
``amazon-bedrock-invocationMetrics``, from the body when a proxy dropped the headers, exact costs by hand on the
span, the metrics and the ledger, the body left for the user to read, and the body's output bound reserved and a
stream cut by a budget."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from bedrock.helpers import CASES, bedrock_client
from cost_cases import CostCase, assert_priced

import costspan
from costspan.budgets import Budget, BudgetExceededError
from costspan.testing import ProviderServer, Reply
from ledger_support import rows
from support import wait_for_hangup

PROMPT = "Summarise the quarterly report."


@dataclass(frozen=True)
class Family:
    """One model family's InvokeModel body, as its users write and read it."""

    request: Callable[[int], dict[str, Any]]
    """The request body, with this output bound."""
    text: Callable[[dict[str, Any]], str]
    """The text of a complete response body."""
    chunk_text: Callable[[dict[str, Any]], str]
    """The text of one stream chunk ("" for a chunk without any)."""
    case: CostCase
    """Its usage is Anthropic's usage object for Claude, Bedrock's invocation metrics for the others."""
    finish_reason: str


def _metrics(case: CostCase) -> dict[str, int]:
    """A Converse case's counts as Bedrock's invocation metrics (Reply.usage of a Llama, Mistral or Nova body)."""
    usage = case.usage
    metrics = {"inputTokenCount": usage["inputTokens"], "outputTokenCount": usage["outputTokens"]}
    if usage.get("cacheReadInputTokens"):
        metrics["cacheReadInputTokenCount"] = usage["cacheReadInputTokens"]
    return metrics


CLAUDE_USAGE = {
    "input_tokens": 100,
    "cache_read_input_tokens": 2000,
    "cache_creation_input_tokens": 500,
    "output_tokens": 50,
}
# The Converse cases' counts and costs, reported in each family's own body.
FAMILIES = {
    "anthropic": Family(
        lambda bound: {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": bound,
            "messages": [{"role": "user", "content": PROMPT}],
        },
        lambda body: body["content"][0]["text"],
        lambda chunk: chunk["delta"]["text"] if chunk["type"] == "content_block_delta" else "",
        replace(CASES["claude-regional"], usage=CLAUDE_USAGE),
        "end_turn",
    ),
    "llama": Family(
        lambda bound: {"prompt": f"<|begin_of_text|>{PROMPT}", "max_gen_len": bound, "temperature": 0.5},
        lambda body: body["generation"],
        lambda chunk: chunk["generation"],
        replace(CASES["llama"], model=f"us.{CASES['llama'].model}", usage=_metrics(CASES["llama"])),
        "stop",
    ),
    "mistral": Family(
        lambda bound: {"prompt": f"<s>[INST] {PROMPT} [/INST]", "max_tokens": bound, "temperature": 0.5},
        lambda body: body["outputs"][0]["text"],
        lambda chunk: chunk["outputs"][0]["text"],
        replace(CASES["mistral"], usage=_metrics(CASES["mistral"])),
        "stop",
    ),
    "nova": Family(
        lambda bound: {
            "schemaVersion": "messages-v1",
            "messages": [{"role": "user", "content": [{"text": PROMPT}]}],
            "inferenceConfig": {"maxTokens": bound, "topP": 0.9},
        },
        lambda body: "".join(block.get("text", "") for block in body["output"]["message"]["content"]),
        lambda chunk: chunk["contentBlockDelta"]["delta"]["text"] if "contentBlockDelta" in chunk else "",
        replace(CASES["nova-pro-cached"], usage=_metrics(CASES["nova-pro-cached"])),
        "end_turn",
    ),
}
each_family = pytest.mark.parametrize("family", list(FAMILIES.values()), ids=list(FAMILIES))
HEADERS = ("input", "output", "cache-read-input", "cache-write-input")
NO_COUNT_HEADERS: dict[str, str | None] = {f"x-amzn-bedrock-{kind}-token-count": None for kind in HEADERS}


def invoke(client: Any, family: Family, stream: bool, bound: int = 256) -> str:
    """The text, read from the body as users read it: json.loads of ``body.read()``, or of each chunk's bytes."""
    body = json.dumps(family.request(bound))
    if not stream:
        response = client.invoke_model(modelId=family.case.model, body=body)
        return family.text(json.loads(response["body"].read()))
    response = client.invoke_model_with_response_stream(modelId=family.case.model, body=body)
    return "".join(family.chunk_text(json.loads(event["chunk"]["bytes"])) for event in response["body"])


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "invoke-stream"])
@each_family
def test_cost_from_bedrocks_counts(
    family: Family, stream: bool, server: ProviderServer, otel: Any, instrument: Any, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.db"
    instrument(ledger=ledger)
    request_id = str(uuid.uuid4())
    server.push(
        Reply(text="one two three four", chunks=4, usage=family.case.usage, headers={"x-amzn-requestid": request_id})
    )
    assert invoke(bedrock_client(server), family, stream) == "one two three four"
    span = otel.span()
    attributes = span.attributes
    assert (span.name, attributes["gen_ai.provider.name"]) == (f"chat {family.case.model}", "aws.bedrock")
    assert (attributes["gen_ai.request.max_tokens"], attributes["gen_ai.request.stream"]) == (256, stream)
    assert_priced(attributes, family.case)
    if stream:
        assert attributes["gen_ai.response.finish_reasons"] == (family.finish_reason,)
    amount = attributes["gen_ai.usage.cost.amount"]
    metrics = otel.metrics()
    assert sum(point.value for point in metrics["costspan.cost"]) == pytest.approx(amount, abs=1e-12)
    by_type = {point.attributes["gen_ai.token.type"]: point.sum for point in metrics["gen_ai.client.token.usage"]}
    assert by_type == {"input": family.case.tokens["input_tokens"], "output": family.case.tokens["output_tokens"]}
    assert costspan.CostspanInstrumentor()._ledger.force_flush()
    (row,) = rows(ledger)
    assert (row["provider"], row["request_model"], row["cost_usd"]) == ("aws.bedrock", family.case.model, amount)
    assert (row["input_tokens"], row["output_tokens"], row["estimated"]) == (
        family.case.tokens["input_tokens"],
        family.case.tokens["output_tokens"],
        0,
    )
    assert row["cache_read_tokens"] == family.case.tokens.get("cache_read.input_tokens", 0)
    assert row["request_id"] == attributes["aws.request_id"] == request_id


@each_family
def test_without_count_headers_the_body_has_the_counts(
    family: Family, client: Any, server: ProviderServer, otel: Any
) -> None:
    """A proxy that drops Bedrock's token-count headers: the counts the body carries (Mistral's carries none: its
    text makes an estimate), and the user still reads the whole body."""
    server.push(Reply(text="one two three four", chunks=4, usage=family.case.usage, headers=NO_COUNT_HEADERS))
    assert invoke(client, family, stream=False) == "one two three four"
    assert otel.span().attributes["gen_ai.response.finish_reasons"] == (family.finish_reason,)
    attributes = otel.span().attributes
    if family is not FAMILIES["mistral"]:
        assert_priced(attributes, family.case)
        return
    assert attributes["costspan.usage.estimated"] is True
    assert attributes["gen_ai.usage.input_tokens"] >= 1 and attributes["gen_ai.usage.output_tokens"] >= 1
    assert attributes["gen_ai.usage.cost.amount"] > 0


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "invoke-stream"])
@each_family
def test_content_capture_reads_each_familys_body(
    family: Family, stream: bool, server: ProviderServer, otel: Any, instrument: Any
) -> None:
    """With content capture on, the span has the body's messages (Llama's and Mistral's prompt string as one user
    message) and its output in the conventions' shape, with the stop reason; the user still reads the whole body."""
    instrument(capture_content=True)
    server.push(Reply(text="one two three four", chunks=4, usage=family.case.usage))
    assert invoke(bedrock_client(server), family, stream) == "one two three four"
    attributes = otel.span().attributes
    assert attributes["gen_ai.response.finish_reasons"] == (family.finish_reason,)
    prompt = family.request(256).get("prompt", PROMPT)
    assert json.loads(attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": prompt}]}
    ]
    answer = {"type": "text", "content": "one two three four"}
    assert json.loads(attributes["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [answer], "finish_reason": family.finish_reason}
    ]
    assert "gen_ai.system_instructions" not in attributes


@each_family
def test_an_interrupted_stream_is_estimated_from_its_text(
    family: Family, client: Any, server: ProviderServer, otel: Any
) -> None:
    server.push(Reply(text=" ".join(str(n) for n in range(20)), chunks=20, error_after=5))
    with pytest.raises(Exception, match="interrupted"):
        invoke(client, family, stream=True)
    attributes = otel.span().attributes
    assert (attributes["costspan.stream.completed"], attributes["costspan.usage.estimated"]) == (False, True)
    assert 1 <= attributes["gen_ai.usage.output_tokens"] < 20


def _cost(model: str, input_tokens: int, output_tokens: int) -> float:
    cost = costspan.cost_of("aws.bedrock", model, costspan.Usage(input_tokens, output_tokens))
    assert cost is not None
    return cost.amount


@each_family
def test_budget_reserves_the_bodys_bound_and_cuts_a_stream(
    family: Family, server: ProviderServer, otel: Any, instrument: Any
) -> None:
    """The body's own output bound (max_tokens, max_gen_len, inferenceConfig.maxTokens) is reserved before sending;
    a stream's running cost, from its text in the family's chunk shape, closes it upstream past the limit."""
    budget = Budget(_cost(family.case.model, 20, 20) * 2, name=f"invoke-{uuid.uuid4().hex[:8]}")
    instrument(budgets=[budget])
    client = bedrock_client(server)
    with pytest.raises(BudgetExceededError):
        invoke(client, family, stream=False, bound=4000)
    assert server.requests == [], "a refused call is never sent"
    server.push(Reply(text="storm " * 300, chunks=150, chunk_delay=0.002))
    with pytest.raises(BudgetExceededError):
        invoke(client, family, stream=True, bound=20)  # a server that does not honour the bound
    wait_for_hangup(server)
    refused, cut = otel.spans()
    assert refused.attributes["error.type"] == cut.attributes["error.type"] == "BudgetExceededError"
    assert cut.attributes["costspan.stream.completed"] is False
    assert budget.spent() == pytest.approx(cut.attributes["gen_ai.usage.cost.amount"], abs=1e-9)
    # but for the chunk that crossed it: 12 characters, at most 4 tokens
    assert budget.spent() <= budget.limit_usd + _cost(family.case.model, 0, 4)
