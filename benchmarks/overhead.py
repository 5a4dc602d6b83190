"""costspan's overhead on OpenAI chat calls, against the uninstrumented SDK, the bare OpenTelemetry floor and peers.

    python benchmarks/overhead.py [--quick] [--json PATH] [--write-readme] [--profile]
    python benchmarks/overhead.py --providers [--rounds N]    # one Gemini and one Bedrock Converse call

Every variant runs the real ``openai.OpenAI`` client over an in-memory transport (``_wire``), with the same SDK
tracer and meter providers (``_otel``). Each round runs every variant for one short batch, in a shuffled order; a
variant's overhead in a round is its time per call (or per chunk) minus the baseline's in that same round, and
the report gives the median over rounds. See README.md for how to read it.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import json
import os
import platform
import pstats
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import _providers
from _floor import FLOOR_SCOPE
from _otel import Otel
from _report import Timings, format_suite, markdown_suite, summarize, targets
from _variants import COSTSPAN, FLOOR, PEERS, Suite, Variant, instrumentations, suites
from _wire import STREAM_CHUNKS, make_client
from opentelemetry.sdk.trace import ReadableSpan

_VERSIONS = ("costspan", "openai", "httpx2", "pydantic", "opentelemetry-api", "opentelemetry-sdk", "wrapt")
_WARMUP_ROUNDS = 10


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="120 rounds instead of 600 (about a minute)")
    parser.add_argument("--rounds", type=int, help="rounds (default 600, --quick 120)")
    parser.add_argument("--calls", type=int, default=20, help="non-streaming calls per batch (default 20)")
    parser.add_argument("--streams", type=int, default=1, help=f"{STREAM_CHUNKS}-chunk streams per batch (default 1)")
    parser.add_argument("--isolated-calls", type=int, default=60, help="stub calls per batch (default 60)")
    parser.add_argument("--seed", type=int, default=2024, help="seed of the per-round variant order")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--profile", action="store_true", help="profile costspan's calls instead (cProfile)")
    parser.add_argument("--write-readme", action="store_true", help="replace the results block in README.md")
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="the Redis of the Redis-budget variant (default: a redis-server started on loopback, if installed)",
    )
    parser.add_argument(
        "--providers",
        action="store_true",
        help="measure one Gemini and one Bedrock Converse call, plain and streamed, instead (see _providers.py)",
    )
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (120 if args.quick else 600)
    return args


def _batch(variant: Variant, calls: int) -> int:
    """Nanoseconds for ``calls`` calls of ``variant``, its patch installed, from a collected heap."""
    gc.collect()
    run = variant.run
    variant.patch.on()
    try:
        start = time.perf_counter_ns()
        for _ in range(calls):
            run()
        return time.perf_counter_ns() - start
    finally:
        variant.patch.off()


def _verify(variant: Variant, otel: Otel) -> ReadableSpan | None:
    """Run one call; the last span exported, after checking the chunks the caller saw and the spans it emitted."""
    before = otel.flush()
    variant.patch.on()
    try:
        seen = variant.run()
    finally:
        variant.patch.off()
    spans = otel.flush() - before
    if seen != variant.chunks_seen or spans != variant.spans_per_call:
        raise RuntimeError(
            f"{variant.name}: saw {seen} chunks and {spans} spans, "
            f"expected {variant.chunks_seen} and {variant.spans_per_call}"
        )
    return otel.exporter.last


def _attribute_keys(span: ReadableSpan | None) -> set[str]:
    return set(span.attributes or ()) if span is not None else set()


def _parity(all_suites: Sequence[Suite], otel: Otel) -> dict[str, Any]:
    """Verify every variant with one call, then compare what costspan emitted with what the floor did: span
    attribute keys and metric records, beyond or short of the floor's."""
    out: dict[str, Any] = {}
    for suite in all_suites:
        spans = {variant.name: _verify(variant, otel) for variant in suite.variants}
        costspan_keys, floor_keys = (_attribute_keys(spans[name]) for name in (COSTSPAN, FLOOR))
        out[f"{suite.key}_span_attributes_extra"] = sorted(costspan_keys - floor_keys)
        out[f"{suite.key}_span_attributes_missing"] = sorted(floor_keys - costspan_keys)
    costspan_metrics, floor_metrics = otel.metric_shapes("costspan"), otel.metric_shapes(FLOOR_SCOPE)
    out["metric_records_extra"] = sorted(costspan_metrics - floor_metrics)
    out["metric_records_missing"] = sorted(floor_metrics - costspan_metrics)
    return out


