"""Names a budget is kept by: a scope or metric attribute given as the attribution keyword (``user_id``) means the
attribute it sets (``user.id``); a name no call carries is reported once, with the names calls do carry; and a
Redis budget's keys escape every delimiter of its name and scope value, so no two budgets share counters."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from budgets.helpers import RedisServer, Stores

import costspan
from costspan.budgets import Budget, BudgetExceededError
from costspan.testing import ProviderServer
from support import API_KEY

MESSAGES = [{"role": "user", "content": "Hello"}]


@pytest.fixture
def client(server: ProviderServer) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(api_key=API_KEY, base_url=server.openai_base_url, max_retries=0)
    yield client
    client.close()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "costspan" and r.levelno == logging.WARNING]


def test_scope_user_id_means_user_dot_id(
    stores: Stores, client: openai.OpenAI, server: ProviderServer, instrument: Any
) -> None:
    """Defect 3: ``scope="user_id"`` with ``attribution(user_id=...)`` applies: a $0.000001 budget refuses."""
    budget = stores.budget(0.000001, scope="user_id")
    assert budget.scope == "user.id"
    instrument(budgets=[budget])
    with costspan.attribution(user_id="u-1"), pytest.raises(BudgetExceededError) as refused:
        client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, max_tokens=16)
    assert refused.value.scope_value == "u-1"
    assert server.requests == []


def test_metric_attribute_user_id_means_user_dot_id(
    client: openai.OpenAI, server: ProviderServer, otel: Any, instrument: Any
) -> None:
    instrument(metric_attributes=["user_id"])
    with costspan.attribution(user_id="u-1"):
        client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, max_tokens=16)
    (point,) = otel.metrics()["costspan.cost"]
    assert point.attributes["user.id"] == "u-1"


def test_a_name_no_call_carries_is_reported_once_with_those_they_do(
    client: openai.OpenAI, server: ProviderServer, instrument: Any, caplog: pytest.LogCaptureFixture
) -> None:
    budget = Budget(1.0, scope="tenant")
    instrument(budgets=[budget], metric_attributes=["tenant"])
    with costspan.attribution(user_id="u-1", team="core"):
        for _ in range(3):
            client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, max_tokens=16)
    warnings = _warnings(caplog)
    assert len(warnings) == 2, warnings
    budget_warning, metric_warning = sorted(warnings)
    assert "budget 'day:tenant:1usd' is kept per tenant" in budget_warning
    assert "['team', 'user.id']" in budget_warning
    assert "metric attribute 'tenant'" in metric_warning and "['team', 'user.id']" in metric_warning


def test_redis_keys_escape_every_delimiter(redis_server: RedisServer) -> None:
    """Defect 9: a budget ``team`` kept per ``user.id`` and an unscoped budget named ``team=alice`` (and other
    names built from the key's delimiters) keep counters of their own."""
    url = redis_server.url
    suffix = str(id(redis_server))
    scoped = Budget(10.0, scope="user.id", name=f"team{suffix}", store=url)
    lookalikes = [
        Budget(10.0, name=f"team{suffix}=alice", store=url),
        Budget(10.0, name=f"team{suffix}=alice|0", store=url, window=None),
        Budget(10.0, name=f"team{suffix}%3Dalice", store=url),
    ]
    scoped.settle(scoped.reserve("alice", 0.4), 0.4)
    for amount, budget in zip((0.3, 0.2, 0.1), lookalikes, strict=True):
        budget.settle(budget.reserve(None, amount), amount)
    assert scoped.spent("alice") == 0.4
    assert [budget.spent() for budget in lookalikes] == [0.3, 0.2, 0.1]
