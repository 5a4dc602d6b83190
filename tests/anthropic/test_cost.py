"""Span token counts follow Anthropic's usage (input = uncached + cache reads + cache writes) and the cost equals a
hand computation from the published prices, for complete responses and streams alike."""

from __future__ import annotations

from typing import Any

import pytest
from cost_cases import CostCase, M, assert_priced

from costspan.testing import ProviderServer, Reply
from support import Driver

# The SDK warns that claude-sonnet-4-5 reaches end of life on 2026-11-30; that warning is not under test here.
pytestmark = pytest.mark.filterwarnings("ignore:The model 'claude-sonnet-4-5' is deprecated:DeprecationWarning")

# USD per MTok, from genai-prices' data (genai_prices/data.py, provider "anthropic"), which agree with Anthropic's
# published prices (platform.claude.com/docs/en/about-claude/pricing): cache writes 1.25x input for 5 minutes and
# 2x for 1 hour, cache reads 0.1x input.
SONNET_45 = {"input": 3, "output": 15, "write_5m": 3.75, "write_1h": 6, "read": 0.3}
# claude-sonnet-4-5 once a request's input (cached included) exceeds 200K tokens: every token at these prices.
SONNET_45_LONG = {"input": 6, "output": 22.5, "write_5m": 7.5, "write_1h": 12, "read": 0.6}
# The Message Batches price variant: 50% of every standard price.
SONNET_45_BATCH = {"input": 1.5, "output": 7.5}
HAIKU_45 = {"input": 1, "output": 5, "write_5m": 1.25, "write_1h": 2, "read": 0.1}
OPUS_41 = {"input": 15, "output": 75, "write_5m": 18.75, "write_1h": 30, "read": 1.5}
# claude-opus-4-8's fast mode (usage.speed == "fast"): $10 / $50 instead of $5 / $25.
OPUS_48_FAST = {"input": 10, "output": 50}
WEB_SEARCH_USD = 10 / 1000  # $10 per 1,000 searches


def usage(
    uncached: int,
    output: int,
    *,
    read: int = 0,
    write_5m: int = 0,
    write_1h: int = 0,
    searches: int = 0,
    thinking: int | None = None,
) -> dict[str, Any]:
    """An Anthropic usage object, in its wire shape."""
    out: dict[str, Any] = {
        "input_tokens": uncached,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write_5m + write_1h,
        "cache_creation": {"ephemeral_5m_input_tokens": write_5m, "ephemeral_1h_input_tokens": write_1h},
        "output_tokens": output,
    }
    if searches:
        out["server_tool_use"] = {"web_search_requests": searches, "web_fetch_requests": 0}
    if thinking is not None:
        out["output_tokens_details"] = {"thinking_tokens": thinking}
    return out


