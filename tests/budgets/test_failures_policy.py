"""What a budget raises, and what it does when costspan itself fails.

"Over budget" and "cannot check the budget" are different exceptions: an application that tells a user "you are
over budget" from ``except BudgetExceededError`` never says so because Redis is down. A failure of costspan's own
(pricing, overflow, the store) refuses the call under ``on_store_error="block"``, and lets it through, counted
as unchecked, with one warning, under "allow". A price no realistic call could have a finite cost at is refused
when the prices load."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from budgets.helpers import RedisServer

import costspan
from costspan.budgets import Budget, BudgetCheckError, BudgetError, BudgetExceededError, BudgetStoreError
from costspan.testing import ProviderServer
from support import API_KEY

MESSAGES = [{"role": "user", "content": "Hello"}]


@pytest.fixture
def client(server: ProviderServer) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(api_key=API_KEY, base_url=server.openai_base_url, max_retries=0)
    yield client
    client.close()


def test_a_dead_store_is_not_over_budget(own_redis: RedisServer) -> None:
    """Defect 11: ``spent()`` on a dead Redis is not caught by ``except BudgetExceededError``."""
    budget = Budget(1.0, store=own_redis.url, name="dead-store")
    own_redis.stop()
    with pytest.raises(BudgetStoreError) as raised:
        try:
            budget.spent()
        except BudgetExceededError:
            pytest.fail("a dead store was reported as over budget")
    assert isinstance(raised.value, BudgetCheckError) and isinstance(raised.value, BudgetError)
    assert not issubclass(BudgetCheckError, BudgetExceededError)
    assert not issubclass(BudgetExceededError, BudgetCheckError)


def test_a_price_that_overflows_is_refused_at_load(tmp_path: Path) -> None:
    """Defect 7: a finite but huge custom price is refused when the prices load, naming the model and the file."""
    prices = tmp_path / "prices.toml"
    prices.write_text('[models.huge-model]\ninput = 1e308\noutput = 1e308\nprovider = "openai"\n')
    with pytest.raises(ValueError) as refused:
        costspan.CostspanInstrumentor().instrument(prices=prices)
    costspan.CostspanInstrumentor().uninstrument()
    message = str(refused.value)
    assert str(prices) in message and "'huge-model'" in message and "finite cost" in message


class _FailingClock:
    """A budget clock that fails after the budget was built: a failure inside costspan's budget check."""

    def __init__(self) -> None:
        self.broken = False

    def __call__(self) -> float:
        if self.broken:
            raise RuntimeError("clock broke")
        return 1_800_000_000.0


@pytest.mark.parametrize("policy", ["allow", "block"])
def test_an_internal_failure_follows_on_store_error(
    policy: str,
    client: openai.OpenAI,
    server: ProviderServer,
    otel: Any,
    instrument: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Defect 7: costspan failing to check a call refuses it under "block" (never sent, a clear error), and
    under "allow" lets it through, counted as unchecked, with one warning."""
    clock = _FailingClock()
    budget = Budget(1.0, on_store_error=policy, clock=clock, name=f"internal-{policy}")
    instrument(budgets=[budget])
    clock.broken = True
    for _ in range(3):
        if policy == "block":
            with pytest.raises(BudgetCheckError, match=r"could not check: costspan failed .*clock broke"):
                client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, max_tokens=16)
        else:
            client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, max_tokens=16)
    warnings = [r for r in caplog.records if r.name == "costspan" and r.levelno == logging.WARNING]
    if policy == "block":
        assert server.requests == []
        assert budget.unchecked == 0
        assert all(span.attributes["error.type"] == "BudgetCheckError" for span in otel.spans())
    else:
        assert len(server.requests) == 3
        assert budget.unchecked == 3
        assert len(warnings) == 1
        (point,) = otel.metrics()["costspan.budget.unchecked"]
        assert point.value == 3
