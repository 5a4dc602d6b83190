"""Budgets on google-genai calls: the worst case (estimated input plus ``max_output_tokens``) is reserved before
the request is sent, and a call that does not fit is never sent; a stream whose running cost outgrows what the
budget grants is closed upstream and raises BudgetExceededError from the user's loop, with the span, the budget
and the server agreeing on what was used."""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from typing import Any

import pytest
from gemini.helpers import PROMPT, generate

import costspan
from costspan._tokens import estimate_text_tokens
from costspan.budgets import Budget, BudgetExceededError
from costspan.testing import ProviderServer, Reply
from support import Driver

MODEL = "gemini-2.5-pro"


def _cost(input_tokens: int, output_tokens: int) -> float:
    cost = costspan.cost_of("gcp.gemini", MODEL, costspan.Usage(input_tokens, output_tokens))
    assert cost is not None
    return cost.amount


def _budget(limit: float) -> Budget:
    return Budget(limit, name=f"gemini-{uuid.uuid4().hex[:8]}")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_call_that_does_not_fit_is_never_sent(
    stream: bool, gem: Driver, server: ProviderServer, otel: Any, instrument: Any
) -> None:
    costspan.CostspanInstrumentor().uninstrument()
    budget = _budget(_cost(10, 4000) * 0.9)  # max_output_tokens=4000 alone does not fit
    instrument(budgets=[budget])
    with pytest.raises(BudgetExceededError) as refused:
        generate(gem, stream=stream, model=MODEL, max_output_tokens=4000)
    assert refused.value.budget == budget.name
    assert server.requests == [], "a refused call is never sent"
    span = otel.span()
    assert span.attributes["error.type"] == "BudgetExceededError"
    assert [event.name for event in span.events] == ["costspan.budget.exceeded"]
    assert budget.spent() == 0
    server.push(Reply(usage={"promptTokenCount": 10, "candidatesTokenCount": 5}))
    generate(gem, model=MODEL, max_output_tokens=100)  # one that fits goes
    assert len(server.requests) == 1
    assert budget.spent() == pytest.approx(_cost(10, 5), abs=1e-9)


def test_stream_outgrowing_the_budget_is_cut(gem: Driver, server: ProviderServer, otel: Any, instrument: Any) -> None:
    """A request without an output bound reserves ``default_max_output_tokens`` (20 here) and streams on past it,
    several tokens a chunk, as Gemini sends them: the running cost comes from the text, and the stream is closed
    upstream once it passes what the budget can grant."""
    costspan.CostspanInstrumentor().uninstrument()
    budget = _budget(_cost(20, 20) * 2)
    instrument(budgets=[budget], default_max_output_tokens=20)
    server.push(Reply(text="lighthouse keeper storm " * 300, chunks=100, chunk_delay=0.002))
    stream = gem.run(gem.client.models.generate_content_stream(model=MODEL, contents=PROMPT))
    got: list[Any] = []
    with pytest.raises(BudgetExceededError) as cut:
        if gem.is_async:

            async def read() -> None:
                async for chunk in stream:
                    got.append(chunk)

            gem.run(read())
        else:
            for chunk in stream:
                got.append(chunk)
    assert cut.value.budget == budget.name and "stopped a call needing" in str(cut.value)
    assert 1 <= len(got) < 100
    # Closed upstream: the server saw the client go. costspan closes the SDK's outermost generator, and the SDK's
    # HTTP response is closed when the generators inside it are finalized: at once for the sync SDK (httpcore's
    # response stream closes itself when its generator is), and for the async one when the event loop finalizes
    # them, once the collector frees them (the raised error's traceback holds them in a cycle).
    deadline = time.monotonic() + 5
    while not server.hangups:
        assert time.monotonic() < deadline, "the stream was not closed upstream"
        if gem.is_async:
            gc.collect()
            gem.run(asyncio.sleep(0.02))
        else:
            time.sleep(0.02)
    attributes = otel.span().attributes
    assert attributes["error.type"] == "BudgetExceededError"
    assert attributes["costspan.stream.completed"] is False
    assert attributes["costspan.usage.estimated"] is True
    assert attributes["gen_ai.usage.input_tokens"] == 12  # every chunk said it
    assert budget.spent() == pytest.approx(attributes["gen_ai.usage.cost.amount"], abs=1e-9)
    # Within the limit but for the chunk that crossed it (Gemini's carry many tokens each).
    assert budget.spent() <= budget.limit_usd + _cost(0, estimate_text_tokens(got[-1].text))
