"""The ledger span processor: one row per provider call, written off the request path to an SQLite file or a
PostgreSQL database (:mod:`._engine`).

Rows come from costspan's spans and from the GenAI provider-call spans of other instrumentations (the official
openai-v2, OpenLLMetry, the anthropic SDK's own), priced from their ``gen_ai.*`` usage when they carry no cost
(see :mod:`costspan.ledger._rows`). A call traced twice is one row, costspan's when it traced it: a foreign span
whose parent is a costspan span, or that is the parent of one, is skipped (costspan's spans are tracked from
``on_start``); a foreign span with the ``gen_ai.response.id`` of a row already written is skipped too, and a costspan
row replaces a foreign row of the same response id (instrumentations whose spans are siblings, not nested). A call
never sent (a budget refused it, or its store was down with ``on_store_error="block"``) has no row.

``on_end`` (on the request thread) only appends the finished span to a bounded queue; when the spans waiting
(queued, or held for a write that failed) reach ``max_queue``, the span is dropped and counted (``dropped``), never
blocking or raising. A daemon writer thread wakes every ``flush_interval`` seconds (or as soon as a batch is
waiting), turns spans into rows and writes them, ``batch_size`` rows per transaction.

What can be lost, and when (docs/deploy.md gives the same bound):

- The ledger cannot be opened (a read-only remount, a missing directory, the database down), or a write fails
  (locked, disk full, I/O error, connection lost): nothing is lost while fewer than ``max_queue`` calls wait. The
  rows are kept and tried again after 1 s, then 2 s, 4 s, up to ``reopen_interval``; a batch that does not fit (disk
  full) is retried in halves down to one row, so whatever fits is written. Past ``max_queue`` waiting calls, new
  calls are dropped and counted. Each kind of failure is logged once as a WARNING on the ``costspan`` logger, and
  the recovery once at INFO.
- ``force_flush``, ``shutdown``, the interpreter's normal exit and SIGTERM (when the application left SIGTERM's
  default action in place) write what is queued; rows still unwritten then are counted in ``unwritten`` and
  logged.
- SIGKILL (or a crash) loses the rows not yet written: those of the calls ended in the last ``flush_interval``
  (one second by default), plus, during an outage, those waiting for the ledger.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
import weakref
from collections import deque
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GEN_AI_USAGE_INPUT_TOKENS
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.trace import SpanKind

from ..budgets import BudgetCheckError, BudgetExceededError, BudgetStoreError
from ..pricing import Pricing, default_pricing
from ._engine import Writer, engine_for
from ._paths import Target, is_url
from ._rows import Row, is_costspan, is_foreign_call, row_of
from ._schema import COLUMNS

__all__ = ["LedgerProcessor"]

_log = logging.getLogger("costspan")

_REQUEST_ID = COLUMNS.index("request_id")
_SPAN_ID = COLUMNS.index("span_id")
# Response ids remembered to keep one row per call when two instrumentations trace it side by side.
_RECENT_IDS = 10_000
# The error types of a call a budget refused before it was sent, and the span event the refusal adds.
_REFUSALS = frozenset(kind.__qualname__ for kind in (BudgetExceededError, BudgetCheckError, BudgetStoreError))
_REFUSED_EVENT = "costspan.budget.exceeded"


class _Flush:
    """A marker in the queue: set once every span queued before it has been written (or could not be)."""

    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False


class LedgerProcessor(SpanProcessor):
    """Writes one ledger row per provider call span to the ledger at ``path``: an SQLite file, or a
    ``postgresql://`` URL (with ``costspan[postgresql]`` installed).

    ``pricing`` prices the calls of other instrumentations (costspan's own carry their cost); by default
    genai-prices with no overrides. ``create_directory``: create a missing parent directory (owner-only); the
    default path's is, an explicit path's is not (a mistyped directory should be noticed, not silently made).
    ``max_queue`` bounds the calls waiting to be written; ``batch_size`` rows go in one transaction; the writer
    wakes every ``flush_interval`` seconds or as soon as a batch is waiting; ``busy_timeout`` is how long an SQLite
    write waits for another connection's lock; a failed open or write is tried again after 1 s, doubling up to
    ``reopen_interval``.
    """

    _queue: deque[ReadableSpan | _Flush]
    _held: list[Row]
    _held_count: int
    _writer: Writer | None
    _retry_at: float
    _failures: int
    _fit: int
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
        reopen_interval: float = 5.0,
    ) -> None:
        self.path: Target = str(path).strip() if is_url(path) else Path(path)
        self.engine = engine_for(self.path, create_directory=create_directory, busy_timeout=busy_timeout)
        self.pricing = pricing if pricing is not None else default_pricing()
        self.dropped = 0
        """Calls dropped because ``max_queue`` calls were waiting."""
        self.unwritten = 0
        """Rows still unwritten at shutdown (the ledger unusable, or failing)."""
        self.written = 0
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._join_timeout = max(busy_timeout * 2, 5.0)
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
        _flush_on_sigterm(self)

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
        self._thread.join(timeout=self._join_timeout)
        writer, self._writer = self._writer, None
        if writer is not None and not self._thread.is_alive():
            writer.close()
        lost = len(self._held) + sum(1 for item in self._queue if not isinstance(item, _Flush))
        if lost:
            self.unwritten += lost
            _log.warning(
                "costspan: %d calls could not be written to the ledger at %s and are lost", lost, self.engine.where
            )
        if self.dropped:
            _log.warning("costspan: %d calls were dropped from the full ledger queue and are not in it", self.dropped)

    # ----- writer thread -----

    def _start_writer(self) -> None:
        self._queue = deque()
        self._held = []
        self._held_count = 0
        self._writer = None
        self._retry_at = 0.0
        self._failures = 0
        self._fit = self._batch_size
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
        """Write the held rows, a batch per transaction; True when none is left held."""
        if not self._held and not self._deletes:
            return True
        now = time.monotonic()
        if not force and now < self._retry_at:
            return False
        writer = self._writer or self._open(now)
        if writer is None:
            return False
        while self._held or self._deletes:
            batch = self._held[: self._fit]
            try:
                writer.write(batch, self._deletes)
            except Exception as failure:
                trouble = self.engine.trouble(failure)
                if (trouble.smaller or trouble.rejected) and len(batch) > 1:
                    self._fit = len(batch) // 2  # it may not fit (disk full): whatever does is written
                    continue
                if not trouble.rejected:
                    return self._failed("write", failure, now)
                self._reject(failure)
                continue
            del self._held[: len(batch)]
            self._held_count = len(self._held)
            self.written += len(batch) - len(self._deletes)
            self._deletes.clear()
            self._fit = min(self._fit * 2, self._batch_size)
        self._failures = 0
        self._retry_at = 0.0
        if self._incident:
            self._incident = False
            _log.info("costspan: the ledger at %s takes calls again", self.engine.where)
        return True

    def _reject(self, failure: Exception) -> None:
        """The database refuses the first held row's data: that row alone is given up, so it blocks no other."""
        del self._held[:1]
        self._held_count = len(self._held)
        self.unwritten += 1
        self._deletes.clear()
        self._warn(
            f"reject:{type(failure).__name__}",
            "costspan: the ledger at %s refused a call's row (%s): that call is not recorded",
            self.engine.where,
            self.engine.reason(failure),
        )

    def _open(self, now: float) -> Writer | None:
        try:
            self._writer = self.engine.open_writer()
        except Exception as failure:
            self._failed("open", failure, now)
            return None
        return self._writer

    def _failed(self, step: str, failure: Exception, now: float) -> bool:
        """Keep the rows and try again later: after 1 s, 2 s, 4 s, ... up to ``reopen_interval``."""
        trouble = self.engine.trouble(failure)
        if trouble.reconnect:
            self._close()
        self._failures += 1
        self._retry_at = now + min(2.0 ** (self._failures - 1), self._reopen_interval)
        self._incident = True
        reason = self.engine.reason(failure)
        self._warn(
            f"{step}:{type(failure).__name__}:{reason}",
            "costspan: %s the ledger at %s failed (%s); its calls are kept, up to %d, and written when it takes them",
            "opening" if step == "open" else "writing",
            self.engine.where,
            reason,
            self._max_queue,
        )
        return False

    def _close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception as failure:  # a connection already gone: nothing to give back
                _log.debug("costspan: closing the ledger's connection failed: %r", failure)

    def _warn(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            _log.warning(message, *args)

    def _after_fork_in_child(self) -> None:
        # The parent's thread is gone and its connection must not be used (nor closed) here: start afresh.
        self._orphans = (self._writer, self._queue)
        self._start_writer()


def _span_id(span: ReadableSpan) -> int:
    context = span.context
    return context.span_id if context is not None else 0


def _never_sent(span: ReadableSpan) -> bool:
    """A call refused before it was sent (over its budget, or its budget's store down with ``block``): no provider
    call, so no row (the span and the costspan.budget.blocked counter record the refusal)."""
    attributes = span.attributes or {}
    if GEN_AI_USAGE_INPUT_TOKENS in attributes:
        return False
    return attributes.get(ERROR_TYPE) in _REFUSALS or any(event.name == _REFUSED_EVENT for event in span.events)


def _is_foreign_call_span(span: object) -> bool:
    """Another instrumentation's span of a GenAI provider call (a CLIENT span with a model and a provider)."""
    if not isinstance(span, ReadableSpan) or span.kind is not SpanKind.CLIENT:
        return False
    scope = span.instrumentation_scope
    return scope is not None and not is_costspan(scope.name) and is_foreign_call(span.attributes or {})


def _register_at_fork(processor: LedgerProcessor) -> None:
    reference = weakref.ref(processor)

    def restart() -> None:
        alive = reference()
        if alive is not None and not alive._shutdown:
            alive._after_fork_in_child()

    os.register_at_fork(after_in_child=restart)


_sigterm_processors: weakref.WeakSet[LedgerProcessor] = weakref.WeakSet()


def _flush_on_sigterm(processor: LedgerProcessor) -> None:
    """Write the ledger when the process is sent SIGTERM (as Kubernetes, systemd and docker stop it): the default
    action ends the process at once, without the interpreter's exit (so without atexit). Only where SIGTERM still
    has its default action and this is the main thread: an application's own handler is left alone (it exits
    through the interpreter, whose exit writes the ledger)."""
    _sigterm_processors.add(processor)
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: Any) -> None:
    for processor in list(_sigterm_processors):
        processor.shutdown()
    # Then end as SIGTERM's default action would: the same exit status for whatever waits on the process.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
