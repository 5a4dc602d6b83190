"""The ledger, the span and the budget hold the same cost for every call; a call a budget refused was never sent
and has no row; a stream a budget cut has its row, at the partial cost the span and the budget hold."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import openai
import pytest

import costspan
from costspan.testing import ProviderServer, Reply

MESSAGES = [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]
NANOS = 1_000_000_000


def _rows(ledger_file: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(ledger_file) as database:
        return database.execute("SELECT span_id, cost_usd, error_type, stream_completed FROM calls").fetchall()


def test_ledger_span_and_budget_agree(
    instrument: Any, ledger_file: Path, client: openai.OpenAI, server: ProviderServer, otel: Any
) -> None:
    one_call = costspan.cost_of("openai", "gpt-4.1-mini", costspan.Usage(input_tokens=20, output_tokens=20))
    assert one_call is not None
    budget = costspan.Budget(one_call.amount * 2, name="ledger-agrees")
    instrument(ledger=ledger_file, budgets=[budget], default_max_output_tokens=20)
    server.push(Reply(usage={"prompt_tokens": 14, "completion_tokens": 9, "total_tokens": 23}))
    client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, max_tokens=20)
    server.push(Reply(text="word " * 200, chunks=200, chunk_delay=0.002))
    with pytest.raises(costspan.BudgetExceededError):
        for _ in client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, stream=True):
            pass
    with pytest.raises(costspan.BudgetExceededError):  # nothing left for another call's worst case
        client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, max_tokens=20)
    costspan.CostspanInstrumentor()._ledger.force_flush()

    answered, cut, refused = otel.spans()
    assert refused.attributes["error.type"] == "BudgetExceededError" and not refused.attributes.get(
        "gen_ai.usage.input_tokens"
    )
    rows = {span_id: (cost, error, completed) for span_id, cost, error, completed in _rows(ledger_file)}
    assert set(rows) == {format(span.context.span_id, "016x") for span in (answered, cut)}, "refused: no row"
    for span in (answered, cut):
        cost, error, _ = rows[format(span.context.span_id, "016x")]
        assert cost == span.attributes["gen_ai.usage.cost.amount"]
        assert error == span.attributes.get("error.type")
    assert rows[format(cut.context.span_id, "016x")][2] == 0, "the cut stream is marked incomplete"
    spans_total = sum(span.attributes["gen_ai.usage.cost.amount"] for span in (answered, cut))
    assert round(budget.spent() * NANOS) == sum(
        round(span.attributes["gen_ai.usage.cost.amount"] * NANOS) for span in (answered, cut)
    )
    assert budget.spent() == pytest.approx(spans_total, abs=1e-9)


@pytest.mark.parametrize("stream", [False, True], ids=["response", "stream"])
def test_a_response_model_with_no_price_is_priced_as_requested_in_all_three(
    instrument: Any, ledger_file: Path, client: openai.OpenAI, server: ProviderServer, otel: Any, stream: bool
) -> None:
    """A gateway answers a gpt-4.1-mini request as its own model, which has no price: the span, the ledger row
    and the budget all carry gpt-4.1-mini's price of the one settlement, and the span and row say it fell back."""
    budget = costspan.Budget(1.0, name="gateway")
    instrument(ledger=ledger_file, budgets=[budget])
    usage = {"prompt_tokens": 40, "completion_tokens": 20, "total_tokens": 60}
    server.push(Reply(model="acme-proxy-gpt4mini", usage=usage, chunks=4 if stream else None))
    response = client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, max_tokens=50, stream=stream)
    if stream:
        assert all(chunk.model == "acme-proxy-gpt4mini" for chunk in response)
    costspan.CostspanInstrumentor()._ledger.force_flush()

    expected = costspan.cost_of("openai", "gpt-4.1-mini", costspan.Usage(input_tokens=40, output_tokens=20))
    assert expected is not None
    attributes = otel.span().attributes
    assert attributes["gen_ai.response.model"] == "acme-proxy-gpt4mini"
    assert attributes["gen_ai.usage.cost.amount"] == expected.amount
    assert attributes["costspan.price.model"] == "gpt-4.1-mini"
    assert attributes["costspan.price.fallback"] is True
    with sqlite3.connect(ledger_file) as database:
        row = database.execute("SELECT response_model, cost_usd, price_model, price_source FROM calls").fetchall()
    assert row == [("acme-proxy-gpt4mini", expected.amount, "gpt-4.1-mini", attributes["costspan.price.source"])]
    assert "(fallback: the requested model" in row[0][3]
    assert round(budget.spent() * NANOS) == round(expected.amount * NANOS)
