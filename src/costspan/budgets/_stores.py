"""What a Budget needs around its store: opening it (memory, a Redis URL or client), telling its health (failures
counted and logged once per outage, calls let through unchecked counted), and reservation ids unique across the
processes that share it."""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time

from ._memory import MemoryStore
from ._store import Rules, Store, StoreError

__all__ = ["Health", "new_id", "open_store"]

_log = logging.getLogger("costspan")


class Health:
    """Counts store failures and logs them once per outage: a warning when the store starts failing (at most one a
    minute, should it flap), an info line when it answers again, debug lines between. (The Redis store itself
    leaves a server that stopped answering alone for a moment; see costspan.budgets._redis.)"""

    def __init__(self, name: str, store: Store, on_store_error: str) -> None:
        self._name = name
        self._store = store
        self._on_store_error = on_store_error
        self._lock = threading.Lock()
        self.errors = 0
        self.unchecked = 0
        self.down = False  # read on every call: while False, an answer from the store has nothing to announce
        self._warned = False
        self._quiet_until = 0.0

    def answered(self) -> None:
        if self.down:
            self._recovered()

    def let_through(self) -> None:
        with self._lock:
            self.unchecked += 1

    def failed(self, error: StoreError) -> None:
        now = time.monotonic()
        with self._lock:
            self.errors += 1
            warn = not self.down and now >= self._quiet_until
            self.down = True
            if warn:
                self._warned, self._quiet_until = True, now + 60
        if not warn:
            _log.debug("costspan: budget %r store failed: %s", self._name, error)
            return
        consequence = "refused" if self._on_store_error == "block" else "let through unchecked"
        _log.warning(
            "costspan: budget %r cannot use its store %s (%s); calls are %s (on_store_error=%r) until it answers",
            self._name,
            self._store.describe(),
            error,
            consequence,
            self._on_store_error,
        )

    def _recovered(self) -> None:
        with self._lock:
            announce, self.down, self._warned = self.down and self._warned, False, False
        if announce:
            _log.info("costspan: budget %r store %s answers again", self._name, self._store.describe())


_PROCESS = [os.urandom(6).hex()]
_COUNTER = itertools.count()


def new_id() -> str:
    """Unique across processes sharing a store: a random per-process prefix (renewed after fork) and a counter."""
    return f"{_PROCESS[0]}.{next(_COUNTER)}"


def _renew_process_id() -> None:
    _PROCESS[0] = os.urandom(6).hex()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_process_id)


def open_store(store: object, rules: Rules) -> Store:
    if store is None:
        return MemoryStore(rules)
    if isinstance(store, str):
        return open_redis_url(store, rules)
    if type(store).__module__.split(".")[0] == "redis":
        import redis
        import redis.asyncio

        from ._redis_client import is_cluster_client

        if isinstance(store, (redis.Redis, redis.asyncio.Redis)) or is_cluster_client(store):
            from ._redis import RedisStore

            return RedisStore(store, rules)
    raise TypeError(
        "Budget store must be None (memory), a Redis URL or a redis.Redis / redis.asyncio.Redis / RedisCluster "
        f"client, not {store!r}"
    )


def open_redis_url(url: str, rules: Rules) -> Store:
    from ._redis import redact

    try:
        from ._redis import RedisStore

        return RedisStore(url, rules)
    except ImportError as error:
        raise ImportError(
            f"Budget store {redact(url)!r} needs the redis package: pip install 'costspan[redis]'"
        ) from error
    except ValueError as error:
        raise ValueError(
            f"Budget store {redact(url)!r} is not a Redis URL ({error}); "
            "expected redis://[:password@]host:port/db, rediss://..., unix:///path/to/socket or "
            "redis+cluster://[:password@]host:port"
        ) from None
