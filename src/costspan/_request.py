"""What a whole request or run cost: the sum of the settlements of the provider calls made under it, in this
process, on its span and in code.

A *run* is either the local root span of a request (the server span FastAPI's, Flask's, Django's or any other
instrumentation opened, or any span whose parent is absent or in another process), found by a span processor
as spans start, or a block the application opened with :func:`track`. A call counts in every run it was begun
under: its innermost ``track`` block, the enclosing ones, and the local root. Each settlement a call's end
produces (:mod:`costspan.settle`) is added once to each of them, and the run's span gets the running totals
(``costspan.request.*``, see :data:`REQUEST_ATTRIBUTES`) while it is open, so it carries them when it ends.

No lock on the call path: adding a settlement is one ``list.append`` (atomic), and the totals are recomputed
from an immutable prefix snapshot, so threads and tasks of one request may settle calls at once. The cost is
summed exactly (each float as an integer multiple of 2**-1074), so the total is the correctly rounded sum of the
calls' costs, whatever order they settled in. A call that settles after its run ended (a stream read on after
the response was sent, or after the ``track`` block was left) is not in that run's total: it has its own span,
metrics and ledger row, whose trace id still names the request (``costspan report --by request``).
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable, Sequence
from contextlib import ContextDecorator
from contextvars import Token
from types import TracebackType
from typing import Any, Final, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from . import attributes as attrs
from ._version import __version__
from .context import attribution, decorate
from .settle import Settlement

__all__ = [
    "REQUEST_ATTRIBUTES",
    "TRACK_SCOPE",
    "Requests",
    "Run",
    "Totals",
    "activate",
    "count",
    "current_run",
    "runs_here",
    "track",
]

_F = TypeVar("_F", bound=Callable[..., Any])

TRACK_SCOPE: Final = "costspan.track"
"""The instrumentation scope of :func:`track`'s spans."""

REQUEST_ATTRIBUTES: Final = (
    attrs.REQUEST_COST,
    attrs.REQUEST_CALLS,
    attrs.REQUEST_INPUT_TOKENS,
    attrs.REQUEST_OUTPUT_TOKENS,
    attrs.REQUEST_CACHE_READ_INPUT_TOKENS,
    attrs.REQUEST_CACHE_WRITE_INPUT_TOKENS,
    attrs.REQUEST_REASONING_OUTPUT_TOKENS,
    attrs.REQUEST_ESTIMATED,
    attrs.REQUEST_UNPRICED,
)

# A float is an integer multiple of 2**-1074 (the smallest subnormal): sums of such integers are exact.
_EXACT_SHIFT = 1074
_RUNS = otel_context.create_key("costspan-runs")


def _exact(amount: float) -> int:
    numerator, denominator = amount.as_integer_ratio()
    return numerator << (_EXACT_SHIFT - denominator.bit_length() + 1)


class Totals:
    """One run's totals over its first ``count`` settlements. Immutable: a new one is made as calls settle."""

    __slots__ = (
        "_cost",
        "cache_read_tokens",
        "cache_write_tokens",
        "calls",
        "count",
        "estimated",
        "input_tokens",
        "output_tokens",
        "reasoning_tokens",
        "unpriced",
    )

    def __init__(self) -> None:
        self.count = 0
        self._cost = 0
        self.calls = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cache_read_tokens = 0
        self.cache_write_tokens = 0
        self.reasoning_tokens = 0
        self.estimated = False
        self.unpriced = False

    @property
    def cost(self) -> float:
        """USD, the correctly rounded sum of the priced calls' costs."""
        return self._cost / (1 << _EXACT_SHIFT)

    def plus(self, settlements: Sequence[Settlement]) -> Totals:
        out = Totals()
        for name in Totals.__slots__:
            setattr(out, name, getattr(self, name))
        out.count += len(settlements)
        for settlement in settlements:
            usage = settlement.usage
            if usage is None:  # not billed: the provider never answered (or a budget refused the call)
                continue
            out.calls += 1
            out.input_tokens += usage.input_tokens
            out.output_tokens += usage.output_tokens
            out.cache_read_tokens += usage.cache_read_tokens
            out.cache_write_tokens += usage.cache_write_tokens
            out.reasoning_tokens += usage.reasoning_tokens
            out.estimated = out.estimated or usage.estimated
            if settlement.cost is None:
                out.unpriced = True
            else:
                out._cost += _exact(settlement.cost.amount)
        return out

    def attributes(self) -> dict[str, Any]:
        """The ``costspan.request.*`` span attributes: nothing zero beyond cost, calls and tokens in and out."""
        out: dict[str, Any] = {
            attrs.REQUEST_COST: self.cost,
            attrs.REQUEST_CALLS: self.calls,
            attrs.REQUEST_INPUT_TOKENS: self.input_tokens,
            attrs.REQUEST_OUTPUT_TOKENS: self.output_tokens,
        }
        if self.cache_read_tokens:
            out[attrs.REQUEST_CACHE_READ_INPUT_TOKENS] = self.cache_read_tokens
        if self.cache_write_tokens:
            out[attrs.REQUEST_CACHE_WRITE_INPUT_TOKENS] = self.cache_write_tokens
        if self.reasoning_tokens:
            out[attrs.REQUEST_REASONING_OUTPUT_TOKENS] = self.reasoning_tokens
        if self.estimated:
            out[attrs.REQUEST_ESTIMATED] = True
        if self.unpriced:
            out[attrs.REQUEST_UNPRICED] = True
        return out


