"""A caller cancelled at any await of a budget's reserve or settle leaves no hold behind: what the budgets that said
yes hold is given back, what the store may hold of a reservation whose reply the cancellation cut off is
released once the store answers, and a settlement cut off is applied once, from the budget's journal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from budgets.helpers import PASSWORD, SlowProxy
from providers import PROVIDERS, ProviderUnderTest

from costspan.budgets import Budget
from costspan.testing import ProviderServer

MESSAGES = [{"role": "user", "content": "Hello"}]


def _slow_url(proxy: SlowProxy) -> str:
    return f"redis://:{PASSWORD}@127.0.0.1:{proxy.port}/0?socket_timeout=5"


def _eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("provider", PROVIDERS, ids=[p.name for p in PROVIDERS])
def test_cancelled_while_reserving_holds_nothing(
    provider: ProviderUnderTest, slow_proxy: SlowProxy, server: ProviderServer, otel: Any, instrument: Any
) -> None:
    """Defect 4: a call under a memory budget and a Redis budget, cancelled while the Redis reservation is
    awaited: the memory budget's hold is given back at once, the Redis one as soon as Redis answers."""
    memory = Budget(10.0, name="cancel-memory")
    shared = Budget(10.0, store=_slow_url(slow_proxy), name=f"cancel-redis-{provider.name}")
    instrument(budgets=[memory, shared])

    async def main() -> None:
        await shared.asettle(await shared.areserve(None, 0.01), 0.0)  # connected, scripts loaded
        slow_proxy.script_delay = 0.5
        client = provider.async_client(server, otel.tracer_provider, {})
        task = asyncio.create_task(provider.create(client, MESSAGES, max_tokens=16))
        while memory.reserved() == 0.0:  # held in memory: the Redis reservation is on its way (0.5 s)
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.close()
        assert memory.reserved() == 0.0, "the memory budget still holds the cancelled call"

    asyncio.run(main())
    assert server.requests == []
    slow_proxy.script_delay = 0.0
    _eventually(lambda: shared.reserved() == 0.0)
    assert shared.spent() == memory.spent() == 0.0
    assert otel.span().attributes["error.type"] == "CancelledError"


def test_cancelled_while_settling_is_applied_once(slow_proxy: SlowProxy) -> None:
    """A settlement whose caller is cancelled while Redis has it is applied exactly once: by Redis, or from the
    journal once Redis answers."""
    budget = Budget(10.0, store=_slow_url(slow_proxy), name="cancel-settle")

    async def main() -> None:
        reservation = await budget.areserve(None, 1.0)
        slow_proxy.script_delay = 0.5
        # Past its reservation: settled on the request's own round trip (one within it is handed over at once).
        task = asyncio.create_task(budget.asettle(reservation, 1.25))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    slow_proxy.script_delay = 0.0
    _eventually(lambda: budget.spent() == 1.25)
    time.sleep(1.5)  # the journal's next round, had it kept it twice
    assert (budget.spent(), budget.reserved()) == (1.25, 0.0)
