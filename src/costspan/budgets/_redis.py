"""The Redis store (redis-py): the sync client for sync calls, a ``redis.asyncio`` client per event loop for
async calls, each step one atomic Lua script (EVALSHA, loaded again on NOSCRIPT by redis-py's Script).

Clients built from a URL connect and read with a short timeout (``TIMEOUT`` seconds) and never retry, so a dead
or stalled Redis costs one short timeout, not seconds; URL query parameters override it
(``redis://host:6379/0?socket_timeout=1``). Their pool holds up to ``POOL_SIZE`` connections; a call past that
waits up to ``TIMEOUT`` for a free one (redis-py's own pool would fail it at once: "Too many connections").

A client given by the user is used as configured, and the other kind (async for a sync client, sync for an async
one) is derived from its address, database, credentials, TLS settings and timeouts, without retries. A
``redis.asyncio`` client given by the user is used on whichever loop calls it, so it must live on the loop the
application's async calls run on. Give a client with short timeouts and no retries: a retried reserve is harmless
(the scripts recognise the reservation), but a slow Redis then holds the call for as long as the client waits.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from . import _lua
from ._store import Outcome, Rules, Slot, StoreError

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["POOL_SIZE", "TIMEOUT", "RedisStore", "redact"]

TIMEOUT = 0.25  # seconds, to connect, to read a reply, and to wait for a free pooled connection
POOL_SIZE = 100  # connections per client (one sync client, one async client per event loop)
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


class RedisStore:
    def __init__(self, store: str | redis.Redis | redis.asyncio.Redis, rules: Rules) -> None:
        import redis
        import redis.asyncio

        self._rules = rules
        self._lock = threading.Lock()
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Scripts] = weakref.WeakKeyDictionary()
        self._fixed_async: _Scripts | None = None
        if isinstance(store, str):
            self._description = redact(store)
            self._sync = _scripts(_from_url(store, redis))
            self._new_async: Callable[[], Any] = lambda: _from_url(store, redis.asyncio)
        elif isinstance(store, redis.asyncio.Redis):
            self._description = _describe(store)
            self._fixed_async = _scripts(store)
            self._sync = _scripts(_derive(store, redis))
        else:
            self._description = _describe(store)
            self._sync = _scripts(store)
            self._new_async = lambda: _derive(store, redis.asyncio)

    def describe(self) -> str:
        return self._description

    # Sync and async steps share the argument building and reply parsing; only the client differs.
    def reserve(self, slot: Slot, rid: str, amount: int, limit: int | None) -> Outcome:
        return _reply(self._run(lambda: self._sync.reserve(*self._reserve_args(slot, rid, amount, limit))))

    async def areserve(self, slot: Slot, rid: str, amount: int, limit: int | None) -> Outcome:
        args = self._reserve_args(slot, rid, amount, limit)
        return _reply(await self._arun(lambda: self._async().reserve(*args)))

    def extend(self, slot: Slot, rid: str, add: int, total: int, limit: int | None) -> Outcome:
        return _reply(self._run(lambda: self._sync.extend(*self._extend_args(slot, rid, add, total, limit))))

    async def aextend(self, slot: Slot, rid: str, add: int, total: int, limit: int | None) -> Outcome:
        args = self._extend_args(slot, rid, add, total, limit)
        return _reply(await self._arun(lambda: self._async().extend(*args)))

    def settle(self, slot: Slot, rid: str, actual: int, stored: bool) -> Outcome:
        return _settled(self._run(lambda: self._sync.settle(*self._settle_args(slot, rid, actual, stored))))

    async def asettle(self, slot: Slot, rid: str, actual: int, stored: bool) -> Outcome:
        args = self._settle_args(slot, rid, actual, stored)
        return _settled(await self._arun(lambda: self._async().settle(*args)))

    def status(self, slot: Slot) -> Outcome:
        return _reply(self._run(lambda: self._sync.status(self._keys(slot))))

    async def astatus(self, slot: Slot) -> Outcome:
        keys = self._keys(slot)
        return _reply(await self._arun(lambda: self._async().status(keys)))

    def _keys(self, slot: Slot) -> list[str]:
        scope = "" if slot.scope_value is None else "=" + _part(slot.scope_value)
        window = "all" if slot.window is None else str(slot.window)
        base = f"costspan:budget:{{{_part(self._rules.name)}{scope}|{window}}}:"
        return [base + suffix for suffix in ("spent", "reserved", "holds", "expiries", "fired")]

    def _keep_ms(self, slot: Slot) -> str:
        if slot.window is None:
            return "0"
        return str(max(1000, int((slot.end + self._rules.keep - self._rules.clock()) * 1000)))

    def _reserve_args(self, slot: Slot, rid: str, amount: int, limit: int | None) -> tuple[list[str], list[Any]]:
        limit_arg = -1 if limit is None else limit
        return self._keys(slot), [rid, amount, limit_arg, self._rules.hold_ms, self._keep_ms(slot)]

    def _extend_args(
        self, slot: Slot, rid: str, add: int, total: int, limit: int | None
    ) -> tuple[list[str], list[Any]]:
        limit_arg = -1 if limit is None else limit
        return self._keys(slot), [rid, add, total, limit_arg, self._rules.hold_ms, self._keep_ms(slot)]

    def _settle_args(self, slot: Slot, rid: str, actual: int, stored: bool) -> tuple[list[str], list[Any]]:
        args: list[Any] = [rid, actual, int(stored), self._keep_ms(slot)]
        for fraction, level in self._rules.thresholds:
            args += [repr(fraction), level]
        return self._keys(slot), args

    def _async(self) -> _Scripts:
        """This loop's client: a redis.asyncio connection belongs to the loop that opened it."""
        if self._fixed_async is not None:
            return self._fixed_async
        loop = asyncio.get_running_loop()
        scripts = self._per_loop.get(loop)
        if scripts is None:
            with self._lock:
                scripts = self._per_loop.get(loop)
                if scripts is None:
                    scripts = self._per_loop[loop] = _scripts(self._new_async())
        return scripts

    def _run(self, step: Callable[[], _T]) -> _T:
        import redis

        try:
            return step()
        except (redis.RedisError, OSError) as error:
            raise StoreError(f"{type(error).__name__}: {error}") from error

    async def _arun(self, step: Callable[[], Awaitable[_T]]) -> _T:
        import redis

        try:
            return await step()
        except (redis.RedisError, OSError) as error:
            raise StoreError(f"{type(error).__name__}: {error}") from error


def _reply(reply: list[Any]) -> Outcome:
    held = int(reply[3]) if len(reply) > 3 else 0
    return Outcome(bool(reply[0]), int(reply[1]), int(reply[2]), held=held)


def _settled(reply: list[Any]) -> Outcome:
    return Outcome(bool(reply[0]), int(reply[1]), int(reply[2]), tuple(float(label) for label in reply[3:]))


def _part(text: str) -> str:
    """Escapes what delimits the key's parts and its hash tag ({, }, |, %)."""
    return quote(text, safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`~")


def _from_url(url: str, module: Any) -> Any:
    """A client (module is redis or redis.asyncio) with short timeouts, no retries and a pool that waits."""
    from redis.backoff import NoBackoff

    pool = module.BlockingConnectionPool.from_url(
        url,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        retry=module.retry.Retry(NoBackoff(), 0),
        max_connections=POOL_SIZE,
        timeout=TIMEOUT,
    )
    return module.Redis(connection_pool=pool)


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
    wait = settings.get("socket_timeout") or TIMEOUT
    pool = module.BlockingConnectionPool(connection_class=kind, max_connections=POOL_SIZE, timeout=wait, **settings)
    return module.Redis(connection_pool=pool)


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
