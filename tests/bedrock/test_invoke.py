"""boto3's InvokeModel and InvokeModelWithResponseStream with an Anthropic body: counts from Bedrock's token-count
headers and from the last chunk's ``amazon-bedrock-invocationMetrics``, exact costs by hand, the body left for the
user to read, and the body's output bound reserved by a budget."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from bedrock.helpers import CLAUDE, bedrock_client

from costspan.budgets import Budget, BudgetExceededError
from costspan.testing import ProviderServer, Reply

M = 1e-6
HAIKU_REGIONAL = {"input": 1.1, "output": 5.5}  # USD per MTok, genai-prices' aws price of CLAUDE
BODY = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "Summarise the quarterly report."}],
}


def _invoke(client: Any, stream: bool) -> str:
    """The text, read from the body as users read it."""
    if not stream:
        response = client.invoke_model(modelId=CLAUDE, body=json.dumps(BODY))
        return json.loads(response["body"].read())["content"][0]["text"]
    response = client.invoke_model_with_response_stream(modelId=CLAUDE, body=json.dumps(BODY))
    events = [json.loads(event["chunk"]["bytes"]) for event in response["body"]]
    return "".join(event["delta"]["text"] for event in events if event["type"] == "content_block_delta")


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "invoke-stream"])
def test_cost_from_bedrocks_counts(stream: bool, client: Any, server: ProviderServer, otel: Any) -> None:
    server.push(Reply(text="one two three four", chunks=4, usage={"input_tokens": 1500, "output_tokens": 300}))
    assert _invoke(client, stream) == "one two three four"
    attributes = otel.span().attributes
    assert attributes["gen_ai.provider.name"] == "aws.bedrock"
    assert (attributes["gen_ai.request.max_tokens"], attributes["gen_ai.request.stream"]) == (256, stream)
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (1500, 300)
    expected = 1500 * HAIKU_REGIONAL["input"] * M + 300 * HAIKU_REGIONAL["output"] * M
    assert attributes["gen_ai.usage.cost.amount"] == pytest.approx(expected, abs=1e-9)
    assert "costspan.usage.estimated" not in attributes


def test_an_interrupted_stream_is_estimated_from_its_text(client: Any, server: ProviderServer, otel: Any) -> None:
    server.push(Reply(text=" ".join(str(n) for n in range(20)), chunks=20, error_after=5))
    with pytest.raises(Exception, match="interrupted"):
        _invoke(client, stream=True)
    attributes = otel.span().attributes
    assert (attributes["costspan.stream.completed"], attributes["costspan.usage.estimated"]) == (False, True)
    assert 1 <= attributes["gen_ai.usage.output_tokens"] < 20


def test_the_bodys_output_bound_is_reserved(server: ProviderServer, otel: Any, instrument: Any) -> None:
    budget = Budget(0.001, name=f"invoke-{uuid.uuid4().hex[:8]}")
    instrument(budgets=[budget])
    client = bedrock_client(server)
    with pytest.raises(BudgetExceededError):
        client.invoke_model(modelId=CLAUDE, body=json.dumps({**BODY, "max_tokens": 4000}))
    assert server.requests == []
