"""A Redis Cluster of the tests' own: three masters, each with one replica, on loopback and free ports, made with
``redis-cli --cluster create`` as an operator would; a master can be killed and its replica's promotion awaited."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import redis
from budgets.helpers import free_port
from redis.crc import key_slot

from servers import binary

# A master unreachable this long is failed over. Low, so that a test sees the failover in a few seconds; not so
# low that a loaded CI machine fails a master over by mistake.
NODE_TIMEOUT_MS = 2000


class Cluster:
    def __init__(self, directory: Path, masters: int = 3) -> None:
        self.directory = directory
        self.ports = [free_port(cluster=True) for _ in range(masters * 2)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def start(self) -> None:
        server, cli = binary("redis-server"), binary("redis-cli")
        for port in self.ports:
            self.processes[port] = self._start_node(server, port)
        for port in self.ports:
            self._wait(lambda port=port: self.node(port).ping())
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "1", "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
        self._wait(self._ready)

    def _start_node(self, server: str, port: int) -> subprocess.Popen[bytes]:
        directory = self.directory / str(port)
        directory.mkdir(parents=True)
        command = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", str(directory), "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        command += ["--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--cluster-replica-validity-factor", "0"]
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)

    def _ready(self) -> bool:
        """Every live node sees the cluster whole, and every replica has its master's data."""
        for port, process in self.processes.items():
            if process.poll() is not None:
                continue
            with self.node(port) as node:
                info = node.cluster("info")
                if info["cluster_state"] != "ok" or int(info["cluster_slots_ok"]) != 16384:
                    return False
                replication = node.info("replication")
                if replication["role"] == "slave" and replication.get("master_link_status") != "up":
                    return False
        return True

    @staticmethod
    def _wait(ready: object, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if ready():  # type: ignore[operator]
                    return
            except redis.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the Redis Cluster did not become ready"
            time.sleep(0.05)

    def master_of(self, key: str) -> int:
        """The port of the master serving ``key``'s slot."""
        slot = key_slot(key.encode())
        for port, process in self.processes.items():
            if process.poll() is None:
                with self.node(port) as node:
                    for start, end, master, *_ in node.cluster("slots"):
                        if start <= slot <= end:
                            return int(master[1])
        raise AssertionError(f"no node serves slot {slot}")

    def masters(self) -> list[int]:
        """The ports of the live masters."""
        live = [port for port, process in self.processes.items() if process.poll() is None]
        with self.node(live[0]) as node:
            return [int(master[1]) for _, _, master, *_ in node.cluster("slots")]

    def kill(self, port: int) -> None:
        """SIGKILL a node, as a machine that dies: no goodbye to its clients or to the cluster."""
        os.kill(self.processes[port].pid, signal.SIGKILL)
        self.processes[port].wait(10)

    def await_failover(self, key: str, dead: int, timeout: float = 30) -> int:
        """Wait until another node serves ``key``'s slot, and the cluster is whole again; that node's port."""
        self._wait(lambda: self.master_of(key) != dead and self._ready(), timeout)
        return self.master_of(key)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            process.wait(10)
