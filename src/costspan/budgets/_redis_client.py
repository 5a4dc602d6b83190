"""Redis Cluster clients for the Redis store: from a ``redis+cluster://`` (or ``rediss+cluster://``) URL, or from a
``redis.cluster.RedisCluster`` / ``redis.asyncio.cluster.RedisCluster`` given by the user.

redis-py has no URL of its own for a cluster (``RedisCluster.from_url`` takes a ``redis://`` URL of any one node),
so the scheme says it, as in other Python tools that take Redis URLs: ``redis+cluster://[:password@]host:port``
names one node (any), from which the client discovers the others; ``db`` must be 0. A budget's keys share one hash
tag (see ``_lua``), so every script runs on the one node that owns the budget's slot, and redis-py loads a script
again on a node that answers NOSCRIPT (a replica just promoted).

Clients made here are built as those for standalone Redis are: short timeouts, no retries, at most ``POOL_SIZE``
connections per node. A failed command asks redis-py to learn the cluster's layout again, so once a dead master's
replica is promoted the next calls reach it. redis-py's sync client reaches the cluster as it is made, so it is
made on first use (a Budget is made at startup, when the cluster may be down: then calls see a store error, and
the budget recovers by itself); and redis-py raises its cluster errors as ``RedisClusterException``, which is not a
``RedisError``: each is raised here as a ``redis.ConnectionError``, a store failure like any other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias, TypeGuard, cast
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import redis.asyncio.cluster
    import redis.cluster

__all__ = ["RedisCluster", "cluster_clients", "is_cluster_client"]

_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
# What a derived client takes from the user's: where and who, TLS, and timeouts; never retries or pool sizes.
_SETTINGS = {"username", "password", "credential_provider", "client_name", "socket_timeout", "socket_connect_timeout"}

RedisCluster: TypeAlias = "redis.cluster.RedisCluster | redis.asyncio.cluster.RedisCluster"

Clients = tuple[str, Any, Callable[[], Any]]
"""(a description without credentials, the sync client, a factory of async clients), as RedisStore takes them."""


def is_cluster_client(store: object) -> TypeGuard[RedisCluster]:
    import redis.asyncio.cluster
    import redis.cluster

    return isinstance(store, (redis.cluster.RedisCluster, redis.asyncio.cluster.RedisCluster))


def cluster_clients(store: object, timeout: float, pool_size: int) -> Clients | None:
    """The clients for ``store`` when it is a cluster URL or client; else None. A malformed cluster URL raises
    ValueError, as a malformed Redis URL does."""
    if isinstance(store, str):
        return _from_url(store, timeout, pool_size) if urlsplit(store).scheme in _SCHEMES else None
    if not is_cluster_client(store):
        return None
    import redis.asyncio.cluster
    import redis.cluster

    description = f"redis+cluster://{_first_node(store)}"
    if isinstance(store, redis.asyncio.cluster.RedisCluster):
        sync = _SyncCluster(lambda: _derive(store, redis, pool_size), pool_size)
        return description, sync, lambda: _AsyncCluster(store)
    sync = _SyncCluster(lambda: store, _max_connections(store, 2**31))
    return description, sync, lambda: _AsyncCluster(_derive(store, redis.asyncio, pool_size))


def _from_url(url: str, timeout: float, pool_size: int) -> Clients:
    import redis
    import redis.asyncio
    import redis.asyncio.cluster
    import redis.cluster
    from redis.connection import parse_url

    scheme, _, rest = url.partition("://")
    node_url = f"{_SCHEMES[scheme]}://{rest}"
    # Raises ValueError for a malformed URL, without connecting. (Untyped in redis-py.)
    parsed = cast("Callable[[str], dict[str, Any]]", parse_url)(node_url)
    if parsed.get("db", 0) != 0:
        raise ValueError("a Redis Cluster has only database 0")

    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "max_connections": pool_size}
    description = f"redis+cluster://{parsed.get('host', 'localhost')}:{parsed.get('port', 6379)}"
    sync = _SyncCluster(lambda: redis.cluster.RedisCluster.from_url(node_url, **options, **_no_retry(redis)), pool_size)
    return (
        description,
        sync,
        lambda: _AsyncCluster(
            redis.asyncio.cluster.RedisCluster.from_url(node_url, **options, **_no_retry(redis.asyncio))
        ),
    )


def _derive(client: Any, package: Any, pool_size: int) -> Any:
    """A cluster client of the other kind (package is redis or redis.asyncio) reaching the same nodes with the
    same credentials, TLS settings and timeouts, without retries."""
    given = client.get_connection_kwargs()
    settings = {key: value for key, value in given.items() if key in _SETTINGS or key.startswith("ssl_")}
    connection_class = given.get("connection_class")
    if connection_class is not None and "SSL" in connection_class.__name__:
        settings["ssl"] = True
    module = package.cluster
    nodes = [module.ClusterNode(node.host, node.port) for node in client.nodes_manager.startup_nodes.values()]
    return module.RedisCluster(startup_nodes=nodes, max_connections=pool_size, **settings, **_no_retry(package))


def _no_retry(package: Any) -> dict[str, Any]:
    """The options with which a cluster client (package is redis or redis.asyncio) never retries a command."""
    import redis
    from redis.backoff import NoBackoff

    options: dict[str, Any] = {"retry": package.retry.Retry(NoBackoff(), 0)}
    if redis.VERSION < (6,):  # before 6, a cluster retried failed commands by this count, not by `retry`
        options["cluster_error_retry_attempts"] = 0
    return options


def _first_node(client: Any) -> str:
    node = next(iter(client.nodes_manager.startup_nodes.values()), None)
    return "?" if node is None else f"{node.host}:{node.port}"


def _unreachable(error: Exception) -> Exception:
    import redis

    return redis.ConnectionError(f"Redis Cluster: {error}")


def _max_connections(client: Any, default: int) -> int:
    """Connections per node of a user's client (redis-py's default is unbounded)."""
    return int(client.get_connection_kwargs().get("max_connections") or default)


class _SyncCluster:
    """A sync cluster client, made on first use (redis-py's reaches the cluster as it is made)."""

    def __init__(self, make: Callable[[], Any], max_connections: int) -> None:
        self.max_connections = max_connections
        self._make = make
        self._client: Any = None
        self._lock = threading.Lock()

    def register_script(self, script: str) -> _SyncScript:
        return _SyncScript(self, script)

    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make()
        return self._client


class _SyncScript:
    def __init__(self, cluster: _SyncCluster, script: str) -> None:
        self._cluster = cluster
        self._text = script
        self._script: Any = None

    def __call__(self, keys: list[str], args: list[Any] | None = None) -> Any:
        from redis.exceptions import RedisClusterException

        try:
            if self._script is None:
                self._script = self._cluster.client().register_script(self._text)
            return self._script(keys, args or [])  # redis-py 5.0's Script iterates args, None included
        except RedisClusterException as error:
            raise _unreachable(error) from error


class _AsyncCluster:
    """A redis.asyncio cluster client (it reaches the cluster on first use by itself)."""

    def __init__(self, client: Any) -> None:
        self.max_connections = _max_connections(client, 2**31)
        self._client = client

    def register_script(self, script: str) -> _AsyncScript:
        return _AsyncScript(self._client.register_script(script))


class _AsyncScript:
    def __init__(self, script: Any) -> None:
        self._script = script

    async def __call__(self, keys: list[str], args: list[Any] | None = None) -> Any:
        from redis.exceptions import RedisClusterException

        try:
            return await self._script(keys, args or [])
        except RedisClusterException as error:
            raise _unreachable(error) from error
