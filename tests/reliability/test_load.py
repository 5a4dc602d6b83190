"""Under load (threads, asyncio tasks), with the ledger and a memory and a Redis budget on: every span ends once,
and the cost of every call is the same in the spans, the metric, the ledger and each budget; attribution never
crosses from one thread or task to another. (Processes against one Redis budget: tests/budgets/
test_call_concurrency.py.)"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from budgets.helpers import RedisServer
from reliability.conftest import SOAK, Figures

import costspan
from costspan.testing import ProviderServer
from support import API_KEY

THREADS, CALLS_PER_THREAD = 8, (500 if SOAK else 50)
TASKS = 200 if SOAK else 100


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


def _messages(user: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"I am {user}"}]


def _request(client: Any, user: str, kind: int) -> Any:
    """One call as ``user``, of one of four kinds: OpenAI chat JSON or stream, Anthropic messages JSON or stream
    (a coroutine, on an async client)."""
    if isinstance(client, (openai.OpenAI, openai.AsyncOpenAI)):
        return client.chat.completions.create(model="gpt-4.1-mini", messages=_messages(user), stream=kind == 1)
    return client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=_messages(user), stream=kind == 3)


def _call(client: Any, user: str, kind: int) -> None:
    with costspan.attribution(user_id=user):
        result = _request(client, user, kind)
        if kind % 2:
            for _ in result:
                pass


async def _acall(client: Any, user: str, kind: int) -> None:
    with costspan.attribution(user_id=user):
        result = await _request(client, user, kind)
        await asyncio.sleep(0)  # let the other tasks run between the call and its stream
        if kind % 2:
            async for _ in result:
                pass


def _answered(read: Callable[[], float]) -> float:
    """What a budget reads once its store answers (on two busy cores, Redis may miss a short timeout)."""
    for _ in range(50):
        try:
            return read()
        except costspan.BudgetStoreError:
            time.sleep(0.2)
    return read()


def test_spans_metrics_ledger_and_budgets_agree_under_load(
    instrument: Callable[..., None],
    server: ProviderServer,
    otel: Any,
    tmp_path: Path,
    redis_server: RedisServer,
    figures: Figures,
) -> None:
    memory = costspan.Budget(1_000.0, name="load-memory")
    # Timeouts long enough for two busy cores: this test is about load, store faults are tests/budgets'.
    store = f"{redis_server.url}?socket_timeout=10&socket_connect_timeout=10"
    shared = costspan.Budget(1_000.0, name="load-redis", store=store)
    shared_reader = costspan.Budget(1_000.0, name="load-redis", store=store)
    ledger_file = tmp_path / "ledger.db"
    instrument(ledger=ledger_file, budgets=[memory, shared], capture_content=True)
    clients = [
        openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0),
        anthropic.Anthropic(base_url=server.anthropic_base_url, api_key=API_KEY, max_retries=0),
    ]

    def worker(number: int) -> None:
        for index in range(CALLS_PER_THREAD):
            kind = (number + index) % 4
            _call(clients[kind // 2], f"thread-{number}-{index}", kind)

    threads = [threading.Thread(target=worker, args=(number,)) for number in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    async def tasks() -> None:
        aclients = [
            openai.AsyncOpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0),
            anthropic.AsyncAnthropic(base_url=server.anthropic_base_url, api_key=API_KEY, max_retries=0),
        ]

        async def one(number: int) -> None:
            kind = number % 4
            await _acall(aclients[kind // 2], f"task-{number}", kind)

        await asyncio.gather(*(one(number) for number in range(TASKS)))
        for client in aclients:
            await client.close()

    asyncio.run(tasks())
    for client in clients:
        client.close()
    calls = THREADS * CALLS_PER_THREAD + TASKS

    otel.lifecycle.assert_each_ended_once()
    spans = otel.spans()
    assert len(spans) == calls
    for span in spans:  # the user a call was made as is the user its own request named
        (sent,) = json.loads(span.attributes["gen_ai.input.messages"])
        assert sent["parts"][0]["content"] == f"I am {span.attributes['user.id']}"
    span_costs = [span.attributes["gen_ai.usage.cost.amount"] for span in spans]
    assert costspan.CostspanInstrumentor()._ledger.force_flush()
    with sqlite3.connect(ledger_file) as connection:
        ledger_costs = [cost for (cost,) in connection.execute("SELECT cost_usd FROM calls")]
    metric = math.fsum(point.value for point in otel.metrics()["costspan.cost"])
    total = math.fsum(span_costs)
    assert sorted(ledger_costs) == sorted(span_costs)  # the same amounts, call by call
    assert metric == pytest.approx(total, rel=1e-12)
    # Budgets keep integer nanodollars: each call's cost rounds once.
    for budget in (memory, shared_reader):
        assert _answered(budget.spent) == pytest.approx(total, abs=calls * 1e-9), budget.name
        assert _answered(budget.reserved) == 0
    figures.count("calls", calls)
    figures.count("streams", sum(1 for span in spans if span.attributes["gen_ai.request.stream"]))
    figures.count("spans left open", len(otel.lifecycle.started) - len(otel.lifecycle.ended))
    figures.count("cost lost (USD)", 0 if sorted(ledger_costs) == sorted(span_costs) else 1)