_NONE = Totals()


class Run:
    """The running totals of one request or :func:`track` block: what its calls cost so far.

    ``cost`` is in USD, the sum over the priced calls (``unpriced`` is True when a billed call had no known
    price: then the cost is a lower bound, never a silent $0 for that call); ``calls`` counts the billed calls;
    ``estimated`` is True when any count was estimated. Reading them is safe from any thread at any time.
    """

    __slots__ = ("__weakref__", "_id", "_parts", "_snapshot", "closed", "name", "span")

    def __init__(self, name: str, span: trace.Span | None, run_id: str | None = None) -> None:
        self.name = name
        self._id = run_id  # made when first asked for: most requests never are
        self.span = span  # dropped when the run closes: a closed run writes nothing more
        self.closed = False
        self._parts: list[Settlement] = []
        self._snapshot = _NONE

    def __repr__(self) -> str:
        totals = self.totals()
        return f"<Run {self.name!r} {totals.calls} calls ${totals.cost:.6f}>"

    @property
    def id(self) -> str:
        """The run's id (``costspan.run.id`` on its calls): the one given to :func:`track`, or a random one."""
        if self._id is None:
            self._id = uuid.uuid4().hex
        return self._id

    @id.setter
    def id(self, run_id: str) -> None:
        self._id = run_id

    @property
    def cost(self) -> float:
        return self.totals().cost

    @property
    def calls(self) -> int:
        return self.totals().calls

    @property
    def input_tokens(self) -> int:
        return self.totals().input_tokens

    @property
    def output_tokens(self) -> int:
        return self.totals().output_tokens

    @property
    def estimated(self) -> bool:
        return self.totals().estimated

    @property
    def unpriced(self) -> bool:
        return self.totals().unpriced

    def totals(self) -> Totals:
        """The totals of every settlement added so far."""
        snapshot, parts = self._snapshot, self._parts
        count = len(parts)
        if count > snapshot.count:
            # Another thread may store an older snapshot meanwhile: a cache miss later, never a wrong total.
            snapshot = self._snapshot = snapshot.plus(parts[snapshot.count : count])
        return snapshot

    def add(self, settlement: Settlement) -> None:
        """Count a call's settlement (once per call), and put the new totals on the run's span."""
        if self.closed:
            return
        self._parts.append(settlement)
        self._publish()

    def _publish(self) -> None:
        # Concurrent settlements may write in any order: whoever wrote totals older than the list rewrites, so
        # the last write is always the whole sum.
        while (span := self.span) is not None and span.is_recording():
            totals = self.totals()
            if totals.calls:
                span.set_attributes(totals.attributes())
            if len(self._parts) == totals.count:
                return

    def close(self) -> None:
        """Stop counting: the span ended (or is about to, with these totals)."""
        self._publish()
        self.closed = True
        self.span = None


class Requests(SpanProcessor):
    """Finds the run every span belongs to as spans start: each local root span (no parent, or a parent in another
    process) opens a run, and each span under it belongs to it. Added to the TracerProvider by ``instrument()``."""

    def __init__(self) -> None:
        self.enabled = True
        self._of: weakref.WeakKeyDictionary[trace.Span, Run] = weakref.WeakKeyDictionary()
        self._open: dict[int, Run] = {}  # local roots not ended yet, by span id

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if not self.enabled or (span.kind is SpanKind.CLIENT and _is_call_scope(span)):
            return  # a provider call's span: nothing starts under it that could count in a run
        parent = trace.get_current_span(parent_context)
        parent_span_context = parent.get_span_context()
        if parent_span_context.is_valid and not parent_span_context.is_remote:
            run = self._of.get(parent)
            if run is not None:
                self._of[span] = run
            return
        run = Run(span.name, span)
        self._of[span] = run
        self._open[span.context.span_id] = run

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is not None and (run := self._open.pop(context.span_id, None)) is not None:
            run.closed = True
            run.span = None

    def run_of(self, span: trace.Span) -> Run | None:
        """The local root's run that ``span`` belongs to, if one is open."""
        run = self._of.get(span) if self.enabled else None
        return run if run is not None and not run.closed else None

    def shutdown(self) -> None:
        self.enabled = False

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _is_call_scope(span: Span) -> bool:
    scope = span.instrumentation_scope
    return scope is not None and scope.name.startswith("costspan") and scope.name != TRACK_SCOPE


