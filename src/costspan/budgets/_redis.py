"""The Redis store (redis-py): the sync client for sync calls, a ``redis.asyncio`` client per event loop for
async calls, each step one atomic Lua script (EVALSHA, loaded again on NOSCRIPT by redis-py's Script).

Clients built from a URL connect and read with a short timeout (``TIMEOUT`` seconds) and never retry, so a dead
or stalled Redis costs one short timeout, not seconds; URL query parameters override it
(``redis://host:6379/0?socket_timeout=1``). A failed step after which nothing has answered (the server is down,
not merely slow for one step under load) leaves the server alone for ``RETRY_AFTER`` seconds, failing calls at
once meanwhile, so an outage costs one timeout a second, not one per call.

At most as many steps run at once as the client's pool has connections (``POOL_SIZE`` for the clients made here);
the others queue for their turn, without a timeout: queueing behind a burst of calls is not a store failure, and
when the store does fail, the queued calls fail at once as their turn comes.

A client given by the user is used as configured, and the other kind (async for a sync client, sync for an async
one) is derived from its address, database, credentials, TLS settings and timeouts, without retries. A
``redis.asyncio`` client given by the user is used on whichever loop calls it, so it must live on the loop the
application's async calls run on. Retries count nothing twice (the scripts recognise a reservation already held
or settled; a retried extend may hold a little more, never less), but a slow Redis holds each call for as long as
the client waits and retries: give it short timeouts.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from . import _lua, _redis_client
from ._store import Outcome, Rules, Slot, StoreError

if TYPE_CHECKING:
    import redis
    import redis.asyncio

    from ._redis_client import RedisCluster

__all__ = ["POOL_SIZE", "RETRY_AFTER", "TIMEOUT", "RedisStore", "redact"]

TIMEOUT = 0.25  # seconds, to connect and to read a reply
POOL_SIZE = 32  # connections per client (one sync client, one async client per event loop): Redis runs one
# script at a time, so more only means more connections to open at once when a burst of calls begins
RETRY_AFTER = 1.0  # seconds a failed server is left alone
# How long past a reservation's lifetime the store remembers that it was settled (ms): a settlement retried
# within that time (the budget's journal retries every second while the store is down) counts nothing twice.
MARKER_MS = 3_600_000
_SETTINGS = {"host", "port", "path", "db", "username", "password", "credential_provider", "client_name"}
_SETTINGS |= {"socket_timeout", "socket_connect_timeout"}
_T = TypeVar("_T")


class _Scripts(NamedTuple):
    reserve: Any
    extend: Any
    settle: Any
    status: Any


def _scripts(client: Any) -> _Scripts:
    return _Scripts(*(client.register_script(lua) for lua in (_lua.RESERVE, _lua.EXTEND, _lua.SETTLE, _lua.STATUS)))


class _Loop(NamedTuple):
    scripts: _Scripts
    gate: asyncio.Semaphore


def _pool_size(client: Any) -> int:
    pool = getattr(client, "connection_pool", client)  # a cluster client's: connections per node
    return min(POOL_SIZE, getattr(pool, "max_connections", POOL_SIZE))


class RedisStore:
    remote = True

    def __init__(self, store: str | redis.Redis | redis.asyncio.Redis | RedisCluster, rules: Rules) -> None:
        import redis
        import redis.asyncio

        self._rules = rules
        self._lock = threading.Lock()
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Loop] = weakref.WeakKeyDictionary()
        self._retry_at = 0.0
        self._answered = 0.0  # when a step last succeeded (time.monotonic)
        self._failure = ""
        self._new_async: Callable[[], Any]
        cluster = _redis_client.cluster_clients(store, TIMEOUT, POOL_SIZE)
        if cluster is not None:
            self._description, sync, self._new_async = cluster
        elif isinstance(store, str):
            self._description = redact(store)
            sync, self._new_async = _from_url(store, redis), lambda: _from_url(store, redis.asyncio)
        elif isinstance(store, redis.asyncio.Redis):
            self._description = _describe(store)
            sync, self._new_async = _derive(store, redis), lambda: store
        else:
            self._description = _describe(store)
            sync, self._new_async = store, lambda: _derive(store, redis.asyncio)
        self._sync = _scripts(sync)
        self._sync_gate = threading.BoundedSemaphore(_pool_size(sync))

    def describe(self) -> str:
        return self._description

    # Sync and async steps share the argument building and reply parsing; only the client differs.
    def reserve(self, slot: Slot, rid: str, amount: int, limit: int | None) -> Outcome:
        args = self._reserve_args(slot, rid, amount, limit)
        return _reply(self._run(lambda scripts: scripts.reserve(*args)))

    async def areserve(self, slot: Slot, rid: str, amount: int, limit: int | None) -> Outcome:
        args = self._reserve_args(slot, rid, amount, limit)
        return _reply(await self._arun(lambda scripts: scripts.reserve(*args)))

    def extend(self, slot: Slot, rid: str, add: int, total: int, limit: int | None) -> Outcome:
        args = self._extend_args(slot, rid, add, total, limit)
        return _reply(self._run(lambda scripts: scripts.extend(*args)))

    async def aextend(self, slot: Slot, rid: str, add: int, total: int, limit: int | None) -> Outcome:
        args = self._extend_args(slot, rid, add, total, limit)
        return _reply(await self._arun(lambda scripts: scripts.extend(*args)))

    def settle(self, slot: Slot, rid: str, actual: int, stored: bool) -> Outcome:
        args = self._settle_args(slot, rid, actual)
        return _settled(self._run(lambda scripts: scripts.settle(*args)))

    async def asettle(self, slot: Slot, rid: str, actual: int, stored: bool) -> Outcome:
        args = self._settle_args(slot, rid, actual)
        return _settled(await self._arun(lambda scripts: scripts.settle(*args)))

    def status(self, slot: Slot) -> Outcome:
        keys = self._keys(slot)
        return _reply(self._run(lambda scripts: scripts.status(keys)))

    async def astatus(self, slot: Slot) -> Outcome:
        keys = self._keys(slot)
        return _reply(await self._arun(lambda scripts: scripts.status(keys)))

    def _keys(self, slot: Slot) -> list[str]:
        scope = "" if slot.scope_value is None else "=" + _part(slot.scope_value)
        window = "all" if slot.window is None else str(slot.window)
        base = f"costspan:budget:{{{_part(self._rules.name)}{scope}|{window}}}:"
        return [base + suffix for suffix in ("spent", "reserved", "holds", "expiries", "fired")]

    def _keep_ms(self, slot: Slot) -> str:
        if slot.window is None:
            return "0"
        return str(max(1000, int((slot.end + self._rules.keep - self._rules.clock()) * 1000)))

    def _marker(self, slot: Slot, rid: str) -> list[str]:
        return [*self._keys(slot)[:5], self._keys(slot)[0].removesuffix("spent") + "settled:" + _part(rid)]

    def _reserve_args(self, slot: Slot, rid: str, amount: int, limit: int | None) -> tuple[list[str], list[Any]]:
        limit_arg = -1 if limit is None else limit
        return self._marker(slot, rid), [rid, amount, limit_arg, self._rules.hold_ms, self._keep_ms(slot)]

    def _extend_args(
        self, slot: Slot, rid: str, add: int, total: int, limit: int | None
    ) -> tuple[list[str], list[Any]]:
        limit_arg = -1 if limit is None else limit
        return self._marker(slot, rid), [rid, add, total, limit_arg, self._rules.hold_ms, self._keep_ms(slot)]

    def _settle_args(self, slot: Slot, rid: str, actual: int) -> tuple[list[str], list[Any]]:
        marker_ms = self._rules.hold_ms + MARKER_MS
        args: list[Any] = [rid, actual, self._keep_ms(slot), marker_ms]
        for fraction, level in self._rules.thresholds:
            args += [repr(fraction), level]
        return self._marker(slot, rid), args

    def _loop(self) -> _Loop:
        """This loop's client and gate: a redis.asyncio connection (and an asyncio.Semaphore) belongs to the loop
        that first used it."""
        loop = asyncio.get_running_loop()
        state = self._per_loop.get(loop)
        if state is None:
            with self._lock:
                state = self._per_loop.get(loop)
                if state is None:
                    client = self._new_async()
                    state = self._per_loop[loop] = _Loop(_scripts(client), asyncio.Semaphore(_pool_size(client)))
        return state

    def _run(self, step: Callable[[_Scripts], _T]) -> _T:
        import redis

        with self._sync_gate:
            began = self._check()
            try:
                result = step(self._sync)
            except (redis.RedisError, OSError) as error:
                raise self._failed(error, began) from error
        self._answered = time.monotonic()
        return result

    async def _arun(self, step: Callable[[_Scripts], Awaitable[_T]]) -> _T:
        import redis

        state = self._loop()
        async with state.gate:
            began = self._check()
            try:
                result = await step(state.scripts)
            except (redis.RedisError, OSError) as error:
                raise self._failed(error, began) from error
        self._answered = time.monotonic()
        return result

    def _check(self) -> float:
        """Fails at once while the server is being left alone; else the time the step begins."""
        now = time.monotonic()
        if now < self._retry_at:
            raise StoreError(self._failure)
        return now

    def _failed(self, error: Exception, began: float) -> StoreError:
        self._failure = f"{type(error).__name__}: {error}"
        if self._answered < began:
            self._retry_at = time.monotonic() + RETRY_AFTER
        return StoreError(self._failure)


def _reply(reply: list[Any]) -> Outcome:
    held = int(reply[3]) if len(reply) > 3 else 0
    return Outcome(bool(reply[0]), int(reply[1]), int(reply[2]), held=held)


def _settled(reply: list[Any]) -> Outcome:
    return Outcome(bool(reply[0]), int(reply[1]), int(reply[2]), tuple(float(label) for label in reply[3:]))


def _part(text: str) -> str:
    """Escapes every delimiter of the key (``=`` between name and scope value, ``|`` before the window, ``:``
    before the counter, ``{``/``}`` of the hash tag) and ``%`` itself, so no two (name, scope value) pairs share
    a key: a budget ``team`` scoped ``alice`` and an unscoped budget ``team=alice`` are different keys."""
    return quote(text, safe=" !\"#$&'()*+,-./;<>?@[\\]^_`~")


def _from_url(url: str, module: Any) -> Any:
    """A client (module is redis or redis.asyncio) with short timeouts and no retries."""
    from redis.backoff import NoBackoff

    retry = module.retry.Retry(NoBackoff(), 0)
    options = {"socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT, "max_connections": POOL_SIZE}
    return module.Redis(connection_pool=module.ConnectionPool.from_url(url, retry=retry, **options))


def _derive(client: Any, module: Any) -> Any:
    """A client of the other kind (module is redis or redis.asyncio) with the same connection settings."""
    pool = client.connection_pool
    kind = getattr(module.connection, pool.connection_class.__name__)
    accepted = {name for cls in kind.__mro__ if "__init__" in vars(cls) for name in _parameters(cls)}
    settings = {
        key: value
        for key, value in pool.connection_kwargs.items()
        if key in accepted and (key in _SETTINGS or key.startswith("ssl_"))
    }
    return module.Redis(
        connection_pool=module.ConnectionPool(connection_class=kind, max_connections=POOL_SIZE, **settings)
    )


def _parameters(cls: type) -> list[str]:
    return list(inspect.signature(vars(cls)["__init__"]).parameters)


def _describe(client: Any) -> str:
    settings = client.connection_pool.connection_kwargs
    if "path" in settings:
        return f"unix://{settings['path']}?db={settings.get('db', 0)}"
    return f"redis://{settings.get('host', 'localhost')}:{settings.get('port', 6379)}/{settings.get('db', 0)}"


def redact(url: str) -> str:
    """The URL without its password (and query, which may carry one)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return url.rpartition("@")[2] if "@" in url else url
