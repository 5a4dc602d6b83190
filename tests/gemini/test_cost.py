"""Gemini's usage_metadata becomes costspan's counts (input = prompt + tool-use prompt, cached content its cached
part, output = candidates + thoughts, thoughts its reasoning part) and the cost equals a hand computation from
genai-prices' ``google`` prices, for responses and streams, sync and async, on the Gemini API and Vertex AI, and
the ledger row says the same as the span."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cost_cases import CostCase, M, assert_priced
from gemini.helpers import PLATFORMS, PROVIDER_NAMES, drive, generate

import costspan
from costspan.testing import ProviderServer, Reply
from ledger_support import rows
from support import Driver

# USD per MTok, from genai-prices' data (provider "google"), which agree with Google's published prices
# (ai.google.dev/gemini-api/docs/pricing): cached input at a tenth of input; thinking billed as output.
FLASH = {"input": 0.3, "output": 2.5, "read": 0.03}
FLASH_LITE = {"input": 0.1, "output": 0.4, "read": 0.01}
# gemini-2.5-pro up to 200K input tokens, and past them (every token of the request at the higher price).
PRO = {"input": 1.25, "output": 10, "read": 0.125}
PRO_LONG = {"input": 2.5, "output": 15, "read": 0.25}


def usage(prompt: int, candidates: int, *, cached: int = 0, thoughts: int = 0, tool_use: int = 0) -> dict[str, Any]:
    """A usageMetadata, in its wire shape (camelCase, absent counts left out as Gemini leaves them out)."""
    out: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + thoughts + tool_use,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    for key, value in (
        ("cachedContentTokenCount", cached),
        ("thoughtsTokenCount", thoughts),
        ("toolUsePromptTokenCount", tool_use),
    ):
        if value:
            out[key] = value
    return out


CASES = {
    "flash": CostCase(
        "gemini-2.5-flash",
        usage(1000, 500),
        {"input_tokens": 1000, "output_tokens": 500},
        {"input": 1000 * FLASH["input"] * M, "output": 500 * FLASH["output"] * M},
    ),
    "flash-lite": CostCase(
        "gemini-2.5-flash-lite",
        usage(4000, 250),
        {"input_tokens": 4000, "output_tokens": 250},
        {"input": 4000 * FLASH_LITE["input"] * M, "output": 250 * FLASH_LITE["output"] * M},
    ),
    "cached content": CostCase(
        "gemini-2.5-flash",
        usage(10_000, 100, cached=8_000),
        {"input_tokens": 10_000, "output_tokens": 100, "cache_read.input_tokens": 8_000},
        {
            "input": 2_000 * FLASH["input"] * M,
            "cache_read": 8_000 * FLASH["read"] * M,
            "output": 100 * FLASH["output"] * M,
        },
    ),
    "thinking": CostCase(
        "gemini-2.5-pro",
        usage(500, 200, thoughts=1_300),
        {"input_tokens": 500, "output_tokens": 1_500, "reasoning.output_tokens": 1_300},
        {"input": 500 * PRO["input"] * M, "output": 1_500 * PRO["output"] * M},
    ),
    "tool-use prompt": CostCase(
        "gemini-2.5-flash",
        usage(300, 50, tool_use=700),
        {"input_tokens": 1_000, "output_tokens": 50},
        {"input": 1_000 * FLASH["input"] * M, "output": 50 * FLASH["output"] * M},
    ),
    "long context": CostCase(
        "gemini-2.5-pro",
        usage(250_000, 1_000, cached=50_000, thoughts=500),
        {
            "input_tokens": 250_000,
            "output_tokens": 1_500,
            "cache_read.input_tokens": 50_000,
            "reasoning.output_tokens": 500,
        },
        {
            "input": 200_000 * PRO_LONG["input"] * M,
            "cache_read": 50_000 * PRO_LONG["read"] * M,
            "output": 1_500 * PRO_LONG["output"] * M,
        },
    ),
}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_cost_matches_hand_computation(
    case: CostCase, stream: bool, gem: Driver, server: ProviderServer, otel: Any
) -> None:
    server.push(Reply(usage=case.usage, chunks=4))
    generate(gem, stream=stream, model=case.model)
    span = otel.span()
    assert span.name == f"chat {case.model}"
    assert span.attributes["gen_ai.provider.name"] == "gcp.gemini"
    assert_priced(span.attributes, case)
    otel.lifecycle.assert_each_ended_once()


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("platform", PLATFORMS)
def test_each_platform_is_priced_under_its_own_provider_name(
    platform: str, mode: str, server: ProviderServer, otel: Any, instrumented: None
) -> None:
    case = CASES["cached content"]
    for driver in drive(mode, server, platform):
        server.push(Reply(usage=case.usage), Reply(usage=case.usage, chunks=3))
        generate(driver, model=case.model)
        generate(driver, stream=True, model=case.model)
    paths = [request.path for request in server.requests]
    assert len(paths) == 2 and all(path.endswith(f"/{case.model}:generateContent") for path in paths[:1])
    assert paths[1].endswith(":streamGenerateContent")
    if platform == "vertex":
        assert "/projects/costspan-test/locations/us-central1/publishers/google/models/" in paths[0]
    for span in otel.spans():
        assert span.attributes["gen_ai.provider.name"] == PROVIDER_NAMES[platform]
        assert_priced(span.attributes, case)


def test_ledger_row_says_what_the_span_says(instrument: Any, tmp_path: Path, server: ProviderServer, otel: Any) -> None:
    ledger_file = tmp_path / "ledger.db"
    instrument(ledger=ledger_file)
    case = CASES["thinking"]
    server.push(Reply(usage=case.usage, chunks=3))
    for driver in drive("sync", server):
        with costspan.attribution(user_id="u-7"):
            generate(driver, stream=True, model=case.model)
    assert costspan.CostspanInstrumentor()._ledger.force_flush()
    (row,) = rows(ledger_file)
    attributes = otel.span().attributes
    assert (row["provider"], row["operation"], row["request_model"]) == ("gcp.gemini", "chat", case.model)
    assert (row["input_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (500, 1_500, 1_300)
    assert row["cost_usd"] == attributes["gen_ai.usage.cost.amount"] == pytest.approx(sum(case.parts.values()))
    assert (row["user_id"], row["estimated"], row["stream_completed"]) == ("u-7", 0, 1)
    assert row["request_id"] == attributes["gen_ai.response.id"]
