"""What the Bedrock tests share: a real boto3 ``bedrock-runtime`` client of the local server (fake credentials,
no retries, nothing leaves the machine), one Converse call as users write it, and the cost cases (Anthropic, Nova,
Llama and Mistral ids, with and without regional or cross-region prefixes; cache reads and writes) with their
hand-computed costs."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from cost_cases import CostCase, M

from costspan.testing import ProviderServer

MESSAGES = [{"role": "user", "content": [{"text": "Summarise the quarterly report in three bullet points."}]}]
CLAUDE = "us.anthropic.claude-haiku-4-5-20251001-v1:0"

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


def converse_usage(uncached: int, output: int, read: int = 0, write: int = 0) -> dict[str, int]:
    usage = {"inputTokens": uncached, "outputTokens": output, "totalTokens": uncached + read + write + output}
    if read or write:
        usage |= {"cacheReadInputTokens": read, "cacheWriteInputTokens": write}
    return usage


CASES = {
    "claude-regional": CostCase(
        CLAUDE,
        converse_usage(100, 50, read=2000, write=500),
        {"input_tokens": 2600, "output_tokens": 50, "cache_read.input_tokens": 2000, "cache_write.input_tokens": 500},
        {
            "input": 100 * HAIKU_REGIONAL["input"] * M,
            "cache_read": 2000 * HAIKU_REGIONAL["read"] * M,
            "cache_write": 500 * HAIKU_REGIONAL["write"] * M,
            "output": 50 * HAIKU_REGIONAL["output"] * M,
        },
        "regional.anthropic.claude-haiku-4-5-20251001-v1:0",
    ),
    "claude-in-region": CostCase(
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        converse_usage(1000, 200),
        {"input_tokens": 1000, "output_tokens": 200},
        {"input": 1000 * HAIKU_REGIONAL["input"] * M, "output": 200 * HAIKU_REGIONAL["output"] * M},
        "regional.anthropic.claude-haiku-4-5-20251001-v1:0",
    ),
    "claude-global": CostCase(
        "global.anthropic.claude-haiku-4-5-20251001-v1:0",
        converse_usage(1000, 200),
        {"input_tokens": 1000, "output_tokens": 200},
        {"input": 1000 * HAIKU_GLOBAL["input"] * M, "output": 200 * HAIKU_GLOBAL["output"] * M},
        "global.anthropic.claude-haiku-4-5-20251001-v1:0",
    ),
    "nova-pro-cached": CostCase(
        "amazon.nova-pro-v1:0",
        converse_usage(500, 300, read=4000),
        {"input_tokens": 4500, "output_tokens": 300, "cache_read.input_tokens": 4000},
        {
            "input": 500 * NOVA_PRO["input"] * M,
            "cache_read": 4000 * NOVA_PRO["read"] * M,
            "output": 300 * NOVA_PRO["output"] * M,
        },
        "amazon.nova-pro-v1:0",
    ),
    "nova-lite-us": CostCase(
        "us.amazon.nova-lite-v1:0",
        converse_usage(8000, 1000),
        {"input_tokens": 8000, "output_tokens": 1000},
        {"input": 8000 * NOVA_LITE["input"] * M, "output": 1000 * NOVA_LITE["output"] * M},
        "amazon.nova-lite-v1:0",
    ),
    "llama": CostCase(
        "meta.llama3-1-70b-instruct-v1:0",
        converse_usage(700, 300),
        {"input_tokens": 700, "output_tokens": 300},
        {"input": 700 * LLAMA_31_70B["input"] * M, "output": 300 * LLAMA_31_70B["output"] * M},
        "meta.llama3-1-70b-instruct-v1:0",
    ),
    "mistral": CostCase(
        "mistral.mistral-large-2402-v1:0",
        converse_usage(700, 300),
        {"input_tokens": 700, "output_tokens": 300},
        {"input": 700 * MISTRAL_LARGE["input"] * M, "output": 300 * MISTRAL_LARGE["output"] * M},
        "mistral.mistral-large-2402-v1:0",
    ),
}
