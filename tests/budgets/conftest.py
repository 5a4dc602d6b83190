"""Budget test fixtures: a real redis-server for the session, a restartable password-protected one for outage
tests, a slow proxy in front of it, and the parametrisation over stores and over sync/async calls."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from budgets.helpers import PASSWORD, RedisServer, SlowProxy, Stores, Way


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def cluster_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("cluster"), cluster=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A password-protected redis-server this test may stop and restart."""
    server = RedisServer(tmp_path, password=PASSWORD)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def slow_proxy(own_redis: RedisServer) -> Iterator[SlowProxy]:
    proxy = SlowProxy(own_redis.port)
    yield proxy
    proxy.close()


@pytest.fixture(params=["memory", "redis"])
def stores(request: pytest.FixtureRequest) -> Stores:
    if request.param == "memory":
        return Stores("memory", None)
    return Stores("redis", request.getfixturevalue("redis_server"))


@pytest.fixture(params=["sync", "async"])
def way(request: pytest.FixtureRequest) -> Way:
    return Way(request.param == "async")