class _Active:
    """The instrumentation's request processor and tracer, while costspan is instrumented."""

    requests: Requests | None = None
    tracer_provider: trace.TracerProvider | None = None


_added: weakref.WeakKeyDictionary[TracerProvider, Requests] = weakref.WeakKeyDictionary()


def activate(tracer_provider: object) -> None:
    """Called by ``instrument()``: count requests in ``tracer_provider`` (the SDK's; another has no spans to
    find them by), and open :func:`track` spans there. Instrumenting again reuses the processor added before."""
    requests = None
    if isinstance(tracer_provider, TracerProvider):
        requests = _added.get(tracer_provider)
        if requests is None:
            requests = _added[tracer_provider] = Requests()
            tracer_provider.add_span_processor(requests)
        requests.enabled = True
    _Active.requests = requests
    _Active.tracer_provider = tracer_provider if isinstance(tracer_provider, trace.TracerProvider) else None


def deactivate() -> None:
    """Called by ``uninstrument()``: the processor stays in its provider (there is no removing one), inert."""
    if _Active.requests is not None:
        _Active.requests.enabled = False
    _Active.requests = _Active.tracer_provider = None


def count(runs: tuple[Run, ...], settlement: Settlement) -> None:
    """A consumer of the settlement: add the call to each run it was begun under."""
    for run in runs:
        run.add(settlement)


def runs_here() -> tuple[Run, ...]:
    """The runs a call begun here counts in, outermost first: the request (the local root span's run), then the
    enclosing :func:`track` blocks'. A track block that is itself the local root is the request."""
    tracked = _tracked()
    requests = _Active.requests
    root = requests.run_of(trace.get_current_span()) if requests is not None else None
    if root is None or (tracked and tracked[0] is root):
        return tracked
    return (root, *tracked)


def current_run() -> Run | None:
    """The innermost run the code is in: its :func:`track` block, else its request (the local root span, when
    costspan is instrumented with the OpenTelemetry SDK's TracerProvider); None outside any."""
    runs = runs_here()
    return runs[-1] if runs else None


def _tracked() -> tuple[Run, ...]:
    runs = otel_context.get_value(_RUNS)
    return runs if isinstance(runs, tuple) else ()


def _tracer() -> Tracer:
    return trace.get_tracer(TRACK_SCOPE, __version__, _Active.tracer_provider)


class track(ContextDecorator):
    """Count what the provider calls inside cost, as one run: ``with costspan.track("agent-run") as run: ...``.

    Opens a span (``name``; a decorated function's qualified name by default) that carries the run's totals when
    it ends (``costspan.request.cost``, ``.calls``, the token totals, ``.estimated``), and gives the running
    totals to the code: ``run.cost``, ``run.calls``, ``run.input_tokens``, ``run.output_tokens``. Every call
    inside is attributed ``costspan.run.id`` = ``run.id`` (``run_id``, or a random one), so a
    ``Budget(limit, scope="costspan.run.id")`` is a budget per run, refusing the first call that would exceed it.
    Nests (a call counts in every enclosing run and in the request); a context manager and a decorator, on sync
    and async functions.
    """

    def __init__(self, name: str | None = None, *, run_id: str | None = None) -> None:
        self._name = name
        self._run_id = run_id
        self._state: tuple[trace.Span, Token[Context], attribution] | None = None
        self.run: Run | None = None

    def _recreate_cm(self) -> track:
        # A decorated function may run concurrently (threads, tasks): each run is a run of its own.
        return track(self._name, run_id=self._run_id)

    def __enter__(self) -> Run:
        name = self._name or "costspan.track"
        span = _tracer().start_span(name, kind=SpanKind.INTERNAL)
        requests = _Active.requests
        run = requests.run_of(span) if requests is not None else None
        if run is None or run.span is not span:  # the span is not the local root itself
            run = Run(name, span, self._run_id)
        elif self._run_id is not None:
            run.id = self._run_id
        span.set_attribute(attrs.RUN_ID, run.id)
        context = otel_context.set_value(_RUNS, (*_tracked(), run), trace.set_span_in_context(span))
        token = otel_context.attach(context)
        scoped = attribution(**{attrs.RUN_ID: run.id})  # type: ignore[arg-type]  # propagate is the only bool
        scoped.__enter__()
        self._state, self.run = (span, token, scoped), run
        return run

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        state, run = self._state, self.run
        if state is None or run is None:
            return
        span, token, scoped = state
        self._state = None
        scoped.__exit__(exc_type, exc, tb)
        otel_context.detach(token)
        run.close()
        if isinstance(exc, Exception):  # as the call spans say it: the type, never the message
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.set_attribute(error_attributes.ERROR_TYPE, type(exc).__qualname__)
        span.end()

    def __call__(self, func: _F) -> _F:
        return decorate(self if self._name is not None else track(func.__qualname__, run_id=self._run_id), func)