def _round(all_suites: Sequence[Suite], order: random.Random) -> dict[str, dict[str, int]]:
    """Every variant's batch once, in a shuffled order: suite key -> variant name -> ns."""
    out: dict[str, dict[str, int]] = {}
    for suite in all_suites:
        variants = order.sample(suite.variants, len(suite.variants))
        out[suite.key] = {variant.name: _batch(variant, suite.calls_per_batch) for variant in variants}
    return out


def _settle(all_suites: Sequence[Suite], otel: Otel, order: random.Random) -> None:
    """Warm every variant up from a frozen heap: the objects that exist before the rounds (modules, schemas,
    caches) are moved out of the collector's reach, so ``gc.collect()`` before each batch costs microseconds."""
    _round(all_suites, order)
    for thread in threading.enumerate():
        if thread.name == "costspan-tiktoken":  # costspan loads tiktoken on a thread at its first instrument()
            thread.join()
    otel.flush()
    gc.collect()
    gc.freeze()
    for _ in range(_WARMUP_ROUNDS):
        _round(all_suites, order)


def _measure(all_suites: Sequence[Suite], otel: Otel, rounds: int, order: random.Random) -> Timings:
    timings: Timings = {suite.key: {variant.name: [] for variant in suite.variants} for suite in all_suites}
    started = time.perf_counter()
    for number in range(1, rounds + 1):
        for key, batches in _round(all_suites, order).items():
            for name, ns in batches.items():
                timings[key][name].append(ns)
        otel.flush()
        otel.collect()
        if number % 50 == 0 or number == rounds:
            print(f"round {number}/{rounds}, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return timings


def _meta(args: argparse.Namespace, all_suites: Sequence[Suite]) -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in [*_VERSIONS, *(distribution for _name, distribution, _module in PEERS)]:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "versions": versions,
        "clock": "time.perf_counter_ns",
        "rounds": args.rounds,
        "seed": args.seed,
        "batches": {
            suite.key: {"calls": suite.calls_per_batch, "units_per_call": suite.units_per_call} for suite in all_suites
        },
    }


def _target_lines(checked: dict[str, Any]) -> list[str]:
    lines = [
        f"costspan {check['name']}: {check['value']:.2f}{check['unit']} "
        f"(95% CI [{check['ci95'][0]:.2f}, {check['ci95'][1]:.2f}]); target {check['bound']}: {check['verdict']}"
        for check in checked["checks"]
    ]
    lines.append(
        f"  of costspan's {checked['chunk_us']:.2f} us per chunk: the extra usage chunk "
        f"{checked['chunk_usage_chunk_us']:.2f}, the rest {checked['chunk_rest_us']:.2f}"
    )
    parts = checked["floor_parts_us"]
    whole, span, metrics = parts["floor"], parts["span"], parts["metrics"]
    rest = whole - span - metrics
    lines.append(
        f"  of the floor's {whole:.2f} us per call, alone: the span {span:.2f} ({100 * span / whole:.0f}%), "
        f"the metric records {metrics:.2f} ({100 * metrics / whole:.0f}%), and {rest:.2f} "
        f"({100 * rest / whole:.0f}%) that the two cost together beyond what each costs alone"
    )
    return lines


