"""What is measured: the same SDK call uninstrumented (the baseline), inside the bare OpenTelemetry floor, and
instrumented by costspan or by a peer instrumentation.

Each instrumentation is instrumented once, with the shared tracer and meter providers; the wrapper its
``instrument()`` put on ``Completions.create`` is kept, and it is uninstrumented again. The harness then installs
that exact wrapper around each of the instrumentation's batches and puts the original back afterwards, which is
what ``instrument()``/``uninstrument()`` do to the measured method, without their cost or their first-call cache
misses in every batch. Peers run in their default configuration except that message content capture is off
everywhere (costspan never records content unless asked), so every variant emits metadata only.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import importlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import openai
import wrapt
from _floor import Floor
from _otel import Otel, Switch
from _wire import REQUEST, STREAM_CHUNKS, STREAM_REQUEST, STREAM_USAGE_REQUEST
from openai.resources.chat.completions.completions import Completions
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from costspan import Budget, CostspanInstrumentor
from costspan._request import activate, deactivate
from costspan.ledger import LedgerProcessor

__all__ = [
    "BASELINE",
    "COSTSPAN",
    "COSTSPAN_IN_REQUEST",
    "COSTSPAN_LEDGER_BUDGET",
    "COSTSPAN_MEMORY_BUDGET",
    "COSTSPAN_REDIS_BUDGET",
    "FLOOR",
    "FLOOR_METRICS",
    "FLOOR_SPAN",
    "PEERS",
    "USAGE_BASELINE",
    "Patch",
    "Suite",
    "Variant",
    "instrumentations",
    "suites",
]

BASELINE = "baseline"
USAGE_BASELINE = "baseline + usage chunk"
FLOOR = "floor (bare OTel SDK)"
# The floor's two parts, each alone (the isolated suite only): what its overhead is made of.
FLOOR_SPAN = "floor: the span alone"
FLOOR_METRICS = "floor: the metric records alone"
COSTSPAN = "costspan"
COSTSPAN_IN_REQUEST = "costspan, in a request"
COSTSPAN_MEMORY_BUDGET = "costspan + budget (memory)"
COSTSPAN_REDIS_BUDGET = "costspan + budget (Redis)"
COSTSPAN_LEDGER_BUDGET = "costspan + ledger + budget"
# (name shown, pip distribution, module with an ``OpenAIInstrumentor``)
PEERS = (
    ("openai-v2 (contrib)", "opentelemetry-instrumentation-openai-v2", "opentelemetry.instrumentation.openai_v2"),
    ("openllmetry", "opentelemetry-instrumentation-openai", "opentelemetry.instrumentation.openai"),
)
ORIGINAL_CREATE = vars(Completions)["create"]
# Chunks of the isolated stream: enough that the call's own work, spread over them, is a few hundredths of a
# microsecond per chunk (and the report subtracts it).
ISOLATED_CHUNKS = 2000
# Its request bounds the output above the stream's ~2,600 tokens, as a caller expecting that much would: a watch
# then looks ahead by the reservation's unused part, not by the steps of a server that runs past max_tokens.
_ISOLATED_REQUEST = {**STREAM_REQUEST, "max_completion_tokens": 4096}


def _ledger(otel: Otel) -> Switch:
    """A SQLite ledger in a directory of its own, removed at exit, switched on with its variant."""
    directory = tempfile.mkdtemp(prefix="costspan-benchmark-")
    processor = LedgerProcessor(os.path.join(directory, "ledger.db"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    atexit.register(processor.shutdown)  # runs first: the writer stops before its directory goes
    switched = Switch(processor)
    otel.tracer_provider.add_span_processor(switched)
    return switched


@dataclass(frozen=True)
class Patch:
    """What ``Completions.create`` is while a variant runs: an instrumentation's wrapper, or the original."""

    create: Any = ORIGINAL_CREATE
    requests: TracerProvider | None = None
    """costspan's: the provider whose spans its request processor follows while the patch is on, as it does from
    ``instrument()`` to ``uninstrument()`` (off, the processor returns at once from every span's start)."""
    in_request: bool = False
    """Make the batch's calls in one request: under a local root span, as a server instrumentation opens it
    (started and ended outside the timed batch), which then counts every call's cost."""
    ledger: Switch | None = None
    """The variant's ledger, on the shared provider: it takes spans only while this patch is on."""
    _open: list[Any] = dataclasses.field(default_factory=list, compare=False)

    def on(self) -> None:
        Completions.create = self.create  # type: ignore[method-assign]
        if self.ledger is not None:
            self.ledger.on = True
        if self.requests is None:
            return
        activate(self.requests)
        if self.in_request:
            server = self.requests.get_tracer("benchmark.server").start_span("POST /answer", kind=SpanKind.SERVER)
            self._open.append((server, otel_context.attach(trace.set_span_in_context(server))))

    def off(self) -> None:
        Completions.create = ORIGINAL_CREATE  # type: ignore[method-assign]
        if self.ledger is not None:
            self.ledger.on = False
        while self._open:
            server, token = self._open.pop()
            otel_context.detach(token)
            server.end()
        if self.requests is not None:
            deactivate()

    @property
    def spans(self) -> int:
        """Spans a call ends, its request's counted in."""
        return 1 + self.in_request


