"""costspan's memory over many calls: RSS and traced allocations, after warm-up, against the uninstrumented SDK.

    python benchmarks/memory.py                                  # 100,000 calls, 10,000 abandoned streams
    python benchmarks/memory.py --calls 10000 --abandoned 1000   # quick
    python benchmarks/memory.py --write-readme                   # also put the results table in README.md

Each variant runs in a fresh process of its own, pinned to one CPU: the real ``openai`` clients (sync and async)
over the in-memory transport of ``_wire``, the shared OpenTelemetry pipeline of ``_otel`` (a BatchSpanProcessor
into an exporter that drops spans; metrics aggregated in memory, collected at every sample). The workload, per ten
calls: seven sync and one async non-streaming call, one sync and one async stream of 20 chunks read to the end;
spread among them, the abandoned streams: created, two chunks read, the iterator dropped and never closed (sync
and async in turn). After ``--warmup`` calls, tracemalloc starts; at ``--samples`` points (and at the start) the
process drains the event loop, flushes the span processors (the ledger's too) and the metric reader, collects
garbage, reads its RSS and takes a snapshot. See README.md for the verdict's rule.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

BASELINE = "baseline"
COSTSPAN = "costspan + ledger + memory budget"
ALONE = "costspan alone (no ledger, no budget)"
FLOOR = "floor (bare OTel SDK)"
VARIANTS = {"baseline": BASELINE, "costspan": COSTSPAN, "costspan-alone": ALONE, "floor": FLOOR}
# Per ten calls: seven sync and one async non-streaming call, one sync and one async stream read to the end.
MIX = ("call", "call", "call", "stream", "call", "call", "async call", "call", "async stream", "call")
# The verdict: costspan's RSS growth per 1,000 calls may exceed the uninstrumented run's by 10% of it, or by
# this many bytes when that is more (both near zero: RSS moves by whole pages).
RSS_RELATIVE = 0.10
RSS_FLOOR = 4 * 1024
# An allocation site grows linearly when its lower envelope does: the least size in each quarter of the run never
# falls, and rises by more than this per 1,000 calls from the first quarter to the last (a cache that fills
# early, a buffer that grew once, or a batch emptied now and then, does not).
SITE_BOUND = 512
# Chunks per stream: what a stream keeps does not depend on how long it is, and 200 chunks (the overhead suites')
# would make the streams nine tenths of the run.
STREAM_CHUNKS = 20
SDK_SITES = ("openai/", "opentelemetry/", "httpx2/", "httpcore/", "pydantic/", "pydantic_core/", "wrapt/")
_VERSIONS = ("costspan", "openai", "httpx2", "pydantic", "opentelemetry-sdk", "wrapt")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100_000, help="calls measured after warm-up (default 100,000)")
    parser.add_argument("--abandoned", type=int, default=10_000, help="abandoned streams among them (10,000)")
    parser.add_argument("--warmup", type=int, default=2_000, help="calls before measuring (default 2,000)")
    parser.add_argument("--samples", type=int, default=20, help="snapshots after the first (default 20)")
    parser.add_argument(
        "--variants", default="baseline,costspan", help=f"comma-separated, of {', '.join(VARIANTS)} (%(default)s)"
    )
    parser.add_argument("--top", type=int, default=6, help="allocation sites listed per variant (default 6)")
    parser.add_argument("--cpu", type=int, help="the CPU each run is pinned to (default: the last one allowed)")
    parser.add_argument(
        "--parallel",
        action="store_true",
        help="run the variants at once, each pinned to a CPU of its own (the figures are memory, not time)",
    )
    parser.add_argument(
        "--no-tracemalloc",
        action="store_true",
        help="RSS only: no allocation sites, and the calls run several times faster",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every sample as JSON")
    parser.add_argument("--write-readme", action="store_true", help="replace the results block in README.md")
    parser.add_argument("--child", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = set(args.variants.split(",")) - set(VARIANTS)
    if unknown:
        parser.error(f"--variants: unknown {', '.join(sorted(unknown))}")
    if args.parallel and args.cpu is not None:
        parser.error("--parallel gives each variant a CPU of its own: leave out --cpu")
    if args.calls < args.samples or args.abandoned > args.calls:
        parser.error("--calls must be at least --samples and at least --abandoned")
    return args


# ---- one variant, in its own process ----


def _count(stream: Any) -> int:
    return sum(1 for _chunk in stream)


async def _acount(stream: Any) -> int:
    return sum([1 async for _chunk in stream])


def _abandon(create: Callable[..., Any], request: dict[str, Any]) -> None:
    """Two chunks, then the iterator (and the stream) dropped, never closed."""
    chunks = iter(create(**request))
    next(chunks)
    next(chunks)


async def _aabandon(acreate: Callable[..., Any], request: dict[str, Any]) -> None:
    chunks = aiter(await acreate(**request))
    await anext(chunks)
    await anext(chunks)


class Workload:
    """One variant's calls: ``call(n)`` makes the n-th call of the mix, ``abandon(n)`` the n-th abandoned stream.
    The floor wraps the sync calls in its bare span and metric work; its async calls and abandoned streams are
    the SDK's alone."""

    def __init__(self, floor: Any = None) -> None:
        from _wire import REQUEST, STREAM_REQUEST, make_async_client, make_client

        create = make_client(STREAM_CHUNKS).chat.completions.create
        acreate = make_async_client(STREAM_CHUNKS).chat.completions.create
        self.loop = asyncio.new_event_loop()
        run = self.loop.run_until_complete
        self._kinds: dict[str, Callable[[], Any]] = {
            "call": lambda: create(**REQUEST),
            "stream": lambda: _count(create(**STREAM_REQUEST)),
            "async call": lambda: run(acreate(**REQUEST)),
            "async stream": lambda: run(self._aread(acreate, STREAM_REQUEST)),
        }
        if floor is not None:
            self._kinds["call"] = lambda: floor.call(create)
            self._kinds["stream"] = lambda: floor.stream(create)
        self._abandons = (lambda: _abandon(create, STREAM_REQUEST), lambda: run(_aabandon(acreate, STREAM_REQUEST)))

    @staticmethod
    async def _aread(acreate: Callable[..., Any], request: dict[str, Any]) -> int:
        return await _acount(await acreate(**request))

    def call(self, n: int) -> None:
        self._kinds[MIX[n % len(MIX)]]()

    def abandon(self, n: int) -> None:
        self._abandons[n % 2]()

    def settle(self) -> None:
        """Let the event loop run what dropped async generators left it (their finalizers schedule aclose)."""
        for _ in range(3):
            self.loop.run_until_complete(asyncio.sleep(0))


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _site(frame: tracemalloc.Frame) -> str:
    path = frame.filename
    for marker in ("/site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{frame.lineno}"


def _sample(workload: Workload, otel: Any, done: int) -> dict[str, Any]:
    """The process's state after ``done`` measured calls, from a quiet heap: nothing queued for export, the loop
    drained, garbage collected. RSS less what tracemalloc itself holds."""
    workload.settle()
    otel.flush()
    otel.collect()
    gc.collect()
    rss = _rss() - tracemalloc.get_tracemalloc_memory()
    if not tracemalloc.is_tracing():
        return {"calls": done, "rss": rss, "traced": None, "sites": {}}
    traced = tracemalloc.get_traced_memory()[0]
    sites: dict[str, int] = {}
    for stat in tracemalloc.take_snapshot().statistics("lineno"):
        site = _site(stat.traceback[0])
        sites[site] = sites.get(site, 0) + stat.size
    return {"calls": done, "rss": rss, "traced": traced, "sites": sites}


def _instrument(variant: str, otel: Any, directory: Path) -> Any:
    """costspan with its ledger (an SQLite file) and a memory budget every call fits, or alone (to tell what the
    ledger and the budget keep from what the rest does); the floor; or nothing."""
    if variant == FLOOR:
        from _floor import Floor

        return Floor(otel.tracer_provider, otel.meter_provider)
    if variant in (COSTSPAN, ALONE):
        import costspan

        alone = variant == ALONE
        costspan.CostspanInstrumentor().instrument(
            tracer_provider=otel.tracer_provider,
            meter_provider=otel.meter_provider,
            ledger=False if alone else str(directory / "ledger.db"),
            budgets=[] if alone else [costspan.Budget(1e6, window="day", name="memory-benchmark")],
        )
    return None


def _drive(workload: Workload, first: int, last: int, args: argparse.Namespace) -> int:
    """Calls ``first`` to ``last`` (exclusive), with the abandoned streams spread evenly among them; how many
    streams were abandoned."""
    abandoned = 0
    for n in range(first, last):
        workload.call(n)
        if (n + 1) * args.abandoned // args.calls > n * args.abandoned // args.calls:
            workload.abandon(abandoned + first)
            abandoned += 1
    return abandoned


def _child(args: argparse.Namespace) -> None:
    os.sched_setaffinity(0, {args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))})
    from _otel import Otel

    variant = VARIANTS[args.child]
    otel = Otel()
    with tempfile.TemporaryDirectory(prefix="costspan-memory-") as directory:
        workload = Workload(_instrument(variant, otel, Path(directory)))
        _drive(workload, 0, args.warmup, args)
        for thread in threading.enumerate():
            if thread.name == "costspan-tiktoken":  # the tokenizer, loaded on a thread at instrument()
                thread.join()
        gc.collect()
        gc.freeze()  # the warmed-up heap, out of the collections the samples run
        if not args.no_tracemalloc:
            tracemalloc.start(1)
        started = time.perf_counter()
        samples = [_sample(workload, otel, 0)]
        abandoned = 0
        step = args.calls / args.samples
        for index in range(1, args.samples + 1):
            first, last = args.warmup + round((index - 1) * step), args.warmup + round(index * step)
            abandoned += _drive(workload, first, last, args)
            samples.append(_sample(workload, otel, last - args.warmup))
            sys.stderr.write(f"  {variant}: {last - args.warmup} calls, {time.perf_counter() - started:.0f} s\n")
        tracemalloc.stop()
        spans = otel.flush()
        otel.shutdown()
    cpus = sorted(os.sched_getaffinity(0))
    json.dump(
        {"variant": variant, "cpus": cpus, "abandoned": abandoned, "spans": spans, "samples": samples}, sys.stdout
    )


