"""The ledger's cost: rows per second its writer sustains, and the latency it adds to a call.

    python benchmarks/ledger.py [--rows 50000] [--rounds 200] [--calls 50] [--ledger URL] [--processes 1,8]

Throughput: ``--rows`` finished costspan spans (clones of one real span, each with its own ids) are ended into a
``LedgerProcessor`` as fast as the caller can, then flushed; rows/s is rows over the time from the first ``on_end``
to the end of the flush, with the time the caller spent in ``on_end`` given per span. With ``--processes 8``, 8
processes (forked) each write ``--rows`` / 8 of them into the same ledger at once, and rows/s is all rows over the
time from the common start to the last flush's end.

``--ledger`` names the ledger: by default a new SQLite file in a temporary directory; a ``postgresql://`` URL
measures the PostgreSQL writer (give an empty database: rows are added to its ``calls`` table).

Latency: the real ``openai.OpenAI`` client over the in-memory transport of ``_wire`` (no network), instrumented by
costspan, with the production pipeline of ``_otel`` (a BatchSpanProcessor). Each round runs one batch of ``--calls``
calls with the ledger processor on and one with it off, in a shuffled order; the ledger's writer runs as it does in
production (woken by its batch size or its one-second interval), so its work on the other thread is in the numbers.
The report gives the medians over rounds of the per-call time with the ledger off and on, their difference and ratio.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _otel import Otel, Switch
from _wire import REQUEST, make_client
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags

import costspan
from costspan.ledger import LedgerProcessor


def _clones(span: ReadableSpan, count: int, first: int = 0) -> list[ReadableSpan]:
    attributes = dict(span.attributes or {})
    out = []
    for index in range(first, first + count):
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


def _write(span: ReadableSpan, rows: int, ledger: str, first: int, start: Any = None) -> tuple[float, float, float]:
    """End ``rows`` clones into a new processor of ``ledger`` and flush: (started, enqueued, finished), monotonic."""
    spans = _clones(span, rows, first)
    processor = LedgerProcessor(ledger, max_queue=rows + 1)
    processor.force_flush()  # the file or connection is opened and migrated before timing
    if start is not None:
        start.wait()
    started = time.monotonic()
    for one in spans:
        processor.on_end(one)
    enqueued = time.monotonic()
    assert processor.force_flush(timeout_millis=600_000)
    finished = time.monotonic()
    processor.shutdown()
    assert processor.written == rows and processor.dropped == 0, (processor.written, processor.dropped)
    return started, enqueued, finished


def _worker(span: ReadableSpan, rows: int, ledger: str, first: int, start: Any, results: Any) -> None:
    results.put(_write(span, rows, ledger, first, start))


def throughput(span: ReadableSpan, rows: int, ledger: str, processes: int, first: int) -> dict[str, float]:
    if processes == 1:
        started, enqueued, finished = _write(span, rows, ledger, first)
        return {"rows_per_s": rows / (finished - started), "on_end_us": (enqueued - started) / rows * 1e6}
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(processes), context.Queue()
    share = rows // processes
    workers = [
        context.Process(target=_worker, args=(span, share, ledger, first + n * share, start, results))
        for n in range(processes)
    ]
    for worker in workers:
        worker.start()
    timings = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0
    began, ended = min(t[0] for t in timings), max(t[2] for t in timings)
    on_end = statistics.median((t[1] - t[0]) / share for t in timings)
    return {"rows_per_s": share * processes / (ended - began), "on_end_us": on_end * 1e6}


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
    parser.add_argument("--ledger", help="the ledger: a postgresql:// URL (default: a new SQLite file)")
    parser.add_argument("--processes", default="1,8", help="writer processes for the throughput runs")
    args = parser.parse_args(argv)
    otel = Otel()
    with tempfile.TemporaryDirectory(prefix="costspan-ledger-bench-") as name:
        directory = Path(name)
        ledger = LedgerProcessor(args.ledger or directory / "latency.db")
        switch = Switch(ledger)
        otel.tracer_provider.add_span_processor(switch)
        costspan.CostspanInstrumentor().instrument(
            tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider
        )
        rates = {}
        try:
            result = latency(otel, switch, args.rounds, args.calls, args.seed)
            assert otel.exporter.last is not None
            for run, processes in enumerate(int(n) for n in args.processes.split(",")):
                target = args.ledger or str(directory / f"throughput-{processes}.db")
                first = 10**9 * (run + 1) + int(time.time())  # ids of their own in a ledger that is not new
                rates[processes] = throughput(otel.exporter.last, args.rows, target, processes, first)
        finally:
            costspan.CostspanInstrumentor().uninstrument()
            ledger.shutdown()
            otel.shutdown()
    engine = "PostgreSQL" if args.ledger else "SQLite"
    print(f"python {sys.version.split()[0]}, {engine}, {args.rounds} rounds of {args.calls} calls, {args.rows} rows")
    for processes, rate in rates.items():
        print(
            f"writer throughput, {processes} process(es): {rate['rows_per_s']:,.0f} rows/s "
            f"(the caller's on_end: {rate['on_end_us']:.2f} us/span)"
        )
    print(
        f"per call: ledger off {result['off_us']:.1f} us, on {result['on_us']:.1f} us; "
        f"added {result['added_us']:+.1f} us (median of per-round differences), ratio on/off {result['ratio']:.3f}"
    )
    print(f"ledger rows written during the latency rounds: {ledger.written:,} (dropped {ledger.dropped})")


if __name__ == "__main__":
    main()