CASES = {
    "claude-sonnet-4-5": CostCase(
        "claude-sonnet-4-5",
        usage(1000, 500),
        {"input_tokens": 1000, "output_tokens": 500},
        {"input": 1000 * SONNET_45["input"] * M, "output": 500 * SONNET_45["output"] * M},
    ),
    "claude-haiku-4-5": CostCase(
        "claude-haiku-4-5",
        usage(2000, 1000),
        {"input_tokens": 2000, "output_tokens": 1000},
        {"input": 2000 * HAIKU_45["input"] * M, "output": 1000 * HAIKU_45["output"] * M},
    ),
    "claude-opus-4-1": CostCase(
        "claude-opus-4-1",
        usage(1000, 200),
        {"input_tokens": 1000, "output_tokens": 200},
        {"input": 1000 * OPUS_41["input"] * M, "output": 200 * OPUS_41["output"] * M},
    ),
    "5-minute cache write": CostCase(
        "claude-sonnet-4-5",
        usage(100, 50, write_5m=2000),
        {"input_tokens": 2100, "output_tokens": 50, "cache_write.input_tokens": 2000},
        {
            "input": 100 * SONNET_45["input"] * M,
            "cache_write": 2000 * SONNET_45["write_5m"] * M,
            "output": 50 * SONNET_45["output"] * M,
        },
    ),
    "1-hour cache write": CostCase(
        "claude-haiku-4-5",
        usage(100, 50, write_5m=1000, write_1h=3000),
        {"input_tokens": 4100, "output_tokens": 50, "cache_write.input_tokens": 4000},
        {
            "input": 100 * HAIKU_45["input"] * M,
            "cache_write": 1000 * HAIKU_45["write_5m"] * M + 3000 * HAIKU_45["write_1h"] * M,
            "output": 50 * HAIKU_45["output"] * M,
        },
    ),
    "cache read": CostCase(
        "claude-opus-4-1",
        usage(50, 100, read=10_000),
        {"input_tokens": 10_050, "output_tokens": 100, "cache_read.input_tokens": 10_000},
        {
            "input": 50 * OPUS_41["input"] * M,
            "cache_read": 10_000 * OPUS_41["read"] * M,
            "output": 100 * OPUS_41["output"] * M,
        },
    ),
    "web search": CostCase(
        "claude-sonnet-4-5",
        usage(500, 300, searches=3),
        {"input_tokens": 500, "output_tokens": 300},
        {
            "input": 500 * SONNET_45["input"] * M,
            "output": 300 * SONNET_45["output"] * M,
            "other": 3 * WEB_SEARCH_USD,
        },
    ),
    # 150K uncached + 60K read + 10K written = 220K > 200K: the whole request at the long-context prices.
    "long context": CostCase(
        "claude-sonnet-4-5",
        usage(150_000, 1000, read=60_000, write_5m=10_000),
        {
            "input_tokens": 220_000,
            "output_tokens": 1000,
            "cache_read.input_tokens": 60_000,
            "cache_write.input_tokens": 10_000,
        },
        {
            "input": 150_000 * SONNET_45_LONG["input"] * M,
            "cache_read": 60_000 * SONNET_45_LONG["read"] * M,
            "cache_write": 10_000 * SONNET_45_LONG["write_5m"] * M,
            "output": 1000 * SONNET_45_LONG["output"] * M,
        },
    ),
    # Exactly 200K input tokens is not above the threshold: standard prices.
    "at the long-context threshold": CostCase(
        "claude-sonnet-4-5",
        usage(140_000, 1000, read=60_000),
        {"input_tokens": 200_000, "output_tokens": 1000, "cache_read.input_tokens": 60_000},
        {
            "input": 140_000 * SONNET_45["input"] * M,
            "cache_read": 60_000 * SONNET_45["read"] * M,
            "output": 1000 * SONNET_45["output"] * M,
        },
    ),
    # Thinking is part of output_tokens and billed as output; without a breakdown there is no reasoning count.
    "thinking": CostCase(
        "claude-opus-4-1",
        usage(400, 3000),
        {"input_tokens": 400, "output_tokens": 3000},
        {"input": 400 * OPUS_41["input"] * M, "output": 3000 * OPUS_41["output"] * M},
    ),
    # When the API breaks thinking out (output_tokens_details), it is reported as reasoning, at the same price.
    "thinking reported": CostCase(
        "claude-sonnet-4-5",
        usage(400, 3000, thinking=2500),
        {"input_tokens": 400, "output_tokens": 3000, "reasoning.output_tokens": 2500},
        {"input": 400 * SONNET_45["input"] * M, "output": 3000 * SONNET_45["output"] * M},
    ),
    "fast mode": CostCase(
        "claude-opus-4-8",
        {**usage(1000, 1000), "speed": "fast"},
        {"input_tokens": 1000, "output_tokens": 1000},
        {"input": 1000 * OPUS_48_FAST["input"] * M, "output": 1000 * OPUS_48_FAST["output"] * M},
    ),
    "batch tier": CostCase(
        "claude-sonnet-4-5",
        usage(1000, 1000),
        {"input_tokens": 1000, "output_tokens": 1000},
        {"input": 1000 * SONNET_45_BATCH["input"] * M, "output": 1000 * SONNET_45_BATCH["output"] * M},
        service_tier="batch",
    ),
}


def _create(ant: Driver, model: str, stream: bool) -> None:
    result = ant.call(
        ant.client.messages.create,
        model=model,
        max_tokens=4096,
        messages=[{"role": "user", "content": "hello"}],
        stream=stream,
    )
    if stream:
        ant.collect(result)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("name", list(CASES))
def test_span_cost_equals_hand_computed(ant: Driver, server: ProviderServer, otel, name: str, stream: bool) -> None:
    case = CASES[name]
    server.push(Reply(usage=case.usage, service_tier=case.service_tier, chunks=3))
    _create(ant, case.model, stream)

    attributes = otel.span().attributes
    assert_priced(attributes, case)
    if case.service_tier:
        assert attributes["anthropic.response.service_tier"] == case.service_tier


def test_unknown_model_is_unpriced_never_zero(ant: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(usage=usage(100, 10)))
    _create(ant, "claude-from-the-future-9", stream=False)
    attributes = otel.span().attributes
    assert attributes["costspan.cost.unpriced"] is True
    assert "gen_ai.usage.cost.amount" not in attributes
    assert attributes["gen_ai.usage.input_tokens"] == 100