def _print(all_suites: Sequence[Suite], results: dict[str, Any]) -> None:
    meta = results["meta"]
    versions = ", ".join(f"{name} {version}" for name, version in meta["versions"].items() if version)
    print(f"python {meta['python']}, {meta['cpu_count']} CPUs, {meta['platform']}\n{versions}")
    print(f"{meta['rounds']} rounds; times in us, wall clock; overhead = median over rounds of (variant - baseline)")
    for suite in all_suites:
        print(f"\n== {suite.title}: per {suite.unit}, {suite.calls_per_batch} per batch ==")
        print(format_suite(suite, summarize(suite, results["raw_batch_ns"][suite.key])))
    print()
    print("\n".join(_target_lines(results["targets"])))
    for note in results["notes"]:
        print(f"note: {note}")
    parity = {key: value for key, value in results["parity"].items() if value}
    print(f"floor parity: {json.dumps(parity) if parity else 'costspan emits exactly the floor keys and records'}")


def _markdown(all_suites: Sequence[Suite], results: dict[str, Any]) -> str:
    """The run as the README shows it: what ran, each suite's table, the targets' lines and the notes."""
    meta = results["meta"]
    versions = ", ".join(f"{name} {version}" for name, version in meta["versions"].items() if version)
    lines = [f"`python benchmarks/overhead.py --rounds {meta['rounds']}`: python {meta['python']}, "]
    lines[0] += f"{meta['cpu_count']} CPUs, {versions}"
    for suite in all_suites:
        lines += ["", f"{suite.title}: per {suite.unit}, {suite.calls_per_batch} per batch", ""]
        lines.append(markdown_suite(suite, summarize(suite, results["raw_batch_ns"][suite.key])))
    lines += ["", *(f"- {line.strip()}" for line in _target_lines(results["targets"]))]
    lines += [f"- note: {note}" for note in results["notes"]]
    return "\n".join(lines)


def _profile(all_suites: Sequence[Suite], calls: int) -> None:
    """cProfile costspan's calls; print the instrumentation's own functions by time spent in them."""
    for suite in all_suites:
        variant = next(variant for variant in suite.variants if variant.name == COSTSPAN)
        count = max(1, calls // suite.units_per_call)
        _batch(variant, count)  # warm up
        profiler = cProfile.Profile()
        profiler.runcall(_batch, variant, count)
        print(f"== {suite.title}: costspan, {count} calls ==")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(r"/costspan/|/opentelemetry/|/wrapt/", 30)


def _run(args: argparse.Namespace, otel: Otel, redis_url: str | None) -> None:
    instrumented, notes = instrumentations(otel, redis_url)
    all_suites = suites(make_client(), otel, instrumented, (args.calls, args.streams, args.isolated_calls))
    parity = _parity(all_suites, otel)
    if args.profile:
        _profile(all_suites, 2000)
        return
    order = random.Random(args.seed)
    _settle(all_suites, otel, order)
    timings = _measure(all_suites, otel, args.rounds, order)
    results = {
        "meta": _meta(args, all_suites),
        "notes": notes,
        "parity": parity,
        "targets": targets(*all_suites, timings),
        "results": {suite.key: [row.as_dict() for row in summarize(suite, timings[suite.key])] for suite in all_suites},
        "raw_batch_ns": timings,
    }
    _print(all_suites, results)
    if args.write_readme:
        from _readme import replace_block

        replace_block("overhead.py", _markdown(all_suites, results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def _run_providers(args: argparse.Namespace, otel: Otel) -> None:
    import costspan

    instrumentor = costspan.CostspanInstrumentor()
    instrumentor.instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, ledger=False)
    try:
        results = _providers.measure(args.rounds, args.seed)
    finally:
        instrumentor.uninstrument()
    print(_providers.format_results(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse(argv)
    otel = Otel()
    if args.providers:
        try:
            _run_providers(args, otel)
        finally:
            otel.shutdown()
        return
    with contextlib.ExitStack() as stack:
        redis_url = args.redis or stack.enter_context(loopback_redis())
        try:
            _run(args, otel, redis_url)
        finally:
            otel.shutdown()


@contextlib.contextmanager
def loopback_redis() -> Iterator[str | None]:
    """A throwaway redis-server on a free loopback port (no persistence), or None without the binary."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
