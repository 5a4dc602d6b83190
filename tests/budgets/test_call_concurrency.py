"""Concurrent real calls against one budget lose nothing and never overspend: OS processes on one Redis budget,
and hundreds of asyncio calls on the memory store and on Redis through redis.asyncio."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from budgets.call_worker import acall
from budgets.helpers import RedisServer, Stores, check_race, race_real_calls

import costspan
from costspan.testing import ProviderServer
from support import API_KEY


@pytest.mark.heavy
def test_eight_processes_fifty_calls_each(redis_server: RedisServer, server: ProviderServer) -> None:
    race_real_calls(redis_server.url, server.openai_base_url)


async def test_two_hundred_asyncio_calls(stores: Stores, server: ProviderServer, otel: Any, instrument: Any) -> None:
    budget = stores.budget(0.003, on_store_error="block")
    instrument(budgets=[budget])
    refusals: list[dict[str, float]] = []
    async with openai.AsyncOpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0) as client:

        async def call(index: int) -> None:
            try:
                await acall(client, index)
            except costspan.BudgetExceededError as error:
                refusals.append({key: getattr(error, key) for key in ("spent", "reserved", "limit", "estimate")})

        await asyncio.gather(*(call(index) for index in range(200)))
    costs = [
        span.attributes["gen_ai.usage.cost.amount"] for span in otel.spans() if "error.type" not in span.attributes
    ]
    assert len(costs) + len(refusals) == 200
    otel.lifecycle.assert_each_ended_once()
    check_race(budget, costs, refusals, max(refusal["estimate"] for refusal in refusals))
