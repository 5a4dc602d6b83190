"""A stream's running cost comes from the text it streamed, not from its chunk count, and is believed past
``max_tokens`` when the server does not honour it: gateways that batch 200 characters (about 50 tokens) per
chunk, and servers that write on past the request's bound, are cut within one chunk of the budget, upstream,
with the span, the budget and the ledger holding the same cost.

The local server sends whatever text it is given, whatever ``max_tokens`` says: a server that ignores the bound.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from budgets.helpers import Stores
from providers import ANTHROPIC, OPENAI, ProviderUnderTest

import costspan
from costspan.testing import ProviderServer, Reply
from support import Driver, make_driver, wait_for_hangup

MESSAGES = [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]
NANOS = 1_000_000_000
CHUNK = "word " * 40  # 200 characters: about 50 tokens, in one chunk
CHUNK_TOKENS = 50
CHUNKS = 400


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest, server: ProviderServer, otel: Any) -> Iterator[Driver]:
    provider: ProviderUnderTest = request.node.callspec.params["case"][0]
    yield from make_driver(
        request.param,
        lambda: provider.client(server, otel.tracer_provider, {}),
        lambda: provider.async_client(server, otel.tracer_provider, {}),
    )


def _cost(provider: ProviderUnderTest, input_tokens: int, output_tokens: int) -> float:
    model = "claude-haiku-4-5" if provider is ANTHROPIC else "gpt-4.1-mini"
    cost = costspan.cost_of(
        provider.name, model, costspan.Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    )
    assert cost is not None
    return cost.amount


def _read_until_cut(driver: Driver, stream: Any) -> int:
    got = 0

    async def aread() -> None:
        nonlocal got
        async for _ in stream:
            got += 1

    with pytest.raises(costspan.BudgetExceededError) as cut:
        if driver.is_async:
            driver.run(aread())
        else:
            for _ in stream:
                got += 1
    assert "stopped a call needing" in str(cut.value)
    return got


def _ledger_cost(instrumentor: Any, ledger_file: Path) -> float:
    instrumentor._ledger.force_flush()
    with sqlite3.connect(ledger_file) as database:
        ((cost,),) = database.execute("SELECT cost_usd FROM calls").fetchall()
    return float(cost)


CASES = [
    pytest.param((OPENAI, None), id="chat-no-max-tokens"),
    pytest.param((OPENAI, 20), id="chat-max-tokens-ignored"),
    pytest.param((ANTHROPIC, 20), id="anthropic-max-tokens-ignored"),
]


@pytest.mark.parametrize("case", CASES)
def test_batched_stream_is_cut_from_its_text(
    case: tuple[ProviderUnderTest, int | None],
    driver: Driver,
    stores: Stores,
    server: ProviderServer,
    otel: Any,
    instrument: Any,
    tmp_path: Path,
) -> None:
    """Defects 1 and 2: 200 characters a chunk, 400 chunks (about 20,000 tokens) against a budget of about 500
    output tokens. Counting a token per chunk, or holding the estimate at ``max_tokens``, lets it run to the end."""
    provider, max_tokens = case
    limit = _cost(provider, 20, 500)
    budget = stores.budget(limit)
    ledger_file = tmp_path / "ledger.db"
    instrument(budgets=[budget], default_max_output_tokens=20, ledger=ledger_file)
    server.push(Reply(text=CHUNK * CHUNKS, chunks=CHUNKS, chunk_delay=0.002))
    options = {} if max_tokens is None else {"max_tokens": max_tokens}
    stream = driver.run(provider.create(driver.client, MESSAGES, stream=True, **options))
    got = _read_until_cut(driver, stream)

    assert got < 20, f"read {got} chunks of ~{CHUNK_TOKENS} tokens under a budget of ~500"
    wait_for_hangup(server)
    span = otel.span()
    assert span.attributes["error.type"] == "BudgetExceededError"
    assert span.attributes["costspan.usage.estimated"] is True
    cost = span.attributes["gen_ai.usage.cost.amount"]
    one_chunk = _cost(provider, 0, CHUNK_TOKENS + 1)
    assert limit - one_chunk <= cost <= limit + one_chunk, (cost, limit, one_chunk)
    if driver.is_async:
        spent = driver.run(budget.aspent())
        reserved = driver.run(budget.areserved())
    else:
        spent, reserved = budget.spent(), budget.reserved()
    assert round(spent * NANOS) == round(cost * NANOS), "the budget holds the span's cost"
    assert reserved == 0.0
    assert _ledger_cost(costspan.CostspanInstrumentor(), ledger_file) == cost, "the ledger holds the span's cost"


def test_interrupted_chat_stream_is_settled_from_its_text(
    stores: Stores, server: ProviderServer, otel: Any, instrument: Any
) -> None:
    """Defect 1, settling: a chat stream left after 5 chunks of 200 characters used about 250 output tokens, not
    5, whether or not a budget watches it, and the budget counts what the span says."""
    budget = stores.budget(100.0)
    instrument(budgets=[budget])
    server.push(Reply(text=CHUNK * 50, chunks=50))
    client = OPENAI.client(server, otel.tracer_provider, {})
    stream = client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, stream=True)
    for index, _ in enumerate(stream):
        if index == 4:
            break
    stream.close()
    client.close()
    span = otel.span()
    assert span.attributes["gen_ai.usage.output_tokens"] >= 5 * CHUNK_TOKENS * 0.8
    assert round(budget.spent() * NANOS) == round(span.attributes["gen_ai.usage.cost.amount"] * NANOS)
