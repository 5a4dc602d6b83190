"""A Redis budget's settlement that fits its reservation is applied off the request thread (the call's one round
trip is its reservation), exactly once, and never lost: reads right after see it, many threads lose nothing, a
Redis stall while it is pending delays it, and a process ending right after its calls applies it as it exits."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from budgets.helpers import NANOS, RedisServer, Way, nanos
from budgets.test_stall import stalled

from costspan.budgets import Budget


async def test_a_read_right_after_a_settlement_sees_it(redis_server: RedisServer, way: Way) -> None:
    budget = Budget(100.0, store=redis_server.url, name=f"deferred-read-{way.is_async}-{time.time_ns()}")
    for index in range(20):
        await way.settle(budget, await way.reserve(budget, None, 0.5), 0.25)
        assert await way.spent(budget) == 0.25 * (index + 1)
        assert await way.reserved(budget) == 0.0


async def test_what_an_async_read_applied_leaves_the_journal(redis_server: RedisServer) -> None:
    """An async read applies this process's pending settlements through the async client; they leave the journal,
    so its thread does not send them again (one wasted round trip each, and counted twice had the store
    restarted empty in between). The test holds the thread at its next flush, so only the read can apply it."""
    budget = Budget(100.0, store=redis_server.url, name=f"deferred-async-read-{time.time_ns()}")
    reservation = await budget.areserve(None, 0.5)
    with budget._journal._flushing:
        await budget.asettle(reservation, 0.25)
        assert budget.journaled == 1, "a settlement within its reservation is handed to the journal's thread"
        assert await budget.aspent() == 0.25
        assert budget.journaled == 0
    assert (budget.spent(), budget.reserved(), budget.journaled) == (0.25, 0.0, 0)


def test_many_threads_lose_nothing(redis_server: RedisServer) -> None:
    budget = Budget(1000.0, store=redis_server.url, name=f"deferred-threads-{time.time_ns()}")
    costs: list[list[float]] = [[] for _ in range(8)]

    def calls(mine: list[float]) -> None:
        for index in range(50):
            cost = (index % 7 + 1) / 1000 + len(mine) / 1e9
            budget.settle(budget.reserve(None, 0.01), cost)
            mine.append(cost)

    workers = [threading.Thread(target=calls, args=(mine,)) for mine in costs]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert round(budget.spent() * NANOS) == nanos([cost for mine in costs for cost in mine])
    assert (budget.reserved(), budget.journaled, budget.store_errors) == (0.0, 0, 0)


async def test_a_stall_while_settlements_are_pending(own_redis: RedisServer, way: Way) -> None:
    """Settling does not wait on the stalled Redis; the settlements are applied once when it answers, and
    meanwhile the reservations stay held in the store (spent + reserved never undercounts)."""
    budget = Budget(100.0, store=own_redis.url, name=f"deferred-stall-{way.is_async}")
    held = [await way.reserve(budget, None, 0.5) for _ in range(4)]
    with stalled(own_redis):
        began = time.monotonic()
        for reservation in held:
            await way.settle(budget, reservation, 0.125)
        assert time.monotonic() - began < 0.2, "a settlement within its reservation waited on Redis"
        seen = own_redis.client()
        time.sleep(0.5)
    deadline = time.monotonic() + 10
    while budget.journaled and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (await way.spent(budget), await way.reserved(budget)) == (0.5, 0.0)
    time.sleep(1.2)  # the journal's next round, had it kept anything twice
    assert (await way.spent(budget), budget.journaled) == (0.5, 0)
    seen.close()


def test_held_until_applied_as_other_processes_see_it(own_redis: RedisServer) -> None:
    """Another process reading while a settlement is pending sees the reservation still held: the settlement's
    first attempt met the stalled Redis, and the journal waits a second before it tries again."""
    budget = Budget(100.0, store=own_redis.url, name="deferred-held")
    other = Budget(100.0, store=own_redis.url, name="deferred-held")
    reservation = budget.reserve(None, 0.5)
    with stalled(own_redis):
        budget.settle(reservation, 0.25)
        time.sleep(0.4)
    assert (other.spent(), other.reserved(), budget.journaled) == (0.0, 0.5, 1)
    deadline = time.monotonic() + 10
    while budget.journaled and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (other.spent(), other.reserved()) == (0.25, 0.0)


EXITS_RIGHT_AFTER_ITS_CALLS = """
import sys
from costspan.budgets import Budget
budget = Budget(100.0, store=sys.argv[1], name=sys.argv[2])
for _ in range(50):
    budget.settle(budget.reserve(None, 0.5), 0.125)
"""


def test_a_process_ending_right_after_its_calls_applies_them(own_redis: RedisServer) -> None:
    name = f"deferred-exit-{time.time_ns()}"
    done = subprocess.run(
        [sys.executable, "-c", EXITS_RIGHT_AFTER_ITS_CALLS, own_redis.url, name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "not counted" not in done.stderr
    budget = Budget(100.0, store=own_redis.url, name=name)
    assert (budget.spent(), budget.reserved()) == (6.25, 0.0)
