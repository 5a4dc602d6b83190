"""Concurrent real calls against one budget lose nothing and never overspend: OS processes on one Redis budget,
and hundreds of asyncio calls on the memory store and on Redis through redis.asyncio."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import openai
from budgets.helpers import RedisServer, Stores, check_race, run_workers

import costspan
from costspan.testing import ProviderServer
from support import API_KEY

WORKER = Path(__file__).with_name("call_worker.py")
MESSAGES = [{"role": "user", "content": "Summarise the quarterly report in three bullet points, please."}]


def test_eight_processes_fifty_calls_each(redis_server: RedisServer, server: ProviderServer) -> None:
    # 400 calls of about $0.0000288 each (12 input and 9 output tokens of gpt-4.1-mini): room for about 250.
    config = {"limit_usd": 0.0075, "store": redis_server.url, "name": "calls-race", "on_store_error": "block"}
    budget = costspan.Budget(**config)
    options = {"budget": config, "base_url": server.openai_base_url, "calls": 50}
    results = run_workers(WORKER, [[json.dumps(options)]] * 8)
    costs = [cost for result in results for cost in result["costs"]]
    refusals = [refusal for result in results for refusal in result["refusals"]]
    assert len(costs) + len(refusals) == 400
    largest = max(refusal["estimate"] for refusal in refusals)
    check_race(budget, costs, refusals, largest)


async def test_two_hundred_asyncio_calls(stores: Stores, server: ProviderServer, otel: Any, instrument: Any) -> None:
    budget = stores.budget(0.003, on_store_error="block")
    instrument(budgets=[budget])
    refusals: list[dict[str, float]] = []
    async with openai.AsyncOpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0) as client:

        async def call(index: int) -> None:
            try:
                if index % 2:
                    stream = await client.chat.completions.create(
                        model="gpt-4.1-mini", messages=MESSAGES, max_tokens=16, stream=True
                    )
                    async for _ in stream:
                        pass
                else:
                    await client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, max_tokens=16)
            except costspan.BudgetExceededError as error:
                refusals.append({key: getattr(error, key) for key in ("spent", "reserved", "limit", "estimate")})

        await asyncio.gather(*(call(index) for index in range(200)))
    costs = [
        span.attributes["gen_ai.usage.cost.amount"] for span in otel.spans() if "error.type" not in span.attributes
    ]
    assert len(costs) + len(refusals) == 200
    otel.lifecycle.assert_each_ended_once()
    check_race(budget, costs, refusals, max(refusal["estimate"] for refusal in refusals))
