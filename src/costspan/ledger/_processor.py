"""The ledger span processor: one SQLite row per provider call, written off the request path.

Rows come from costspan's spans and from the GenAI provider-call spans of other instrumentations (the official
openai-v2, OpenLLMetry, the anthropic SDK's own), priced from their ``gen_ai.*`` usage when they carry no cost
(see :mod:`costspan.ledger._rows`). A call traced twice is one row, costspan's when it traced it: a foreign span
whose parent is a costspan span, or that is the parent of one, is skipped (costspan's spans are tracked from
``on_start``); a foreign span with the ``gen_ai.response.id`` of a row already written is skipped too, and a costspan
row replaces a foreign row of the same response id (instrumentations whose spans are siblings, not nested).

``on_end`` (on the request thread) only appends the finished span to a bounded queue; a full queue drops the
span and counts it (``dropped``), never blocking or raising. A daemon writer thread turns spans into rows and
inserts them in batches, one transaction each, in WAL mode. ``force_flush`` and ``shutdown`` write what is
queued, and so does the interpreter's exit.

Failures never reach the application; each kind is logged once as a WARNING on the ``costspan`` logger:

- The ledger cannot be opened (its directory is missing or read-only, the file is not an SQLite database, or a
  newer costspan wrote it): its calls are not recorded (counted in ``unwritten``); opening is retried now and
  then, so a fixed ledger is written again.
- A write fails for a reason that passes (the database is locked by another connection for longer than the busy
  timeout, the disk is full, an I/O error): the rows are kept, within the queue's bound, and written once the
  ledger takes them again. Rows still unwritten at shutdown are counted in ``unwritten`` and logged.
"""

from __future__ import annotations

import atexit
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections import deque
from pathlib import Path

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GEN_AI_USAGE_INPUT_TOKENS
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.trace import SpanKind

from ..pricing import Pricing, default_pricing
from ._paths import create_owner_only
from ._rows import Row, is_costspan, is_foreign_call, row_of
from ._schema import COLUMNS, migrate

__all__ = ["LedgerProcessor"]

_log = logging.getLogger("costspan")

_INSERT = f"INSERT INTO calls ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_DELETE = "DELETE FROM calls WHERE span_id = ?"
_REQUEST_ID = COLUMNS.index("request_id")
_SPAN_ID = COLUMNS.index("span_id")
# Response ids remembered to keep one row per call when two instrumentations trace it side by side.
_RECENT_IDS = 10_000

# SQLite primary result codes of failures that pass: busy, locked, I/O error, disk full.
_TRANSIENT_CODES = frozenset({5, 6, 10, 13})
_TRANSIENT_WORDS = ("locked", "busy", "disk is full", "disk i/o")


class _Flush:
    """A marker in the queue: set once every span queued before it has been written (or could not be)."""

    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False