@dataclass(frozen=True)
class Variant:
    name: str
    run: Callable[[], int]
    """One complete call; returns the number of chunks the caller saw."""
    chunks_seen: int
    spans_per_call: int = 1
    patch: Patch = Patch()


@dataclass(frozen=True)
class Suite:
    key: str
    title: str
    unit: str
    calls_per_batch: int
    units_per_call: int
    variants: tuple[Variant, ...]
    relative: bool = True
    """Whether an overhead as a percentage of the baseline means anything (not against a stub)."""
    against_floor: bool = True
    """Whether an overhead as a multiple of the floor's means anything (not per chunk, where the floor's is its
    per-stream work spread over the chunks, a fraction of a microsecond lost in the noise)."""


def _capture(name: str, instrumentor: Any, otel: Otel, **options: Any) -> tuple[Patch | None, list[str]]:
    """instrument() with the shared providers, keep the wrapper it put on Completions.create, uninstrument()."""
    instrumentor.instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, **options)
    create = vars(Completions)["create"]
    instrumentor.uninstrument()
    notes = []
    if vars(Completions)["create"] is not ORIGINAL_CREATE:
        Patch().off()
        notes.append(f"{name}: uninstrument() leaves its wrapper on Completions.create; the harness removes it")
    if create is ORIGINAL_CREATE:
        return None, [f"left out {name}: instrument() does not patch Completions.create"]
    return Patch(create), notes


def _peers() -> tuple[list[tuple[str, Any]], list[str]]:
    """(name, instrumentor) of each peer that imports, and why the others are left out of the run."""
    # openllmetry records prompts and completions on spans unless told otherwise.
    os.environ.setdefault("TRACELOOP_TRACE_CONTENT", "false")
    found, notes = [], []
    for name, distribution, module in PEERS:
        try:
            found.append((name, importlib.import_module(module).OpenAIInstrumentor()))
        except ImportError as error:
            notes.append(f"left out {name} ({distribution}): {error}")
    return found, notes


def _budgeted(redis_url: str | None) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """costspan with a budget that every call fits: in memory, and in Redis when there is one."""
    budget = Budget(1e6, window="day", name="benchmark-memory")
    with_ledger = Budget(1e6, window="day", name="benchmark-ledger")
    out = [(COSTSPAN_MEMORY_BUDGET, {"budgets": [budget]}), (COSTSPAN_LEDGER_BUDGET, {"budgets": [with_ledger]})]
    if redis_url is None:
        return out, [f"left out {COSTSPAN_REDIS_BUDGET}: no redis-server on PATH and no --redis URL"]
    out.append((COSTSPAN_REDIS_BUDGET, {"budgets": [Budget(1e6, window="day", name="benchmark", store=redis_url)]}))
    return out, []


