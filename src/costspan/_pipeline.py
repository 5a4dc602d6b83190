"""The life of one call, from patched method to its consumers: begin (the span), end (settle once, then report).

The traced-call factory (:mod:`costspan._wrap`) begins a call here and the call ends itself here through
:class:`~costspan._call.Ender`; what a call's end produces, its :class:`~costspan.settle.Settlement`, goes to the
runs it was made in (:mod:`costspan._request`), the span and metrics (and, through the span, to the ledger).
costspan's own failures are logged once per step and never reach the user's call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ._call import Call
from ._endpoint import Endpoint
from ._guard import Guard
from ._request import count, runs_here
from .attributes import REQUEST_NAME
from .budgets import BudgetError
from .config import Options
from .pricing import Pricing
from .settle import Settlement, settle, unsettled
from .telemetry import Telemetry

__all__ = ["Pipeline"]

_log = logging.getLogger("costspan")
_LOGGED_STEPS = 100
"""Failing steps logged at WARNING, once each; past them, failures are logged at DEBUG."""


class Pipeline:
    """One instrumentation's shared state: options, pricing, telemetry, budgets, and the log of its own failures."""

    def __init__(self, options: Options, pricing: Pricing, telemetry: Telemetry, guard: Guard | None = None) -> None:
        self.options = options
        self.pricing = pricing
        self.telemetry = telemetry
        self.guard = guard
        self._failed_once: set[str] = set()
        # Budget settlements of async calls whose end could not be awaited (a stream closed or collected): the
        # event loop runs them; this keeps them from being collected first.
        self._settling: set[asyncio.Task[None]] = set()

    def begin(self, endpoint: Endpoint, instance: Any, kwargs: dict[str, Any]) -> tuple[Call, dict[str, Any]] | None:
        """A new call with its span started, and the keyword arguments to send; None if costspan failed."""
        try:
            call = Call(self, self.options, endpoint.operation, endpoint.is_async)
            call.read_chunk = endpoint.read_chunk
            send_kwargs = endpoint.start(call, instance, kwargs)
            if runs := runs_here():
                call.runs = runs
                call.attributes[REQUEST_NAME] = runs[0].name
            self.telemetry.start(call)
        except Exception as failure:
            self.log_failure(f"starting {endpoint.name}", failure)
            return None
        return call, send_kwargs

    def reserve(self, call: Call) -> None:
        """Hold the call's worst case in its budgets before it is sent. A budget's refusal ends the call and
        reaches the user; costspan's own failure lets the call go on unchecked."""
        guard = self.guard
        if guard is None:
            return
        try:
            guard.reserve(call)
        except BudgetError as refused:
            call.finish(refused)
            raise
        except Exception as failure:
            self._unchecked(call, guard, failure)
        except BaseException as interrupted:  # the call never went out
            call.finish(interrupted)
            raise
        if call.hold is not None:
            call.watch = guard

    async def areserve(self, call: Call) -> None:
        guard = self.guard
        if guard is None:
            return
        try:
            await guard.areserve(call)
        except BudgetError as refused:
            await call.afinish(refused)
            raise
        except Exception as failure:
            self._unchecked(call, guard, failure)
        except BaseException as cancelled:  # the call never went out; what was held was given back
            call.finish(cancelled)
            raise
        if call.hold is not None:
            call.watch = guard

    def _unchecked(self, call: Call, guard: Guard, failure: Exception) -> None:
        """costspan failed to check the call against its budgets: refused where a budget says
        ``on_store_error="block"`` (the call ends, unsent), else let through, counted unchecked, logged once."""
        refused = guard.failed(call, failure)
        if refused is not None:
            call.finish(refused)
            raise refused from failure
        self.log_failure("reserving a call's budget", failure)

    def end(self, call: Call, error: BaseException | None, completed: bool | None) -> None:
        end_ns = time.perf_counter_ns()
        settlement = self._settle(call, error, completed)
        if call.hold is not None and self.guard is not None:
            if call.is_async and _schedule(self._settling, self._aend(call, settlement, error, completed, end_ns)):
                return
            self._budget(self.guard.settle, call, settlement)
        self._report(call, settlement, error, completed, end_ns)

    async def aend(self, call: Call, error: BaseException | None, completed: bool | None) -> None:
        work = self._aend(call, self._settle(call, error, completed), error, completed, time.perf_counter_ns())
        if call.hold is None or self.guard is None:
            await work  # nothing in it awaits: no cancellation can cut it short
            return
        # Settling a budget awaits its store, and the money is spent whatever happens to the caller: a caller
        # cancelled meanwhile (a client gone; anyio, as under Starlette, cancels every await in a cancelled scope
        # again until the scope exits) leaves the settlement and the span's end to go on in a task of their own.
        task = _start(self._settling, work)
        await (work if task is None else asyncio.shield(task))

    async def _aend(
        self, call: Call, settlement: Settlement, error: BaseException | None, completed: bool | None, end_ns: int
    ) -> None:
        try:
            if call.hold is not None and self.guard is not None:
                await self.guard.asettle(call, settlement)
        except Exception as failure:
            self.log_failure("settling a call's budget", failure)
        finally:  # cancelled while settling (an event loop shutting down): the span still ends
            self._report(call, settlement, error, completed, end_ns)

    def _budget(self, settle_budget: Any, call: Call, settlement: Settlement) -> None:
        try:
            settle_budget(call, settlement)
        except Exception as failure:
            self.log_failure("settling a call's budget", failure)

    def _settle(self, call: Call, error: BaseException | None, completed: bool | None) -> Settlement:
        try:
            if call.end_stream is not None:
                call.end_stream(call)
        except Exception as failure:  # what the stream left for its end is lost, not the call's record
            self.log_failure("ending a stream", failure)
        try:
            return settle(call, error, completed, self.pricing)
        except Exception as failure:
            self.log_failure("settling a call", failure)
            return unsettled(call, error, completed)

    def _report(
        self, call: Call, settlement: Settlement, error: BaseException | None, completed: bool | None, end_ns: int
    ) -> None:
        if call.runs:
            try:
                count(call.runs, settlement)
            except Exception as failure:
                self.log_failure("counting a call in its request", failure)
        try:
            self.telemetry.report(call, settlement, error, completed, end_ns)
        except Exception as failure:
            self.log_failure("reporting a call", failure)

    def log_failure(self, step: str, failure: BaseException) -> None:
        """Log costspan's own failure once per step; the user's call goes on regardless."""
        if step in self._failed_once or len(self._failed_once) > _LOGGED_STEPS:
            _log.debug("costspan: %s failed: %r", step, failure)
        else:
            self._failed_once.add(step)
            # Steps name models, which a server may vary without end: the last one logged says so.
            last = " (further kinds of failure are logged at DEBUG)" if len(self._failed_once) > _LOGGED_STEPS else ""
            _log.warning("costspan: %s failed; the call proceeds without it%s", step, last, exc_info=failure)


def _schedule(tasks: set[asyncio.Task[None]], work: Any) -> bool:
    """Run ``work`` (a coroutine) on this thread's event loop, if one is running; False (and ``work`` closed)
    otherwise."""
    if _start(tasks, work) is None:
        work.close()
        return False
    return True


def _start(tasks: set[asyncio.Task[None]], work: Any) -> asyncio.Task[None] | None:
    """``work`` (a coroutine) in a task of its own on this thread's asyncio event loop, kept in ``tasks`` until it
    is done; None when no asyncio loop runs here."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    task = loop.create_task(work)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return task