class LedgerProcessor(SpanProcessor):
    """Writes one ledger row per provider call span to the SQLite file at ``path``.

    ``pricing`` prices the calls of other instrumentations (costspan's own carry their cost); by default
    genai-prices with no overrides. ``create_directory``: create a missing parent directory (owner-only); the
    default path's is, an explicit path's is not (a mistyped directory should be noticed, not silently made).
    ``max_queue`` bounds the spans waiting to be written; ``batch_size`` rows go in one transaction; the writer
    wakes every ``flush_interval`` seconds or as soon as a batch is waiting; ``busy_timeout`` is how long a write
    waits for another connection's lock before it is retried later.
    """

    _queue: deque[ReadableSpan | _Flush]
    _held: list[Row]
    _held_count: int
    _connection: sqlite3.Connection | None
    _retry_at: float
    _reopen_at: float
    _stopping: bool
    _wake: threading.Event
    _thread: threading.Thread

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        pricing: Pricing | None = None,
        create_directory: bool = False,
        max_queue: int = 10_000,
        batch_size: int = 512,
        flush_interval: float = 1.0,
        busy_timeout: float = 2.0,
        reopen_interval: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self.pricing = pricing if pricing is not None else default_pricing()
        self.dropped = 0
        """Spans dropped because the queue was full."""
        self.unwritten = 0
        """Rows the ledger could not take (unusable file, or still failing at shutdown)."""
        self.written = 0
        self._create_directory = create_directory
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._busy_timeout = busy_timeout
        self._reopen_interval = reopen_interval
        self._drop_lock = threading.Lock()
        self._warned: set[str] = set()
        self._incident = False
        self._shutdown = False
        # costspan spans not yet ended, and the foreign spans that are parents of costspan spans (request threads).
        self._active: set[int] = set()
        self._replaced: set[int] = set()
        self._recent_ids: dict[str, tuple[str, bool]] = {}
        self._deletes: list[str] = []
        self._start_writer()
        atexit.register(self.shutdown)
        _register_at_fork(self)

    # ----- request thread -----

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        scope = span.instrumentation_scope
        if scope is None or not is_costspan(scope.name) or span.kind is not SpanKind.CLIENT:
            return  # costspan's calls are CLIENT spans (a costspan.track run is not a call)
        self._active.add(span.context.span_id)
        parent = trace.get_current_span(parent_context)
        # Another instrumentation's span around costspan's, for the same call (set-adds are atomic: no lock).
        if _is_foreign_call_span(parent):
            self._replaced.add(parent.get_span_context().span_id)

    def on_end(self, span: ReadableSpan) -> None:
        scope = span.instrumentation_scope
        if scope is None or self._shutdown:
            return
        if is_costspan(scope.name):
            self._active.discard(_span_id(span))
            if span.kind is not SpanKind.CLIENT or _never_sent(span):
                return
        elif (
            span.kind is not SpanKind.CLIENT
            or not is_foreign_call(span.attributes or {})
            or self._is_traced_by_costspan(span)
        ):
            return
        queue = self._queue
        if len(queue) + self._held_count >= self._max_queue:
            self._drop()
            return
        queue.append(span)
        if len(queue) == self._batch_size:
            self._wake.set()

    def _is_traced_by_costspan(self, span: ReadableSpan) -> bool:
        span_id = _span_id(span)
        if span_id in self._replaced:
            self._replaced.discard(span_id)
            return True
        return span.parent is not None and span.parent.span_id in self._active

    def _drop(self) -> None:
        with self._drop_lock:
            self.dropped += 1

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Write every span ended so far; False if that did not happen within the timeout or failed."""
        if self._shutdown or not self._thread.is_alive():
            return not self._held
        marker = _Flush()
        self._queue.append(marker)
        self._wake.set()
        return marker.done.wait(timeout_millis / 1000) and marker.ok

    def shutdown(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        atexit.unregister(self.shutdown)
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=max(self._busy_timeout * 2, 5.0))
        connection, self._connection = self._connection, None
        if connection is not None and not self._thread.is_alive():
            connection.close()
        lost = len(self._held) + sum(1 for item in self._queue if not isinstance(item, _Flush))
        if lost:
            self.unwritten += lost
            _log.warning("costspan: %d calls could not be written to the ledger at %s and are lost", lost, self.path)
        if self.dropped:
            _log.warning("costspan: %d calls were dropped from the full ledger queue and are not in it", self.dropped)

    # ----- writer thread -----

    def _start_writer(self) -> None:
        self._queue = deque()
        self._held = []
        self._held_count = 0
        self._connection = None
        self._retry_at = 0.0
        self._reopen_at = 0.0
        self._stopping = False
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="costspan-ledger", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            stopping = self._stopping
            try:
                self._drain(force=stopping)
            except Exception as failure:  # never let the writer die: the next wake tries again
                self._warn("writer", "costspan: the ledger writer failed: %r", failure)
            if stopping:
                return

    def _drain(self, force: bool) -> None:
        queue = self._queue
        while True:
            markers: list[_Flush] = []
            taken = 0
            while queue and taken < self._batch_size:
                item = queue.popleft()
                if isinstance(item, _Flush):
                    markers.append(item)
                    continue
                taken += 1
                self._hold(item)
            if self.dropped and not self._incident:
                self._warn(
                    "dropped",
                    "costspan: the ledger queue is full (%d calls waiting): calls are dropped and counted, not written",
                    self._max_queue,
                )
            ok = self._write(force=force or bool(markers))
            for marker in markers:
                marker.ok = ok
                marker.done.set()
            if not queue or not ok:
                return

    def _hold(self, span: ReadableSpan) -> None:
        try:
            row = row_of(span, self.pricing)
        except Exception as failure:
            self._warn("row", "costspan: a span could not be made a ledger row: %r", failure)
            return
        scope = span.instrumentation_scope
        if self._is_second_row(row, scope is not None and is_costspan(scope.name)):
            return
        self._held.append(row)
        self._held_count = len(self._held)

    def _is_second_row(self, row: Row, ours: bool) -> bool:
        """Whether another instrumentation's row repeats a call that has a row; a costspan row takes the place of
        a foreign one. costspan's own rows are never dropped: two costspan spans are two calls, whatever ids a
        caching proxy may replay."""
        request_id = row[_REQUEST_ID]
        if request_id is None:
            return False
        seen = self._recent_ids.get(request_id)
        if seen is not None:
            span_id, seen_ours = seen
            if not ours:
                return True
            if not seen_ours:
                held = [index for index, other in enumerate(self._held) if other[_SPAN_ID] == span_id]
                if held:
                    del self._held[held[0]]
                else:
                    self._deletes.append(span_id)
        elif len(self._recent_ids) >= _RECENT_IDS:
            del self._recent_ids[next(iter(self._recent_ids))]
        self._recent_ids[request_id] = (row[_SPAN_ID], ours)
        return False

    def _write(self, force: bool) -> bool:
        """Insert the held rows; True when none is left held."""
        if not self._held and not self._deletes:
            return True
        now = time.monotonic()
        connection = self._connection or self._open(now, force)
        if connection is None:
            return False
        if not force and now < self._retry_at:
            return False
        try:
            with connection:
                connection.executemany(_INSERT, self._held)
                if self._deletes:
                    connection.executemany(_DELETE, [(span_id,) for span_id in self._deletes])
        except sqlite3.Error as failure:
            return self._write_failed(failure, now)
        self.written += len(self._held) - len(self._deletes)
        self._deletes.clear()
        self._held.clear()
        self._held_count = 0
        self._retry_at = 0.0
        if self._incident:
            self._incident = False
            _log.info("costspan: the ledger at %s takes calls again", self.path)
        return True

    def _write_failed(self, failure: sqlite3.Error, now: float) -> bool:
        if _is_transient(failure):
            self._incident = True
            self._retry_at = now + 1.0
            self._warn(
                f"write:{failure}",
                "costspan: writing the ledger at %s failed (%s); its calls are kept and written when it can take them",
                self.path,
                failure,
            )
        else:
            self._close()
            self._unusable(failure, now)
        return False

    def _open(self, now: float, force: bool) -> sqlite3.Connection | None:
        if not force and now < self._reopen_at:
            self._discard()
            return None
        try:
            self._connection = self._connect()
        except sqlite3.Error as failure:  # locked by another connection while opening: kept, tried again
            self._write_failed(failure, now)
            return None
        except Exception as failure:
            self._unusable(failure, now)
            return None
        return self._connection

    def _connect(self) -> sqlite3.Connection:
        path = self.path
        if not path.parent.is_dir() and not self._create_directory:
            raise FileNotFoundError(f"directory {str(path.parent)!r} does not exist")
        create_owner_only(path, make_parent=self._create_directory)
        connection = sqlite3.connect(path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            before, after = migrate(connection)
        except BaseException:
            connection.close()
            raise
        connection.isolation_level = "DEFERRED"
        if 0 < before < after:
            _log.info("costspan: migrated the ledger at %s from schema version %d to %d", path, before, after)
        return connection

    def _unusable(self, failure: BaseException, now: float) -> None:
        self._reopen_at = now + self._reopen_interval
        self._incident = True
        self._warn(
            f"open:{type(failure).__name__}:{failure}",
            "costspan: cannot use the ledger at %s (%s); calls are not recorded in it",
            self.path,
            _reason(failure),
        )
        self._discard()

    def _discard(self) -> None:
        self.unwritten += len(self._held)
        self._held.clear()
        self._held_count = 0

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _warn(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            _log.warning(message, *args)

    def _after_fork_in_child(self) -> None:
        # The parent's thread is gone and its connection must not be used (nor closed) here: start afresh.
        self._orphans = (self._connection, self._queue)
        self._start_writer()


def _span_id(span: ReadableSpan) -> int:
    context = span.context
    return context.span_id if context is not None else 0


def _never_sent(span: ReadableSpan) -> bool:
    """A call a budget refused before it was sent: no provider call, so no row (the span and the
    costspan.budget.blocked counter record the refusal)."""
    attributes = span.attributes or {}
    return attributes.get(ERROR_TYPE) == "BudgetExceededError" and GEN_AI_USAGE_INPUT_TOKENS not in attributes


def _is_foreign_call_span(span: object) -> bool:
    """Another instrumentation's span of a GenAI provider call (a CLIENT span with a model and a provider)."""
    if not isinstance(span, ReadableSpan) or span.kind is not SpanKind.CLIENT:
        return False
    scope = span.instrumentation_scope
    return scope is not None and not is_costspan(scope.name) and is_foreign_call(span.attributes or {})


def _is_transient(failure: sqlite3.Error) -> bool:
    code = getattr(failure, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _TRANSIENT_CODES
    text = str(failure).lower()
    return any(word in text for word in _TRANSIENT_WORDS)


def _reason(failure: BaseException) -> str:
    if isinstance(failure, sqlite3.DatabaseError) and "not a database" in str(failure):
        return "the file is not an SQLite database"
    if isinstance(failure, OSError) and failure.strerror:
        return f"{failure.strerror}: {failure.filename}" if failure.filename else failure.strerror
    return str(failure)


def _register_at_fork(processor: LedgerProcessor) -> None:
    reference = weakref.ref(processor)

    def restart() -> None:
        alive = reference()
        if alive is not None and not alive._shutdown:
            alive._after_fork_in_child()

    os.register_at_fork(after_in_child=restart)
