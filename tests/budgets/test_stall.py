"""A Redis that stalls for a few hundred milliseconds (SIGSTOP, then SIGCONT): settlements that time out are kept
in the budget's journal and applied exactly once when Redis answers again; calls let through unchecked meanwhile
are counted, and their cost is added to the budget once it answers. After the stall, spent is the sum of the
settled costs, and nothing stays reserved. A process that ends right after the stall applies its journal as it
exits."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from budgets.helpers import RedisServer, Way

from costspan.budgets import Budget, BudgetStoreError


@contextmanager
def stalled(server: RedisServer) -> Iterator[None]:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


async def test_a_stall_loses_no_spend(own_redis: RedisServer, way: Way) -> None:
    """Defect 5."""
    budget = Budget(100.0, store=own_redis.url, name=f"stall-{way.is_async}", on_store_error="allow")
    await way.settle(budget, await way.reserve(budget, None, 1.0), 1.0)
    in_flight = await way.reserve(budget, None, 0.5)
    with stalled(own_redis):
        await way.settle(budget, in_flight, 0.4)  # times out: kept
        for _ in range(3):
            unchecked = await way.reserve(budget, None, 0.5)
            assert not unchecked.stored
            await way.settle(budget, unchecked, 0.2)
        time.sleep(0.3)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with contextlib.suppress(BudgetStoreError):  # still catching up
            if round(await way.spent(budget), 9) == 2.0:
                break
        time.sleep(0.05)
    assert round(await way.spent(budget), 9) == 2.0  # 1.0 + 0.4 + 3 x 0.2, each once
    assert await way.reserved(budget) == 0.0
    time.sleep(1.5)  # the journal's next round, had it kept anything twice
    assert round(await way.spent(budget), 9) == 2.0
    assert (budget.unchecked, budget.journaled) == (3, 0)


EXITS_AFTER_A_STALL = """
import sys
from costspan.budgets import Budget
budget = Budget(100.0, store=sys.argv[1], name=sys.argv[2])
budget.settle(budget.reserve(None, 0.5), 0.5)
held = budget.reserve(None, 0.5)
assert budget.spent() == 0.5  # applied (a read applies what the journal's thread has not yet)
print("ready", flush=True)
sys.stdin.readline()  # Redis is stalled
unchecked = budget.reserve(None, 0.5)  # times out: let through unchecked, and Redis is left alone a second
budget.settle(held, 0.25)  # not sent: kept in the journal
budget.settle(unchecked, 0.125)
print(budget.journaled, flush=True)
sys.stdin.readline()  # Redis answers again: the process ends at once, before the journal's next round
"""


@pytest.mark.parametrize("recovered", [True, False], ids=["recovered", "still-stalled"])
def test_a_process_ending_after_a_stall_applies_its_journal(own_redis: RedisServer, recovered: bool) -> None:
    """Its normal exit applies the journal when the store answers; when it does not, the exit waits 2 s at most
    and says what was not counted."""
    name = f"exits-{time.time_ns()}"
    worker = subprocess.Popen(
        [sys.executable, "-c", EXITS_AFTER_A_STALL, own_redis.url, name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert worker.stdin is not None and worker.stdout is not None
    try:
        assert worker.stdout.readline() == "ready\n"
        with stalled(own_redis):
            worker.stdin.write("go\n")
            worker.stdin.flush()
            assert worker.stdout.readline() == "2\n"
            if not recovered:
                began = time.monotonic()
                _, errors = worker.communicate("go\n", timeout=30)
                assert time.monotonic() - began < 4.0, "the exit waited on a stalled store"
        if recovered:
            _, errors = worker.communicate("go\n", timeout=30)
    finally:
        worker.kill()
    assert worker.returncode == 0, errors
    lost = f"budget {name!r} ends with 2 settlements its store did not take; their cost is not counted"
    assert (lost in errors) is not recovered, errors
    budget = Budget(100.0, store=own_redis.url, name=name)
    assert budget.spent() == (0.875 if recovered else 0.5)
    if recovered:
        assert budget.reserved() == 0.0
