"""Settlements not yet in the store: those it did not take, kept and applied once it answers, and those handed
over to be applied off the request thread.

A Redis budget's call that ends within its reservation, far enough below the next threshold that its settlement
cannot be the one to cross it, is settled here rather than on the request thread: its call makes one round trip
(the reservation), and the journal's thread applies the settlement at once. Until then the reservation stays held
in the store, so spent + reserved never undercounts, and the budget's reads in this process apply the journal
first, so they see the call.

A settle that fails or times out (a Redis stall, a restart, a memory store with no room), or whose caller is
cancelled while it awaits the store, goes into the budget's journal instead of being lost; so does the release
of a reservation whose reply a cancellation cut off. A background thread tries the journal again every
``RETRY_EVERY`` seconds, oldest first, until it is empty. Each entry is applied exactly once: the store's settle
step recognises a reservation it settled already (see ``_lua.SETTLE``), so an entry whose first attempt did
reach the store, only its reply lost, counts nothing again.

The journal is bounded (``JOURNAL_BOUND`` entries per budget): past that, the oldest entry is dropped, with a
warning and the ``dropped`` count, rather than growing without end during a long outage.

The retrying thread is a daemon, so a process's normal exit does not wait for it: at exit, what the journals still
hold is applied if the store takes it within ``EXIT_WAIT`` seconds (a worker that ends right after an outage, a
Redis Cluster's failover, would otherwise take those calls' cost with it); what it does not take is lost, with a
warning.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from ._store import Outcome, Slot, StoreError

__all__ = ["JOURNAL_BOUND", "RETRY_EVERY", "Entry", "Journal"]

JOURNAL_BOUND = 100_000
RETRY_EVERY = 1.0  # seconds between attempts while the store does not answer
IDLE = 5.0  # seconds the journal's thread waits for more before it ends
EXIT_WAIT = 2.0  # seconds a process's normal exit gives its journals to be applied
_EXIT_RETRY = 0.1  # seconds between attempts at exit (a failed Redis is left alone for a second: see _redis)
_log = logging.getLogger("costspan")


class Entry(NamedTuple):
    slot: Slot
    rid: str
    actual: int
    stored: bool


class Journal:
    """``apply`` settles one entry in the store (raising StoreError when it cannot); ``applied`` hears of each
    entry the store took, with its outcome (thresholds it crossed)."""

    def __init__(self, name: str, apply: Callable[[Entry], Outcome], applied: Callable[[Entry, Outcome], None]) -> None:
        self._name = name
        self._apply = apply
        self._applied = applied
        self.entries: deque[Entry] = deque()  # read on every settle: is there a backlog to apply first?
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one flush at a time: an entry is applied by one of them
        self._worker: threading.Thread | None = None
        self._wake = threading.Event()
        self.dropped = 0
        self.applied = 0  # entries the store took: a caller tells whether any was applied meanwhile

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, entry: Entry) -> None:
        with self._lock:
            if len(self.entries) >= JOURNAL_BOUND:
                self.entries.popleft()
                self.dropped += 1
                if self.dropped == 1:
                    _log.warning(
                        "costspan: budget %r keeps at most %d settlements its store did not take; the oldest "
                        "are dropped (their cost is not counted)",
                        self._name,
                        JOURNAL_BOUND,
                    )
            self.entries.append(entry)
            _holding.add(self)
            self._wake.set()
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="costspan-budget-journal", daemon=True)
                self._worker.start()

    def pending(self) -> list[Entry]:
        with self._lock:
            return list(self.entries)

    def took(self, entry: Entry) -> None:
        """``entry`` was applied outside :meth:`flush` (through an async client): the thread need not apply it."""
        with self._lock:
            try:
                self.entries.remove(entry)
            except ValueError:  # a flush applied and removed it meanwhile
                return
            self.applied += 1

    def flush(self) -> bool:
        """Apply what the store takes now, oldest first; whether the journal is empty."""
        with self._flushing:
            return self._flush()

    def _flush(self) -> bool:
        while True:
            with self._lock:
                if not self.entries:
                    return True
                entry = self.entries[0]
            try:
                outcome = self._apply(entry)
            except StoreError as error:
                _log.debug("costspan: budget %r journal: its store failed: %s", self._name, error)
                return False
            with self._lock:
                if self.entries and self.entries[0] is entry:
                    self.entries.popleft()
                self.applied += 1
            self._applied(entry, outcome)

    def _run(self) -> None:
        while True:
            if not self._wake.wait(IDLE):
                with self._lock:
                    if not self._wake.is_set():  # else one was added since: go on
                        self._worker = None
                        return
            self._wake.clear()
            if self.flush():
                with self._lock:
                    if not self.entries:
                        _holding.discard(self)
            else:
                time.sleep(RETRY_EVERY)
                self._wake.set()

    def drain(self, deadline: float) -> None:
        """Apply what the store takes until the journal is empty or ``deadline`` (time.monotonic) passes."""
        while not self.flush() and time.monotonic() + _EXIT_RETRY < deadline:
            time.sleep(_EXIT_RETRY)

    def warn_lost(self) -> None:
        if self.entries:
            _log.warning(
                "costspan: budget %r ends with %d settlements its store did not take; their cost is not counted",
                self._name,
                len(self.entries),
            )


_holding: weakref.WeakSet[Journal] = weakref.WeakSet()  # journals holding entries


@atexit.register
def _drain_at_exit() -> None:
    """In a thread of its own, waited for ``EXIT_WAIT`` seconds at most: a store client of the user's without a
    timeout, facing a stalled server, cannot hold the process's exit."""
    journals = list(_holding)
    if not journals:
        return
    deadline = time.monotonic() + EXIT_WAIT

    def drain_all() -> None:
        for journal in journals:
            journal.drain(deadline)

    drainer = threading.Thread(target=drain_all, name="costspan-budget-exit", daemon=True)
    drainer.start()
    drainer.join(EXIT_WAIT + _EXIT_RETRY)
    for journal in journals:
        journal.warn_lost()
