"""Reservations expire, so a call that never settles (its process died) stops holding the budget; extending a
reservation refreshes it; a call settled after its reservation expired still counts its cost."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time

import pytest
from budgets.helpers import WORKER, RedisServer, Stores, Way

from costspan.budgets import Budget, BudgetExceededError


async def wait_until_it_fits(way: Way, budget: Budget, amount: float, deadline: float) -> float:
    """Seconds until ``amount`` fits: reserving it fails while the old reservation holds."""
    began = time.monotonic()
    while True:
        try:
            reservation = await way.reserve(budget, None, amount)
        except BudgetExceededError:
            assert time.monotonic() - began < deadline, "the reservation never expired"
            await asyncio.sleep(0.05)
            continue
        await way.settle(budget, reservation, 0.0)
        return time.monotonic() - began


async def test_a_reservation_expires_and_still_settles(stores: Stores, way: Way) -> None:
    budget = stores.budget(1.0, reservation_ttl=0.5)
    forgotten = await way.reserve(budget, None, 0.9)
    assert await way.reserved(budget) == 0.9
    await wait_until_it_fits(way, budget, 0.2, deadline=5)
    assert await way.reserved(budget) == 0.0
    await way.settle(budget, forgotten, 0.4)  # the call ended after all: its cost counts, once
    await way.settle(budget, forgotten, 0.4)
    assert (await way.spent(budget), await way.reserved(budget)) == (0.4, 0.0)


async def test_extend_keeps_a_long_stream_alive(stores: Stores, way: Way) -> None:
    budget = stores.budget(1.0, reservation_ttl=1.0)
    stream = await way.reserve(budget, None, 0.5)
    for _ in range(3):  # 1.5 s, past the 1 s TTL, of a stream that extends every half second
        await asyncio.sleep(0.5)
        assert await way.extend(budget, stream, 0.05)
    assert await way.reserved(budget) == pytest.approx(0.65)
    with pytest.raises(BudgetExceededError):
        await way.reserve(budget, None, 0.4)
    await way.settle(budget, stream, 0.65)
    assert (await way.spent(budget), await way.reserved(budget)) == (0.65, 0.0)


async def test_an_expired_reservation_comes_back_whole_when_extended(stores: Stores, way: Way) -> None:
    """A stream whose reservation lapsed (a pause longer than the TTL) holds its whole amount again, if it fits."""
    budget = stores.budget(1.0, reservation_ttl=0.3)
    stream = await way.reserve(budget, None, 0.5)
    await asyncio.sleep(0.5)
    assert await way.reserved(budget) == 0.0
    assert await way.extend(budget, stream, 0.1)
    assert (stream.amount_usd, await way.reserved(budget)) == (0.6, 0.6)
    await way.settle(budget, stream, 0.6)
    assert (await way.spent(budget), await way.reserved(budget)) == (0.6, 0.0)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
async def test_a_killed_workers_reservation_expires(redis_server: RedisServer, way: Way) -> None:
    config = {"limit_usd": 1.0, "store": redis_server.url, "name": f"killed-{time.time_ns()}", "reservation_ttl": 1.0}
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), "hold", json.dumps({"budget": config, "amount": 0.9})],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "held"
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(10) == -signal.SIGKILL
        killed = time.monotonic()
        budget = Budget(**config)  # type: ignore[arg-type]
        assert await way.reserved(budget) == 0.9
        with pytest.raises(BudgetExceededError):
            await way.reserve(budget, None, 0.2)
        await wait_until_it_fits(way, budget, 0.2, deadline=10)
        assert time.monotonic() - killed < 5
        assert await way.reserve(budget, None, 1.0)
    finally:
        if worker.poll() is None:
            worker.kill()