def instrumentations(otel: Otel, redis_url: str | None = None) -> tuple[list[tuple[str, Patch]], list[str]]:
    """costspan's (bare and with budgets) and each installed peer's patch, and notes on what was left out or had
    to be cleaned up."""
    peers, notes = _peers()
    budgeted, budget_notes = _budgeted(redis_url)
    notes += budget_notes
    candidates = [
        (COSTSPAN, CostspanInstrumentor(), {}),
        *((name, CostspanInstrumentor(), options) for name, options in budgeted),
        *((name, instrumentor, {}) for name, instrumentor in peers),
    ]
    patches = []
    for name, instrumentor, options in candidates:
        patch, problems = _capture(name, instrumentor, otel, **options)
        notes += problems
        if patch is not None and isinstance(instrumentor, CostspanInstrumentor):
            patch = dataclasses.replace(patch, requests=otel.tracer_provider)
        if patch is not None and name == COSTSPAN_LEDGER_BUDGET:
            patch = dataclasses.replace(patch, ledger=_ledger(otel))
        if patch is not None:
            patches.append((name, patch))
        if patch is not None and name == COSTSPAN:
            patches.append((COSTSPAN_IN_REQUEST, dataclasses.replace(patch, in_request=True, _open=[])))
    return patches, notes


def _count(stream: Any) -> int:
    seen = 0
    for _chunk in stream:
        seen += 1
    return seen


def _call(create: Callable[..., Any]) -> Callable[[], int]:
    def run() -> int:
        create(**REQUEST)
        return 0

    return run


def _stream(create: Callable[..., Any], request: dict[str, Any]) -> Callable[[], int]:
    return lambda: _count(create(**request))


def _in_sdk(
    client: openai.OpenAI, floor: Floor, instrumented: list[tuple[str, Patch]], calls: int, streams: int
) -> tuple[Suite, Suite]:
    """The SDK call over the in-memory transport: non-streaming, and streaming."""

    def create(**kwargs: Any) -> Any:
        return client.chat.completions.create(**kwargs)

    plain_stream = _stream(create, STREAM_REQUEST)
    non_streaming = (
        Variant(BASELINE, _call(create), 0, spans_per_call=0),
        Variant(FLOOR, functools.partial(floor.call, create), 0),
        *(Variant(name, _call(create), 0, patch.spans, patch) for name, patch in instrumented),
    )
    streaming = (
        Variant(BASELINE, plain_stream, STREAM_CHUNKS, spans_per_call=0),
        Variant(USAGE_BASELINE, _stream(create, STREAM_USAGE_REQUEST), STREAM_CHUNKS + 1, spans_per_call=0),
        Variant(FLOOR, functools.partial(floor.stream, create), STREAM_CHUNKS),
        *(Variant(name, plain_stream, STREAM_CHUNKS, patch.spans, patch) for name, patch in instrumented),
    )
    return (
        Suite("call", "Non-streaming chat.completions.create", "call", calls, 1, non_streaming),
        Suite(
            "stream",
            f"Streaming chat.completions.create, {STREAM_CHUNKS} chunks",
            "chunk",
            streams,
            STREAM_CHUNKS,
            streaming,
            against_floor=False,
        ),
    )


def _unwrapped(patch: Patch) -> Patch:
    """A costspan patch's request processor, request and ledger, without its wrapper (the isolated suite calls
    it)."""
    return dataclasses.replace(patch, create=ORIGINAL_CREATE, _open=[])


def _isolated(client: openai.OpenAI, floor: Floor, instrumented: list[tuple[str, Patch]], calls: int) -> Suite:
    """Each instrumentation's wrapper around a stub ``create`` that returns a response the SDK parsed once:
    the instrumentation's own cost, without the SDK's noise."""
    response = client.chat.completions.create(**REQUEST)
    completions = client.chat.completions

    def stub(_self: Any, **_kwargs: Any) -> Any:
        return response

    def wrapped(patch: Patch) -> Callable[..., Any]:
        # The instrumentation's own wrapper function (wrapt keeps it as ``_self_wrapper``), bound as the SDK's is.
        return wrapt.FunctionWrapper(stub, patch.create._self_wrapper).__get__(completions, Completions)

    direct = functools.partial(stub, completions)
    variants = (
        Variant(BASELINE, _call(direct), 0, spans_per_call=0),
        Variant(FLOOR, functools.partial(floor.call, direct), 0),
        Variant(FLOOR_SPAN, functools.partial(floor.span_only, direct), 0),
        Variant(FLOOR_METRICS, functools.partial(floor.metrics_only, direct), 0, spans_per_call=0),
        *(Variant(name, _call(wrapped(patch)), 0, patch.spans, _unwrapped(patch)) for name, patch in instrumented),
    )
    title = "Instrumentation alone, around a stub create (no SDK work)"
    return Suite("isolated", title, "call", calls, 1, variants, relative=False)


