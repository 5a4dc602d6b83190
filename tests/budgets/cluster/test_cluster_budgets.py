"""Budgets on a Redis Cluster of three masters and three replicas: a cluster URL and redis-py's cluster clients,
sync and async, work as the store; worker processes racing on one budget never overspend and settle exactly; and a
master killed mid-run fails over to its replica while calls go on, counting nothing twice."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import openai
import pytest
import redis.asyncio.cluster
import redis.cluster
from budgets.cluster.nodes import Cluster
from budgets.helpers import CALL_WORKER, NANOS, Way, free_port, nanos, race_real_calls, run_workers

import costspan
from costspan.budgets import Budget, BudgetStoreError
from costspan.testing import ProviderServer
from support import API_KEY

MESSAGES = [{"role": "user", "content": "Summarise the quarterly report in three bullet points, please."}]
SPEND_BETWEEN = 0.0005  # USD counted before the kill and again after the failover: some 26 calls each time


def _store(kind: str, cluster: Cluster) -> Any:
    port = cluster.ports[1]  # any node: the client finds the others
    if kind == "url":
        return cluster.url
    if kind == "client":
        return redis.cluster.RedisCluster(host="127.0.0.1", port=port)
    return redis.asyncio.cluster.RedisCluster(host="127.0.0.1", port=port)


@pytest.mark.parametrize("kind", ["url", "client", "async-client"])
async def test_every_step_on_a_cluster(redis_cluster: Cluster, way: Way, kind: str) -> None:
    """Reserve, extend, settle and read, per scope value: each value's keys in a slot of their own, spread over
    the masters, each script run where its slot lives."""
    store = _store(kind, redis_cluster)
    name = f"steps-{kind}-{way.is_async}"
    budget = Budget(1.0, scope="user.id", store=store, name=name)
    users = [f"user-{uuid.uuid4()}" for _ in range(32)]  # CRC16 puts u-1, u-2, ... in nearby slots
    for user in users:
        held = await way.reserve(budget, user, 0.25)
        assert await way.extend(budget, held, 0.25)
        await way.settle(budget, held, 0.375)
    assert await way.reserved(budget, users[-1]) == 0.0  # a read through the settling object applies its settlements
    again = Budget(1.0, scope="user.id", store=redis_cluster.url, name=name)  # another process's view
    for user in users:
        assert (await way.spent(again, user), await way.reserved(again, user)) == (0.375, 0.0)
        with pytest.raises(costspan.BudgetExceededError):
            await way.reserve(again, user, 0.75)
    assert budget.store_errors == again.store_errors == 0
    masters = {redis_cluster.master_of(key.decode()) for key in _keys(redis_cluster, name)}
    assert len(masters) == 3, "32 random scope values land on every master (all but surely)"
    if kind == "async-client":
        await store.aclose()
    elif kind == "client":
        store.close()


async def test_a_cluster_url_is_checked_when_made_and_reached_when_used(way: Way) -> None:
    """A malformed cluster URL fails at construction; a well-formed one connects to nothing until a call (a budget
    is made at startup, when the cluster may be down): then a dead cluster is a store error, not a crash."""
    with pytest.raises(ValueError, match="only database 0"):
        Budget(1.0, store="redis+cluster://127.0.0.1:6379/2")
    url = f"redis+cluster://127.0.0.1:{free_port()}"
    allowing, blocking = Budget(1.0, store=url), Budget(1.0, store=url, on_store_error="block")
    assert "redis+cluster://127.0.0.1" in repr(allowing)
    held = await way.reserve(allowing, None, 0.5)
    assert not held.stored, "let through unchecked"
    await way.settle(allowing, held, 0.5)
    with pytest.raises(BudgetStoreError):
        await way.reserve(blocking, None, 0.5)
    assert allowing.store_errors >= 1 and blocking.store_errors == 1


def _keys(cluster: Cluster, name: str) -> list[bytes]:
    found = []
    for port in cluster.masters():
        with cluster.node(port) as node:
            found += node.keys(f"costspan:budget:*{name}*")
    return found


def test_eight_processes_on_one_cluster_budget(redis_cluster: Cluster, server: ProviderServer) -> None:
    assert race_real_calls(redis_cluster.url, server.openai_base_url).store_errors == 0


def test_a_master_killed_mid_run_fails_over(tmp_path: Path, server: ProviderServer, instrument: Any, otel: Any) -> None:
    """Four processes make calls on one cluster budget; the master holding it is killed (SIGKILL) mid-run. The
    calls go on, let through unchecked (on_store_error="allow") until its replica is promoted and then counted
    again; once the failover is over (and each worker's journal applied, at its exit at the latest), every call
    is counted exactly once. (Four, not eight: the eight-process race is
    test_eight_processes_on_one_cluster_budget.)"""
    cluster = Cluster(tmp_path / "cluster")
    try:
        cluster.start()
        _fail_over_mid_run(cluster, tmp_path, server, instrument, otel)
    finally:
        cluster.stop()


def _fail_over_mid_run(cluster: Cluster, tmp_path: Path, server: ProviderServer, instrument: Any, otel: Any) -> None:
    config = {"limit_usd": 100.0, "window": None, "store": cluster.url, "name": "failover", "on_store_error": "allow"}
    budget = costspan.Budget(**config)
    stop = tmp_path / "stop"
    options = {"budget": config, "base_url": server.openai_base_url, "calls": 3000, "stop": str(stop)}
    outage = _Outage(cluster, costspan.Budget(**config), stop)
    threading.Thread(target=outage.run, daemon=True).start()
    results = run_workers(CALL_WORKER, [[json.dumps(options)]] * 4)
    outage.done.wait(300)
    assert outage.error is None, outage.error
    calls = [call for result in results for call in result["calls"]]
    assert all(cost is not None for cost, _ in calls), "every call went through, and was priced"
    clean = [cost for cost, errored in calls if not errored]
    unchecked = [cost for cost, errored in calls if errored]
    assert unchecked, "the master was killed while calls were made: some met its outage"
    assert clean, "calls were counted (the outage thread saw spend grow before the kill and after the failover)"
    # Every call counts exactly once: those that met no store error, and those let through unchecked or whose
    # settlement the dying master never answered (kept in their worker's journal, applied once the replica was
    # promoted).
    assert round(budget.spent() * NANOS) == nanos(clean) + nanos(unchecked)
    assert budget.reserved() == 0.0
    assert budget.store_errors == 0, "the outage was watched through another Budget object"

    # After the failover, every call counts exactly.
    instrument(budgets=[budget])
    before = round(budget.spent() * NANOS)
    with openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0) as client:
        for _ in range(20):
            client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, max_tokens=16)
    costs = [span.attributes["gen_ai.usage.cost.amount"] for span in otel.spans()]
    assert len(costs) == 20
    assert round(budget.spent() * NANOS) - before == nanos(costs)
    assert budget.store_errors == 0


class _Outage:
    """Kills the master holding the budget once it has counted some calls, waits for its replica's promotion
    and for calls to be counted again, then tells the workers to stop."""

    def __init__(self, cluster: Cluster, budget: Budget, stop: Path) -> None:
        self.cluster, self.budget, self.stop = cluster, budget, stop
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._wait_for_spend(SPEND_BETWEEN)
            key = _keys(self.cluster, self.budget.name)[0].decode()
            master = self.cluster.master_of(key)
            self.cluster.kill(master)
            self.cluster.await_failover(key, master)
            self._wait_for_spend(self._wait_for_spend(0) + SPEND_BETWEEN)
        except BaseException as error:  # reported by the test
            self.error = error
        finally:
            self.stop.touch()
            self.done.set()

    def _wait_for_spend(self, amount: float, timeout: float = 300) -> float:
        """Wait until the budget has counted ``amount``; what it has counted. (Its first reads after the failover
        may fail: a client learns the new layout from a command that failed.)"""
        deadline = time.monotonic() + timeout
        while True:
            try:
                spent = self.budget.spent()
                if spent >= amount:
                    return spent
            except BudgetStoreError:  # the store is failing over
                pass
            assert time.monotonic() < deadline, f"the budget never reached ${amount}"
            time.sleep(0.05)
