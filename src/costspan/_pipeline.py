"""The life of one call, from patched method to its consumers: begin (the span), end (settle once, then report).

The traced-call factory (:mod:`costspan._wrap`) begins a call here and the call ends itself here through
:class:`~costspan._call.Ender`; what a call's end produces, its :class:`~costspan.settle.Settlement`, goes to the
span and metrics (and, through the span, to the ledger). costspan's own failures are logged once per step and
never reach the user's call.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ._call import Call
from ._endpoint import Endpoint
from .config import Options
from .pricing import Pricing
from .settle import Settlement, settle, unsettled
from .telemetry import Telemetry

__all__ = ["Pipeline"]

_log = logging.getLogger("costspan")


class Pipeline:
    """One instrumentation's shared state: options, pricing, telemetry, and the log of its own failures."""

    def __init__(self, options: Options, pricing: Pricing, telemetry: Telemetry) -> None:
        self.options = options
        self.pricing = pricing
        self.telemetry = telemetry
        self._failed_once: set[str] = set()

    def begin(self, endpoint: Endpoint, instance: Any, kwargs: dict[str, Any]) -> tuple[Call, dict[str, Any]] | None:
        """A new call with its span started, and the keyword arguments to send; None if costspan failed."""
        try:
            call = Call(self, self.options, endpoint.operation, endpoint.is_async)
            call.read_chunk = endpoint.read_chunk
            send_kwargs = endpoint.start(call, instance, kwargs)
            self.telemetry.start(call)
        except Exception as failure:
            self.log_failure(f"starting {endpoint.name}", failure)
            return None
        return call, send_kwargs

    def end(self, call: Call, error: BaseException | None, completed: bool | None) -> None:
        end_ns = time.perf_counter_ns()
        self._report(call, self._settle(call, error), error, completed, end_ns)

    async def aend(self, call: Call, error: BaseException | None, completed: bool | None) -> None:
        self.end(call, error, completed)

    def _settle(self, call: Call, error: BaseException | None) -> Settlement:
        try:
            if call.end_stream is not None:
                call.end_stream(call)
        except Exception as failure:  # what the stream left for its end is lost, not the call's record
            self.log_failure("ending a stream", failure)
        try:
            return settle(call, error, self.pricing)
        except Exception as failure:
            self.log_failure("settling a call", failure)
            return unsettled(call, error)

    def _report(
        self, call: Call, settlement: Settlement, error: BaseException | None, completed: bool | None, end_ns: int
    ) -> None:
        try:
            self.telemetry.report(call, settlement, error, completed, end_ns)
        except Exception as failure:
            self.log_failure("reporting a call", failure)

    def log_failure(self, step: str, failure: BaseException) -> None:
        """Log costspan's own failure once per step; the user's call goes on regardless."""
        if step not in self._failed_once:
            self._failed_once.add(step)
            _log.warning("costspan: %s failed; the call proceeds without it", step, exc_info=failure)
        else:
            _log.debug("costspan: %s failed again: %r", step, failure)
