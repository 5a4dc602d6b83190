"""What the Bedrock tests share: a real boto3 ``bedrock-runtime`` client of the local server (fake credentials,
no retries, nothing leaves the machine) and one Converse call as users write it."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from costspan.testing import ProviderServer

MESSAGES = [{"role": "user", "content": [{"text": "Summarise the quarterly report in three bullet points."}]}]
CLAUDE = "us.anthropic.claude-haiku-4-5-20251001-v1:0"

M = 1e-6  # USD per token, for prices given per million tokens (MTok)
# USD per MTok, from genai-prices' data (provider "aws"): Bedrock's in-region and regional (us., eu.) Claude ids
# cost 10% more than the global cross-region profile's.
HAIKU_REGIONAL = {"input": 1.1, "output": 5.5, "read": 0.11, "write": 1.375}
HAIKU_GLOBAL = {"input": 1.0, "output": 5.0}
NOVA_PRO = {"input": 0.8, "output": 3.2, "read": 0.2}
NOVA_LITE = {"input": 0.06, "output": 0.24}
LLAMA_31_70B = {"input": 0.72, "output": 0.72}
MISTRAL_LARGE = {"input": 4.0, "output": 12.0}


def bedrock_client(server: ProviderServer, service: str = "bedrock-runtime") -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=server.url,
        aws_access_key_id="AKIACOSTSPANTEST",
        aws_secret_access_key="costspan-test-secret",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=10),
    )


def converse(client: Any, *, stream: bool = False, model: str = CLAUDE, **inference: Any) -> Any:
    """``converse(...)``, or ``for event in converse_stream(...)["stream"]`` (the events, as a list)."""
    arguments: dict[str, Any] = {"modelId": model, "messages": MESSAGES}
    if inference:
        arguments["inferenceConfig"] = inference
    if not stream:
        return client.converse(**arguments)
    return list(client.converse_stream(**arguments)["stream"])


def text_of(result: Any) -> str:
    if isinstance(result, dict):
        return "".join(block.get("text", "") for block in result["output"]["message"]["content"])
    return "".join(event["contentBlockDelta"]["delta"]["text"] for event in result if "contentBlockDelta" in event)
