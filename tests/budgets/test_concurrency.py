"""Concurrent reservations and settlements lose nothing and never overspend: across OS processes on one Redis
budget, across asyncio tasks (memory, and Redis through redis.asyncio) and across threads; thresholds fire once
each with processes racing to cross them."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from budgets.helpers import WORKER, RedisServer, Stores, run_workers

from costspan.budgets import Budget, BudgetExceededError

NANOS = 1_000_000_000


def nanos(usd: float) -> int:
    return round(usd * NANOS)


class Sampler:
    """Reads spent and then reserved, over and over, while the workers run. Read in that order, their sum never
    exceeds what the store held at the second read, so a sample over the limit is a real overspend."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()

    @contextmanager
    def running(self) -> Iterator[Sampler]:
        thread = threading.Thread(target=self._run)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            spent = self.budget.spent()
            self.samples.append((spent, self.budget.reserved()))


def check_race(budget: Budget, limit: float, settled: list[float], refusals: list[Any], largest: float) -> None:
    assert budget.spent() == sum(nanos(cost) for cost in settled) / NANOS, "settlement lost or added money"
    assert budget.reserved() == 0, "a reservation outlived its call"
    assert settled and refusals, "the test must both fill the budget and be refused"
    assert budget.spent() <= limit + largest
    for refusal in refusals:
        assert nanos(refusal["spent"]) + nanos(refusal["reserved"]) + nanos(refusal["estimate"]) > nanos(limit)


def test_eight_processes_on_one_redis_budget(redis_server: RedisServer) -> None:
    limit = 3.0
    config = {"limit_usd": limit, "window": "day", "store": redis_server.url, "name": f"race-{random.random()}"}
    config["on_store_error"] = "block"  # a store failure must fail the test, not let a call through unchecked
    budget = Budget(**config)
    with Sampler(budget).running() as sampler:
        results = run_workers(
            WORKER, [["race", json.dumps({"budget": config, "seed": seed, "calls": 50})] for seed in range(8)]
        )
    settled = [cost for result in results for cost in result["settled"]]
    refusals = [refusal for result in results for refusal in result["refusals"]]
    assert len(settled) + len(refusals) == 8 * 50
    largest = max(result["largest"] for result in results)
    check_race(budget, limit, settled, refusals, largest)
    # Every reservation was the call's worst case, so spend plus reservations never passed the limit.
    assert sampler.samples and max(spent + reserved for spent, reserved in sampler.samples) <= limit + 1e-9


async def test_two_hundred_asyncio_calls(stores: Stores) -> None:
    limit = 2.0
    budget = stores.budget(limit, on_store_error="block")
    rng = random.Random(7)
    settled: list[float] = []
    refusals: list[dict[str, float]] = []
    peaks: list[float] = []

    async def call() -> None:
        worst = round(rng.uniform(0.001, 0.03), 9)
        try:
            reservation = await budget.areserve(None, worst)
        except BudgetExceededError as error:
            refusals.append({"spent": error.spent, "reserved": error.reserved, "estimate": error.estimate})
            return
        if rng.random() < 0.3 and await budget.aextend(reservation, 0.002):
            worst += 0.002
        await asyncio.sleep(rng.uniform(0, 0.005))
        peaks.append(await budget.aspent() + await budget.areserved())
        actual = rng.uniform(0.3, 1.0) * worst
        await budget.asettle(reservation, actual)
        settled.append(actual)

    await asyncio.gather(*(call() for _ in range(200)))
    check_race(budget, limit, settled, refusals, 0.032)
    assert max(peaks) <= limit + 1e-9


def test_threads_on_the_memory_store() -> None:
    limit = 2.0
    budget = Budget(limit)
    settled: list[float] = []
    refusals: list[dict[str, float]] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(200):
            worst = round(rng.uniform(0.001, 0.03), 9)
            try:
                reservation = budget.reserve(None, worst)
            except BudgetExceededError as error:
                refusals.append({"spent": error.spent, "reserved": error.reserved, "estimate": error.estimate})
                continue
            actual = rng.uniform(0.3, 1.0) * worst
            budget.settle(reservation, actual)
            settled.append(actual)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    check_race(budget, limit, settled, refusals, 0.03)


def test_thresholds_fire_once_with_four_processes_racing(redis_server: RedisServer, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    config = {"limit_usd": 1.0, "store": redis_server.url, "name": f"fire-{random.random()}", "action": "alert"}
    config["on_store_error"] = "block"
    options = {"budget": config, "events": str(events), "calls": 40, "amount": 0.01}
    results = run_workers(WORKER, [["thresholds", json.dumps(options)]] * 4)
    fired = [json.loads(line) for line in events.read_text().splitlines()]
    assert Counter(event["threshold"] for event in fired) == {0.5: 1, 0.8: 1, 1.0: 1}
    # Each returned by the settle that crossed it, unless that settlement was one handed to the journal's thread
    # (no threshold in reach when it reserved, but other processes' later calls settled first): fired from there.
    returned = sorted(threshold for result in results for threshold in result["crossed"])
    assert set(returned) <= {0.5, 0.8, 1.0} and len(returned) == len(set(returned))
    for event in fired:  # each fired by the settlement that crossed it, seeing the spend that crossed it
        assert event["threshold"] <= event["spent"] < event["threshold"] + 0.04 + 1e-9
    assert Budget(**config).spent() == pytest.approx(1.6)