# ---- the report ----


@dataclass(frozen=True)
class Site:
    site: str
    growth: int
    """Bytes, last sample less first."""
    per_1000: tuple[float, float]
    """Bytes per 1,000 calls, fitted over each half of the run."""
    floor_per_1000: float
    """How fast the least size of each quarter rose from the first quarter to the last; 0 if it ever fell."""

    @property
    def linear(self) -> bool:
        return self.floor_per_1000 > SITE_BOUND


def _floor_per_1000(calls: Sequence[int], sizes: Sequence[int]) -> float:
    quarters = [q for q in (range(len(sizes) * n // 4, len(sizes) * (n + 1) // 4) for n in range(4)) if q]
    lows = [min(sizes[i] for i in quarter) for quarter in quarters]
    if len(lows) < 2 or any(later < earlier for earlier, later in itertools.pairwise(lows)):
        return 0.0
    span = calls[quarters[-1][0]] - calls[quarters[0][-1]]
    return 1000 * (lows[-1] - lows[0]) / span if span > 0 else 0.0


def _per_1000(calls: Sequence[int], values: Sequence[int]) -> float:
    return 1000 * statistics.linear_regression(calls, values).slope


def _sites(samples: Sequence[dict[str, Any]], prefixes: Sequence[str]) -> list[Site]:
    """Every allocation site in a file under one of ``prefixes``, by growth, largest first."""
    calls = [sample["calls"] for sample in samples]
    middle = len(samples) // 2
    names = {site for sample in samples for site in sample["sites"] if site.startswith(tuple(prefixes))}
    out = []
    for name in names:
        sizes = [sample["sites"].get(name, 0) for sample in samples]
        halves = (
            _per_1000(calls[: middle + 1], sizes[: middle + 1]),
            _per_1000(calls[middle:], sizes[middle:]),
        )
        out.append(Site(name, sizes[-1] - sizes[0], halves, _floor_per_1000(calls, sizes)))
    return sorted(out, key=lambda site: site.growth, reverse=True)


def summarize(run: dict[str, Any]) -> dict[str, Any]:
    samples = run["samples"]
    calls = [sample["calls"] for sample in samples]
    traced = None if samples[0]["traced"] is None else [sample["traced"] for sample in samples]
    # RSS per 1,000 calls over the second half: the first lets what fills once (SQLite's page cache, the
    # allocator's arenas) fill.
    half = len(samples) // 2
    return {
        "variant": run["variant"],
        "calls": calls[-1],
        "abandoned": run["abandoned"],
        "spans": run["spans"],
        "rss_per_1000": _per_1000(calls[half:], [sample["rss"] for sample in samples[half:]]),
        "rss_growth": samples[-1]["rss"] - samples[0]["rss"],
        "traced_per_1000": None if traced is None else _per_1000(calls, traced),
        "sites": _sites(samples, ("costspan/", *SDK_SITES)),
        "rss_samples": [sample["rss"] - samples[0]["rss"] for sample in samples],
        "every": calls[1] - calls[0] if len(calls) > 1 else 0,
    }


def verdict(rows: dict[str, dict[str, Any]]) -> list[str]:
    """The issue's two checks, each a line ending in PASS or FAIL."""
    if BASELINE not in rows or COSTSPAN not in rows:
        return []
    ours, base = rows[COSTSPAN]["rss_per_1000"], rows[BASELINE]["rss_per_1000"]
    allowed = base + max(RSS_RELATIVE * abs(base), RSS_FLOOR)
    lines = [
        f"RSS growth per 1,000 calls: costspan {ours / 1024:.2f} KiB, uninstrumented {base / 1024:.2f} KiB; "
        f"allowed at most {allowed / 1024:.2f} KiB: {'PASS' if ours <= allowed else 'FAIL'}"
    ]
    if rows[COSTSPAN]["traced_per_1000"] is None:
        return [*lines, "costspan allocation sites: not traced (--no-tracemalloc)"]
    growing = [site for site in rows[COSTSPAN]["sites"] if site.linear and site.site.startswith("costspan/")]
    return [
        *lines,
        "costspan allocation sites growing linearly: "
        + (", ".join(f"{site.site} ({site.floor_per_1000:.0f} B per 1,000 calls)" for site in growing) or "none")
        + f": {'FAIL' if growing else 'PASS'}",
    ]


def _kib(value: float | None) -> str:
    return "-" if value is None else f"{value / 1024:+.2f}"


def markdown(rows: dict[str, dict[str, Any]], meta: dict[str, Any], top: int) -> str:
    lines = [
        f"`{meta['command']}`: python {meta['python']}, {meta['cpu_count']} CPUs, "
        + ", ".join(f"{name} {version}" for name, version in meta["versions"].items() if version),
        "",
        "| variant | calls | abandoned streams | RSS per 1,000 calls, 2nd half (KiB) | RSS, whole run (KiB) "
        "| traced per 1,000 calls (KiB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows.values():
        lines.append(
            f"| {row['variant']} | {row['calls']:,} | {row['abandoned']:,} | {_kib(row['rss_per_1000'])} "
            f"| {_kib(row['rss_growth'])} | {_kib(row['traced_per_1000'])} |"
        )
    lines += ["", *(f"- {line}" for line in verdict(rows))]
    if all(row["traced_per_1000"] is None for row in rows.values()):
        return "\n".join(lines + _rss_samples(rows))
    lines += ["", "Allocation sites (costspan, openai, OpenTelemetry, httpx2, pydantic, wrapt) that grew most:", ""]
    lines += ["| variant | site | growth (KiB) | per 1,000 calls, 1st half / 2nd half (B) |", "|---|---|---:|---:|"]
    for row in rows.values():
        for site in row["sites"][:top]:
            first, second = site.per_1000
            lines.append(f"| {row['variant']} | `{site.site}` | {_kib(site.growth)} | {first:+.0f} / {second:+.0f} |")
    return "\n".join(lines)


def _rss_samples(rows: dict[str, dict[str, Any]]) -> list[str]:
    """An untraced run's evidence: every RSS sample, so that a step (a cache filling once) shows apart from a
    trend."""
    lines = ["", "RSS at each sample, KiB above the first:", ""]
    for row in rows.values():
        samples = ", ".join(f"{size / 1024:.0f}" for size in row["rss_samples"])
        lines.append(f"- {row['variant']} (every {row['every']:,} calls): {samples}")
    return lines


def _method(args: argparse.Namespace) -> list[str]:
    """The arguments that decide what a run measures (its children get them, the report shows them)."""
    out = [f"--calls={args.calls}", f"--abandoned={args.abandoned}", f"--warmup={args.warmup}"]
    out += [f"--samples={args.samples}", f"--variants={args.variants}"]
    out += ["--no-tracemalloc"] if args.no_tracemalloc else []
    return out + ([f"--cpu={args.cpu}"] if args.cpu is not None else [])


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in _VERSIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "command": " ".join(["python benchmarks/memory.py", *_method(args)]),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "versions": versions,
    }


def _run_variant(name: str, args: argparse.Namespace, cpu: int | None = None) -> dict[str, Any]:
    # One write per line: with --parallel, threads (and their processes) report at once, and print() writes the
    # line and its newline apart.
    sys.stderr.write(f"{VARIANTS[name]}: a fresh process\n")
    command = [sys.executable, __file__, *_method(args), f"--child={name}"]
    command += [f"--cpu={cpu}"] if cpu is not None else []
    done = subprocess.run(command, stdout=subprocess.PIPE, check=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _run_variants(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each variant's run: one after the other, or with ``--parallel`` as many at once as there are CPUs, each on
    a CPU no other run has meanwhile."""
    names = args.variants.split(",")
    if not args.parallel:
        return [_run_variant(name, args) for name in names]
    free: queue.Queue[int] = queue.Queue()
    for cpu in sorted(os.sched_getaffinity(0)):
        free.put(cpu)

    def run(name: str) -> dict[str, Any]:
        cpu = free.get()
        try:
            return _run_variant(name, args, cpu)
        finally:
            free.put(cpu)

    with ThreadPoolExecutor(max_workers=free.qsize()) as pool:
        return list(pool.map(run, names))


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse(argv)
    if args.child:
        _child(args)
        return
    runs = _run_variants(args)
    rows = {run["variant"]: summarize(run) for run in runs}
    meta = _meta(args)
    table = markdown(rows, meta, args.top)
    print(table)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "runs": runs}, indent=1) + "\n")
    if args.write_readme:
        from _readme import replace_block

        # A traced run's block (allocation sites) and an untraced run's (the RSS verdict) are kept side by side.
        replace_block("memory.py --no-tracemalloc" if args.no_tracemalloc else "memory.py", table)


if __name__ == "__main__":
    main()
