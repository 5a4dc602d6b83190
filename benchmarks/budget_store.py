"""A Redis budget's cost per call on Redis Cluster against standalone Redis: one reserve and its settle.

    python benchmarks/budget_store.py [--rounds 40] [--pairs 50] [--threads 8]

Starts a standalone redis-server and a Redis Cluster of three masters with one replica each (the test suite's own
helpers, on loopback), and one Budget on each through its URL (``redis://`` and ``redis+cluster://``), with the
clients costspan makes from a URL. Each round times one batch of ``--pairs`` reserve + settle pairs per variant,
in a shuffled order (the machine's speed drifts within seconds: variants compared within a round see the same
drift):

- ``sync``: ``budget.reserve`` then ``budget.settle``, one pair after another, on the calling thread;
- ``async``: ``await budget.areserve`` then ``await budget.asettle``, on one event loop;
- ``threads``: ``--threads`` threads each doing the batch at once (the time per pair is wall time over all pairs:
  what a process with that many calls in flight gets).

Reported per pair, in microseconds: the median over rounds of the wall time, the rounds' 90th percentile, and
the median of this process's CPU time (the client's own work: redis-py's routing and costspan's; on a machine
shared with other work the wall times move with its load, the CPU times much less). Each round ends when the
budget's journal has applied every settlement it was handed (its thread applies a settlement that fits its
reservation off the request thread), so the wall times include that work.

Then, per store, paced as a call's path is in an application (a pair, then ``--pause`` ms in which the journal's
thread does its work, as it would while the next LLM call is in flight): the time a pair takes on the calling
thread (``reserve`` + ``settle``) and ``reserve`` alone (the reservation's round trip), median and 90th percentile
of ``--pairs`` x ``--rounds`` pairs timed one by one, sync; and the scripts (EVALSHA) each pair sends from the
calling thread and in all, counted in redis-py's send path over one batch, sync and async.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis.asyncio.connection
import redis.connection

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from budgets.cluster.nodes import Cluster
from budgets.helpers import RedisServer

from costspan import Budget

AMOUNT, ACTUAL = 0.001, 0.0007


def _sync(budget: Budget, pairs: int) -> None:
    for _ in range(pairs):
        budget.settle(budget.reserve(None, AMOUNT), ACTUAL)


def _async(budget: Budget, pairs: int, loop: asyncio.AbstractEventLoop) -> None:
    async def run() -> None:
        for _ in range(pairs):
            await budget.asettle(await budget.areserve(None, AMOUNT), ACTUAL)

    loop.run_until_complete(run())


def _threads(budget: Budget, pairs: int, count: int) -> None:
    workers = [threading.Thread(target=_sync, args=(budget, pairs)) for _ in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def _drained(budget: Budget) -> None:
    while budget.journaled:
        time.sleep(0.0001)


@contextmanager
def _counting_scripts() -> Iterator[list[int]]:
    """The thread of each script redis-py sends, sync or async, while in the block."""
    sent: list[int] = []
    saved = []
    for connection in (redis.connection.AbstractConnection, redis.asyncio.connection.AbstractConnection):
        send = connection.send_packed_command
        saved.append((connection, send))

        def spy(self: Any, command: Any, *args: Any, send: Any = send, **kwargs: Any) -> Any:
            if b"EVALSHA" in (command if isinstance(command, bytes) else b"".join(command)):
                sent.append(threading.get_ident())
            return send(self, command, *args, **kwargs)

        connection.send_packed_command = spy  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        for connection, send in saved:
            connection.send_packed_command = send  # type: ignore[method-assign]


def _round_trips(budget: Budget, pairs: int, loop: asyncio.AbstractEventLoop) -> str:
    figures = []
    for kind, run in (("sync", lambda: _sync(budget, pairs)), ("async", lambda: _async(budget, pairs, loop))):
        with _counting_scripts() as sent:
            run()
            _drained(budget)
        mine = sent.count(threading.get_ident())
        figures.append(f"{kind} {mine / pairs:.2f} on the calling thread, {len(sent) / pairs:.2f} in all")
    return "; ".join(figures)


def _paced(budget: Budget, count: int, pause: float) -> tuple[list[float], list[float]]:
    """Per pair, timed one by one: (reserve + settle, reserve alone), in microseconds."""
    pairs, reserves = [], []
    for _ in range(count):
        began = time.perf_counter()
        reservation = budget.reserve(None, AMOUNT)
        reserved = time.perf_counter()
        budget.settle(reservation, ACTUAL)
        ended = time.perf_counter()
        pairs.append((ended - began) * 1e6)
        reserves.append((reserved - began) * 1e6)
        time.sleep(pause)
    _drained(budget)
    return pairs, reserves


def _figures(times: list[float]) -> str:
    return f"{statistics.median(times):6.1f} (p90 {statistics.quantiles(times, n=10)[-1]:6.1f})"


def _variants(budgets: dict[str, Budget], pairs: int, threads: int, loop: asyncio.AbstractEventLoop) -> dict:
    out: dict[str, tuple[Callable[[], None], int]] = {}
    for store, budget in budgets.items():
        out[f"{store} sync"] = (lambda budget=budget: _sync(budget, pairs), pairs)
        out[f"{store} async"] = (lambda budget=budget: _async(budget, pairs, loop), pairs)
        out[f"{store} {threads} threads"] = (lambda budget=budget: _threads(budget, pairs, threads), pairs * threads)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pause", type=float, default=2.0, help="ms between paced pairs")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        standalone = RedisServer(Path(directory) / "standalone")
        standalone.directory.mkdir()
        cluster = Cluster(Path(directory) / "cluster")
        try:
            standalone.start()
            cluster.start()
            _run(standalone.url, cluster.url, options)
        finally:
            standalone.stop()
            cluster.stop()


def _run(standalone: str, cluster: str, options: argparse.Namespace) -> None:
    budgets = {
        "standalone": Budget(1e6, window=None, store=standalone, name="bench", on_store_error="block"),
        "cluster": Budget(1e6, window=None, store=cluster, name="bench", on_store_error="block"),
    }
    loop = asyncio.new_event_loop()
    variants = _variants(budgets, options.pairs, options.threads, loop)
    for run, _ in variants.values():  # connect, load the scripts, warm up
        run()
    rng = random.Random(options.seed)
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(options.rounds):
        order = list(variants)
        rng.shuffle(order)
        for name in order:
            run, pairs = variants[name]
            began, began_cpu = time.perf_counter(), time.process_time()
            run()
            _drained(budgets[name.split()[0]])
            wall[name].append((time.perf_counter() - began) / pairs * 1e6)
            cpu[name].append((time.process_time() - began_cpu) / pairs * 1e6)
    count = options.rounds * options.pairs
    print(f"paced, on the calling thread, us ({count} pairs timed one by one, {options.pause} ms apart), sync")
    for store, budget in budgets.items():
        pairs, reserves = _paced(budget, count, options.pause / 1000)
        print(f"  {store:<11} reserve + settle {_figures(pairs)}; reserve alone {_figures(reserves)}")
    print("scripts (EVALSHA) sent per pair")
    for store, budget in budgets.items():
        print(f"  {store:<11} {_round_trips(budget, options.pairs, loop)}")
    loop.close()
    print(f"reserve + settle, us per pair ({options.rounds} rounds of {options.pairs} pairs, median of rounds)")
    print(f"  {'':<24} {'wall':>8} {'wall p90':>9} {'client CPU':>11}")
    for name, values in wall.items():
        p90 = statistics.quantiles(values, n=10)[-1]
        print(f"  {name:<24} {statistics.median(values):8.1f} {p90:9.1f} {statistics.median(cpu[name]):11.1f}")
    for store, budget in budgets.items():
        assert budget.store_errors == 0, f"{store}: {budget.store_errors} store errors"


if __name__ == "__main__":
    main()
