"""Calls let through unchecked while Redis stalls (SIGSTOP, then SIGCONT): real calls, a hundred at once, from
asyncio tasks and from threads, on a store whose connections time out (to connect and to read) after 0.25 s. Its
listen backlog is tiny, so while it is stopped new connections are not even accepted by the kernel: they time out
connecting. Once Redis answers again and the journal is applied, the budget's spend is the sum of every call's
cost, each counted once, and nothing stays reserved."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from budgets.call_worker import acall
from budgets.call_worker import call as chat_call
from budgets.helpers import RedisServer, nanos
from budgets.test_stall import stalled

from costspan.budgets import Budget
from costspan.testing import ProviderServer
from support import API_KEY

CALLS = 100
STALL = 1.5  # seconds: longer than a connect timeout, and than the second a failed store is left alone


@pytest.fixture
def choked_redis(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[RedisServer]:
    """A redis-server whose kernel completes one pending connection at most (tcp-backlog 1), and the costspan
    log captured to the debug lines that tell each store failure."""
    caplog.set_level(logging.DEBUG, "costspan")
    server = RedisServer(tmp_path, backlog=1)
    server.start()
    yield server
    server.stop()


def budget_on(server: RedisServer, kind: str) -> Budget:
    url = f"{server.url}?socket_connect_timeout=0.25&socket_timeout=0.25"
    return Budget(100.0, store=url, name=f"unchecked-{kind}-{time.time_ns()}", on_store_error="allow")


def span_costs(otel: Any) -> list[float]:
    spans = otel.spans()
    assert len(spans) == CALLS and not any("error.type" in span.attributes for span in spans)
    return [span.attributes["gen_ai.usage.cost.amount"] for span in spans]


def wait_settled(budget: Budget, costs: list[float], caplog: pytest.LogCaptureFixture) -> None:
    failures = {message.rpartition(": ")[2] for message in caplog.messages if "store failed" in message}
    assert "Timeout connecting to server" in failures, f"no call met a connect timeout: {failures}"
    assert budget.unchecked > 0, "the stall let no call through unchecked: the test proves nothing"
    deadline = time.monotonic() + 30  # the journal is retried every second; a loaded machine is slow
    while budget.journaled and time.monotonic() < deadline:
        time.sleep(0.05)
    assert budget.journaled == 0, "the journal was never applied"
    counted = (round(budget.spent() * 1e9), budget.reserved())
    assert counted == (nanos(costs), 0.0), f"{budget.unchecked} calls let through unchecked"


async def test_asyncio_calls_during_a_stall_are_all_counted(
    choked_redis: RedisServer, server: ProviderServer, otel: Any, instrument: Any, caplog: pytest.LogCaptureFixture
) -> None:
    budget = budget_on(choked_redis, "async")
    instrument(budgets=[budget])
    async with openai.AsyncOpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0) as client:

        async def call(index: int) -> None:
            await asyncio.sleep(index * STALL / CALLS)  # spread over the stall, some before it
            await acall(client, index)

        calls = asyncio.gather(*(call(index) for index in range(CALLS)))
        await asyncio.sleep(0.1)
        with stalled(choked_redis):
            await asyncio.sleep(STALL)
        await calls
    wait_settled(budget, span_costs(otel), caplog)


def test_threads_calls_during_a_stall_are_all_counted(
    choked_redis: RedisServer, server: ProviderServer, otel: Any, instrument: Any, caplog: pytest.LogCaptureFixture
) -> None:
    budget = budget_on(choked_redis, "sync")
    instrument(budgets=[budget])
    failures: list[BaseException] = []
    with openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0) as client:

        def call(index: int) -> None:
            time.sleep(index * STALL / CALLS)
            try:
                chat_call(client, index)
            except BaseException as failure:
                failures.append(failure)

        threads = [threading.Thread(target=call, args=(index,)) for index in range(CALLS)]
        for thread in threads:
            thread.start()
        time.sleep(0.1)
        with stalled(choked_redis):
            time.sleep(STALL)
        for thread in threads:
            thread.join()
    assert failures == []
    wait_settled(budget, span_costs(otel), caplog)
