"""The ledger's cost: rows per second its writer sustains, and the latency it adds to a call.

    python benchmarks/ledger.py [--rows 50000] [--rounds 200] [--calls 50]

Throughput: ``--rows`` finished costspan spans (clones of one real span, each with its own ids) are ended into a
``LedgerProcessor`` as fast as the caller can, then flushed; rows/s is rows over the time from the first ``on_end``
to the end of the flush, with the time the caller spent in ``on_end`` given per span.

Latency: the real ``openai.OpenAI`` client over the in-memory transport of ``_wire`` (no network), instrumented by
costspan, with the production pipeline of ``_otel`` (a BatchSpanProcessor). Each round runs one batch of ``--calls``
calls with the ledger processor on and one with it off, in a shuffled order; the ledger's writer runs as it does in
production (woken by its batch size or its one-second interval), so its work on the other thread is in the numbers.
The report gives the medians over rounds of the per-call time with the ledger off and on, their difference and ratio.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _otel import Otel
from _wire import REQUEST, make_client
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import SpanContext, TraceFlags

import costspan
from costspan.ledger import LedgerProcessor


class Switch(SpanProcessor):
    """Forwards to the ledger processor while on; the same call either way, so both variants pay for it."""

    def __init__(self, processor: LedgerProcessor) -> None:
        self.processor = processor
        self.on = False

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if self.on:
            self.processor.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if self.on:
            self.processor.on_end(span)


def _clones(span: ReadableSpan, count: int) -> list[ReadableSpan]:
    attributes = dict(span.attributes or {})
    out = []
    for index in range(count):
        context = SpanContext(index + 1, index + 1, is_remote=False, trace_flags=TraceFlags(1))
        out.append(
            ReadableSpan(
                name=span.name,
                context=context,
                attributes={**attributes, "gen_ai.response.id": f"chatcmpl-bench{index}"},
                kind=span.kind,
                start_time=span.start_time,
                end_time=span.end_time,
                instrumentation_scope=span.instrumentation_scope,
            )
        )
    return out


def throughput(span: ReadableSpan, rows: int, directory: Path) -> dict[str, float]:
    spans = _clones(span, rows)
    processor = LedgerProcessor(directory / "throughput.db", max_queue=rows + 1)
    processor.force_flush()  # the file is created and migrated before timing
    started = time.perf_counter()
    for one in spans:
        processor.on_end(one)
    enqueued = time.perf_counter()
    assert processor.force_flush(timeout_millis=600_000)
    finished = time.perf_counter()
    processor.shutdown()
    assert processor.written == rows and processor.dropped == 0, (processor.written, processor.dropped)
    return {"rows_per_s": rows / (finished - started), "on_end_us": (enqueued - started) / rows * 1e6}


def latency(otel: Otel, switch: Switch, rounds: int, calls: int, seed: int) -> dict[str, float]:
    client = make_client()
    create = client.chat.completions.create
    order = random.Random(seed)
    per_call: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(rounds // 10):  # warm-up: caches, price resolution, the ledger file
        for on in (False, True):
            switch.on = on
            create(**REQUEST)
    for _ in range(rounds):
        variants = [False, True]
        order.shuffle(variants)
        for on in variants:
            switch.on = on
            started = time.perf_counter()
            for _ in range(calls):
                create(**REQUEST)
            per_call[on].append((time.perf_counter() - started) / calls)
        otel.flush()
    off, on = statistics.median(per_call[False]), statistics.median(per_call[True])
    differences = [b - a for a, b in zip(per_call[False], per_call[True], strict=True)]
    return {
        "off_us": off * 1e6,
        "on_us": on * 1e6,
        "added_us": statistics.median(differences) * 1e6,
        "ratio": statistics.median(b / a for a, b in zip(per_call[False], per_call[True], strict=True)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    otel = Otel()
    with tempfile.TemporaryDirectory(prefix="costspan-ledger-bench-") as name:
        directory = Path(name)
        ledger = LedgerProcessor(directory / "latency.db")
        switch = Switch(ledger)
        otel.tracer_provider.add_span_processor(switch)
        costspan.CostspanInstrumentor().instrument(
            tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider
        )
        try:
            result = latency(otel, switch, args.rounds, args.calls, args.seed)
            assert otel.exporter.last is not None
            rate = throughput(otel.exporter.last, args.rows, directory)
        finally:
            costspan.CostspanInstrumentor().uninstrument()
            ledger.shutdown()
            otel.shutdown()
    print(f"python {sys.version.split()[0]}, {args.rounds} rounds of {args.calls} calls, {args.rows} rows")
    print(f"writer throughput: {rate['rows_per_s']:,.0f} rows/s (the caller's on_end: {rate['on_end_us']:.2f} us/span)")
    print(
        f"per call: ledger off {result['off_us']:.1f} us, on {result['on_us']:.1f} us; "
        f"added {result['added_us']:+.1f} us (median of per-round differences), ratio on/off {result['ratio']:.3f}"
    )
    print(f"ledger rows written during the latency rounds: {ledger.written:,} (dropped {ledger.dropped})")


if __name__ == "__main__":
    main()
