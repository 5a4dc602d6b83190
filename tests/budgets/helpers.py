"""What the budget tests share: a real redis-server of their own, a TCP proxy that delays every packet (a slow
Redis), the stores under test, the sync and async ways of calling a budget, and an injectable clock."""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import redis

from costspan.budgets import Budget, Reservation
from servers import binary

WORKER = Path(__file__).with_name("worker.py")
CALL_WORKER = Path(__file__).with_name("call_worker.py")
PASSWORD = "s3cret-DISTINCTIVE"
NANOS = 1_000_000_000


def run_workers(script: Path, arguments: list[list[str]], timeout: float = 180) -> list[dict[str, Any]]:
    """Start ``script`` once per argument list, let every process begin at once (each says "ready", then all are
    told "go"), and return the JSON each reports as it exits, which it must do with status 0."""
    workers = [
        subprocess.Popen([sys.executable, str(script), *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for argv in arguments
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = [json.loads(worker.communicate(timeout=timeout)[0]) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert [worker.returncode for worker in workers] == [0] * len(workers)
    return results


def nanos(amounts: list[float]) -> int:
    return sum(round(amount * NANOS) for amount in amounts)


def check_race(budget: Budget, costs: list[float], refusals: list[dict[str, float]], largest: float) -> None:
    """What concurrency must not break: the budget holds exactly the spans' costs, no reservation is left, the
    limit binds, and it is never passed by more than one reservation (here, by nothing: a call's reservation, its
    estimated input and max_tokens, covers what it costs)."""
    assert costs and refusals, "the test must both fill the budget and be refused"
    assert round(budget.spent() * NANOS) == nanos(costs), "settlement lost or added money"
    assert budget.reserved() == 0.0, "a reservation outlived its call"
    assert budget.spent() <= budget.limit_usd + largest
    assert budget.spent() <= budget.limit_usd
    for refusal in refusals:
        assert refusal["spent"] + refusal["reserved"] + refusal["estimate"] > budget.limit_usd - 1e-9


def race_real_calls(store: str, base_url: str) -> Budget:
    """Eight worker processes make 50 real calls each (half of them streams) on one budget with room for about 250
    of them (12 input and 9 output tokens of gpt-4.1-mini, about $0.0000288 each), refusing calls while its store
    fails; checks the race (:func:`check_race`) and returns the budget."""
    config = {"limit_usd": 0.0075, "store": store, "name": "calls-race", "on_store_error": "block"}
    budget = Budget(**config)
    options = {"budget": config, "base_url": base_url, "calls": 50}
    results = run_workers(CALL_WORKER, [[json.dumps(options)]] * 8)
    costs = [cost for result in results for cost in result["costs"]]
    refusals = [refusal for result in results for refusal in result["refusals"]]
    assert len(costs) + len(refusals) == 400
    check_race(budget, costs, refusals, max(refusal["estimate"] for refusal in refusals))
    return budget


def free_port(cluster: bool = False) -> int:
    """A port free now (another process may take it before the server binds it: RedisServer.start retries). A
    cluster node also listens on its port + 10000, its bus."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if not cluster:
            return port
        if port + 10000 < 65536:
            with socket.socket() as bus:
                try:
                    bus.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


class RedisServer:
    """A redis-server of the test's own: loopback, a free port, a temporary directory, no persistence."""

    def __init__(
        self,
        directory: Path,
        password: str | None = None,
        cluster: bool = False,
        persistent: bool = False,
        backlog: int = 511,
    ) -> None:
        self.directory = directory
        self.password = password
        self.cluster = cluster
        self.persistent = persistent  # an append-only file written at every step: a restart keeps the data
        self.backlog = backlog  # connections the kernel completes before Redis accepts them (tcp-backlog)
        self.port = free_port(cluster)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        return f"unix://{self.directory / 'redis.sock'}?db=0"

    def start(self) -> None:
        """Start it, on another free port if the one chosen was taken meanwhile (tests run in parallel)."""
        for attempt in range(5):
            try:
                self._start()
                return
            except redis.ConnectionError:
                if self.process is None or self.process.poll() is None or attempt == 4:
                    raise
                self.port = free_port(self.cluster)

    def _start(self) -> None:
        command = [binary("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "yes" if self.persistent else "no", "--appendfsync", "always"]
        command += ["--dir", str(self.directory), "--unixsocket", "redis.sock"]
        command += ["--unixsocketperm", "700", "--tcp-backlog", str(self.backlog)]
        if self.password:
            command += ["--requirepass", self.password]
        if self.cluster:
            command += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = self.client()
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.02)
        if self.cluster:
            self._own_every_slot(client)
        client.close()

    @staticmethod
    def _own_every_slot(client: redis.Redis) -> None:
        """A one-node cluster: it serves every slot, and refuses a script whose keys are in different slots."""
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        deadline = time.monotonic() + 10
        while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
            assert time.monotonic() < deadline, "the cluster never became ready"
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=5)


class SlowProxy:
    """A TCP proxy in front of a server. ``delay``: every chunk, either way, waits that long (a stalled Redis).
    ``script_delay``: only the reply to a script (EVALSHA) waits (a Redis slow to answer, whose connections
    still open quickly, so a client that retries really does deliver the script again)."""

    def __init__(self, port: int) -> None:
        self.delay = 0.0
        self.script_delay = 0.0
        self._upstream = port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                downstream, _ = self._listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self._upstream))
                scripts = threading.Semaphore(0)  # one release per script sent, one acquire per reply held
                threading.Thread(target=self._requests, args=(downstream, upstream, scripts), daemon=True).start()
                threading.Thread(target=self._replies, args=(upstream, downstream, scripts), daemon=True).start()

    def _requests(self, source: socket.socket, target: socket.socket, scripts: threading.Semaphore) -> None:
        with contextlib.suppress(OSError), source, target:
            while data := source.recv(65536):
                if b"EVALSHA" in data:
                    scripts.release()
                time.sleep(self.delay)
                target.sendall(data)

    def _replies(self, source: socket.socket, target: socket.socket, scripts: threading.Semaphore) -> None:
        with contextlib.suppress(OSError), source, target:
            while data := source.recv(65536):
                time.sleep(self.delay + (self.script_delay if scripts.acquire(blocking=False) else 0))
                target.sendall(data)


_names = itertools.count()


class Stores:
    """Makes budgets on the store under test, each under a name of its own (the Redis server is shared)."""

    def __init__(self, kind: str, server: RedisServer | None) -> None:
        self.kind = kind
        self.server = server

    @property
    def url(self) -> str | None:
        return None if self.server is None else self.server.url

    def budget(self, limit_usd: float, window: str | None = "day", **options: Any) -> Budget:
        options.setdefault("name", f"test-{time.time_ns()}-{next(_names)}")
        return Budget(limit_usd, window, store=self.url, **options)


class Way:
    """Calls a budget the sync or the async way, from an async test."""

    def __init__(self, is_async: bool) -> None:
        self.is_async = is_async

    async def reserve(self, budget: Budget, scope_value: str | None, amount: float) -> Reservation:
        return await budget.areserve(scope_value, amount) if self.is_async else budget.reserve(scope_value, amount)

    async def extend(self, budget: Budget, reservation: Reservation, amount: float) -> bool:
        return await budget.aextend(reservation, amount) if self.is_async else budget.extend(reservation, amount)

    async def settle(self, budget: Budget, reservation: Reservation, actual: float) -> tuple[float, ...]:
        return await budget.asettle(reservation, actual) if self.is_async else budget.settle(reservation, actual)

    async def spent(self, budget: Budget, scope_value: str | None = None) -> float:
        return await budget.aspent(scope_value) if self.is_async else budget.spent(scope_value)

    async def reserved(self, budget: Budget, scope_value: str | None = None) -> float:
        return await budget.areserved(scope_value) if self.is_async else budget.reserved(scope_value)

    async def remaining(self, budget: Budget, scope_value: str | None = None) -> float:
        return await budget.aremaining(scope_value) if self.is_async else budget.remaining(scope_value)


class Clock:
    """An injectable clock: ``clock.now`` is the time the budget sees."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