class _Replay(openai.Stream[Any]):
    """An SDK stream of chunks the SDK parsed once (an ``openai.Stream``, so that instrumentations treat it as
    one): iterating it costs what iterating a tuple does, and closing it nothing."""

    def __init__(self, chunks: tuple[Any, ...]) -> None:  # the SDK's __init__ would open a response
        self._chunks = iter(chunks)

    def __iter__(self) -> Iterator[Any]:
        return self._chunks

    def __next__(self) -> Any:
        return next(self._chunks)

    def close(self) -> None:
        pass


def _long_stream(client: openai.OpenAI, include_usage: bool) -> tuple[Any, ...]:
    """The wire's stream parsed once, its content chunks repeated to ISOLATED_CHUNKS chunks in all."""
    parsed = list(client.chat.completions.create(**(STREAM_USAGE_REQUEST if include_usage else STREAM_REQUEST)))
    tail = 2 if include_usage else 1  # the finish chunk, and the usage chunk
    content = parsed[1:-tail]
    repeats = -(-(ISOLATED_CHUNKS - 2) // len(content))
    return (parsed[0], *(content * repeats)[: ISOLATED_CHUNKS - 2], *parsed[-tail:])


def _isolated_stream(client: openai.OpenAI, floor: Floor, instrumented: list[tuple[str, Patch]], streams: int) -> Suite:
    """costspan's stream proxy and chunk reader over a stub ``create`` that returns chunks the SDK parsed once: the
    per-chunk cost without the SDK's (SSE decoding, pydantic) noise. Peers are not run: each wraps the SDK's
    stream its own way, which a stub stream may not satisfy."""
    plain, with_usage = _long_stream(client, False), _long_stream(client, True)
    completions = client.chat.completions

    def stub(_self: Any, **kwargs: Any) -> Any:
        return _Replay(with_usage if (kwargs.get("stream_options") or {}).get("include_usage") else plain)

    def wrapped(patch: Patch) -> Callable[..., Any]:
        return wrapt.FunctionWrapper(stub, patch.create._self_wrapper).__get__(completions, Completions)

    direct = functools.partial(stub, completions)
    ours = [(name, patch) for name, patch in instrumented if name.startswith(COSTSPAN)]
    variants = (
        Variant(BASELINE, _stream(direct, _ISOLATED_REQUEST), ISOLATED_CHUNKS, spans_per_call=0),
        Variant(FLOOR, functools.partial(floor.stream, direct), ISOLATED_CHUNKS),
        *(
            Variant(name, _stream(wrapped(patch), _ISOLATED_REQUEST), ISOLATED_CHUNKS, patch.spans, _unwrapped(patch))
            for name, patch in ours
        ),
    )
    title = f"Instrumentation alone, over a stub stream of {ISOLATED_CHUNKS} parsed chunks"
    return Suite("isolated_stream", title, "chunk", streams, ISOLATED_CHUNKS, variants, False, False)


def suites(
    client: openai.OpenAI, otel: Otel, instrumented: list[tuple[str, Patch]], batches: tuple[int, int, int]
) -> tuple[Suite, Suite, Suite, Suite]:
    """The non-streaming and the streaming SDK call, and the instrumentation alone, per call and per chunk;
    ``batches`` are the calls per batch of each (one stub stream per batch)."""
    floor = Floor(otel.tracer_provider, otel.meter_provider)
    calls, streams, isolated_calls = batches
    call, stream = _in_sdk(client, floor, instrumented, calls, streams)
    isolated = _isolated(client, floor, instrumented, isolated_calls)
    return call, stream, isolated, _isolated_stream(client, floor, instrumented, 1)
