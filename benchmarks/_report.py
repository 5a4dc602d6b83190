"""From per-round batch timings to overheads: the median over rounds of (variant - baseline) within each round,
a distribution-free 95% confidence interval of that median, the interquartile range of the per-round values,
and the ratios the targets are stated in."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from _variants import (
    BASELINE,
    COSTSPAN,
    COSTSPAN_LEDGER_BUDGET,
    COSTSPAN_MEMORY_BUDGET,
    FLOOR,
    FLOOR_METRICS,
    FLOOR_SPAN,
    USAGE_BASELINE,
    Suite,
)

__all__ = ["Check", "Row", "Timings", "format_suite", "markdown_suite", "summarize", "targets"]

CALL_TARGET = 1.3  # costspan's overhead per call, at most this many times the floor's
# ... with the ledger on and a memory budget active, alone (issue 21): its own logic within 10% of the floor
FULL_CALL_TARGET = 1.1
CHUNK_TARGET = 3.0  # costspan's overhead per chunk, under this percentage of the uninstrumented chunk
# costspan's own work per chunk, in microseconds (the isolated stream): unwatched, and with a budget watching
CHUNK_ALONE_TARGETS = ((COSTSPAN, "unwatched", 0.8), (COSTSPAN_MEMORY_BUDGET, "watched by a memory budget", 1.0))
_Z95 = 1.96
_BOOTSTRAP = 1000

# suite key -> variant name -> one batch duration (ns) per round
Timings = dict[str, dict[str, list[int]]]


@dataclass(frozen=True)
class Row:
    variant: str
    per_unit_us: float
    overhead_us: float | None = None
    ci95_us: tuple[float, float] | None = None
    iqr_us: tuple[float, float] | None = None
    overhead_pct: float | None = None
    x_floor: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _per_unit_us(suite: Suite, batch_ns: Sequence[int]) -> list[float]:
    units = suite.calls_per_batch * suite.units_per_call
    return [ns / units / 1000 for ns in batch_ns]


def _overheads(suite: Suite, variant: Sequence[int], reference: Sequence[int]) -> list[float]:
    """Per round: the variant's time per unit minus the reference's, both measured in that round."""
    return [v - r for v, r in zip(_per_unit_us(suite, variant), _per_unit_us(suite, reference), strict=True)]


def _median_ci95(values: Sequence[float]) -> tuple[float, float]:
    """The order statistics that bracket the median with 95% confidence (binomial, normal approximation)."""
    ordered = sorted(values)
    n = len(ordered)
    half_width = _Z95 * math.sqrt(n) / 2
    low = max(0, math.floor(n / 2 - half_width) - 1)
    high = min(n - 1, math.ceil(n / 2 + half_width))
    return ordered[low], ordered[high]


def _iqr(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q1, _median, q3 = statistics.quantiles(values, n=4)
    return q1, q3


def summarize(suite: Suite, timings: dict[str, list[int]]) -> list[Row]:
    """One row per variant, in the suite's order: the baseline's time, the others' overheads over it."""
    baseline = timings[BASELINE]
    base_us = statistics.median(_per_unit_us(suite, baseline))
    floor_us = statistics.median(_overheads(suite, timings[FLOOR], baseline))
    rows = [Row(BASELINE, base_us)]
    for variant in suite.variants:
        if variant.name == BASELINE:
            continue
        batches = timings[variant.name]
        overheads = _overheads(suite, batches, baseline)
        overhead = statistics.median(overheads)
        rows.append(
            Row(
                variant.name,
                statistics.median(_per_unit_us(suite, batches)),
                overhead,
                _median_ci95(overheads),
                _iqr(overheads),
                100 * overhead / base_us if suite.relative else None,
                overhead / floor_us if suite.against_floor else None,
            )
        )
    return rows


@dataclass(frozen=True)
class Check:
    """One of the issue's targets: a measured value, its 95% confidence interval, and the bound it must meet."""

    name: str
    value: float
    ci95: tuple[float, float]
    target: float
    unit: str
    bound: str
    """The target in words."""

    @property
    def verdict(self) -> str:
        low, high = self.ci95
        if high <= self.target:
            return "PASS"
        if low > self.target:
            return "FAIL"
        return "UNDECIDED (the interval straddles the target)"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


def _x_floor_ci95(suite: Suite, timings: dict[str, list[int]], variant: str) -> tuple[float, float]:
    """Bootstrap (rounds resampled) 95% interval of a costspan variant's median overhead over the floor's."""
    baseline = timings[BASELINE]
    ours = _overheads(suite, timings[variant], baseline)
    floor = _overheads(suite, timings[FLOOR], baseline)
    draw = random.Random(0).choices
    rounds = range(len(ours))
    ratios = []
    for _ in range(_BOOTSTRAP):
        picked = draw(rounds, k=len(ours))
        ratios.append(statistics.median(ours[i] for i in picked) / statistics.median(floor[i] for i in picked))
    bounds = statistics.quantiles(ratios, n=40)
    return bounds[0], bounds[-1]


def _x_floor_check(
    name: str, suite: Suite, timings: Timings, variant: str = COSTSPAN, target: float = CALL_TARGET
) -> Check:
    row = {row.variant: row for row in summarize(suite, timings[suite.key])}[variant]
    assert row.x_floor is not None
    ci95 = _x_floor_ci95(suite, timings[suite.key], variant)
    return Check(name, row.x_floor, ci95, target, "x the floor", f"at most {target}x")


def _chunk_alone_check(
    variant: str, what: str, target: float, isolated: Suite, chunks: Suite, timings: Timings
) -> Check:
    """Per round, the isolated stream's overhead per chunk less the isolated call's overhead spread over the
    stream's chunks: what costspan does per chunk, its per-call work taken out."""
    per_call = _overheads(isolated, timings[isolated.key][variant], timings[isolated.key][BASELINE])
    per_chunk = _overheads(chunks, timings[chunks.key][variant], timings[chunks.key][BASELINE])
    alone = [chunk - call / chunks.units_per_call for chunk, call in zip(per_chunk, per_call, strict=True)]
    name = f"own work per chunk, alone, {what}"
    return Check(name, statistics.median(alone), _median_ci95(alone), target, " us", f"under {target:g} us")


full = "overhead per call, alone, with the ledger and a memory budget"


def targets(call: Suite, stream: Suite, isolated: Suite, chunks: Suite, timings: Timings) -> dict[str, Any]:
    """costspan against the issue's targets, and its stream overhead split into the usage chunk and the rest."""
    stream_rows = {row.variant: row for row in summarize(stream, timings[stream.key])}
    base_chunk_us = stream_rows[BASELINE].per_unit_us
    chunk = stream_rows[COSTSPAN]
    assert chunk.overhead_pct is not None and chunk.ci95_us is not None
    low, high = (100 * bound / base_chunk_us for bound in chunk.ci95_us)
    stream_times = timings[stream.key]
    rest = _overheads(stream, stream_times[COSTSPAN], stream_times[USAGE_BASELINE])
    checks = [
        _x_floor_check("overhead per call, in the SDK call", call, timings),
        _x_floor_check("overhead per call, alone", isolated, timings),
        *(
            [_x_floor_check(full, isolated, timings, COSTSPAN_LEDGER_BUDGET, FULL_CALL_TARGET)]
            if COSTSPAN_LEDGER_BUDGET in timings[isolated.key]
            else []
        ),
        Check(
            "overhead per chunk",
            chunk.overhead_pct,
            (low, high),
            CHUNK_TARGET,
            "% of the uninstrumented chunk",
            f"under {CHUNK_TARGET:g}%",
        ),
        *(
            _chunk_alone_check(variant, what, target, isolated, chunks, timings)
            for variant, what, target in CHUNK_ALONE_TARGETS
            if variant in timings[chunks.key]
        ),
    ]
    isolated_rows = {row.variant: row for row in summarize(isolated, timings[isolated.key])}
    return {
        "checks": [check.as_dict() for check in checks],
        # What the floor's overhead per call (alone) is made of: the span, and the metric records SPEC.md asks for.
        "floor_parts_us": {
            part: isolated_rows[name].overhead_us
            for part, name in (("floor", FLOOR), ("span", FLOOR_SPAN), ("metrics", FLOOR_METRICS))
        },
        "chunk_us": chunk.overhead_us,
        "chunk_usage_chunk_us": stream_rows[USAGE_BASELINE].overhead_us,
        "chunk_rest_us": statistics.median(rest),
    }


def _pair(values: tuple[float, float] | None) -> str:
    return "-" if values is None else f"[{values[0]:7.2f}, {values[1]:7.2f}]"


def _cell(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _line(row: Row) -> str:
    return (
        f"{row.variant:<28}{row.per_unit_us:>10.2f}{_cell(row.overhead_us, '.2f'):>10}"
        f"{_pair(row.ci95_us):>20}{_pair(row.iqr_us):>20}"
        f"{_cell(row.overhead_pct, '.2f', '%'):>10}{_cell(row.x_floor, '.2f', 'x'):>9}"
    )


def format_suite(suite: Suite, rows: Sequence[Row]) -> str:
    header = (
        f"{'variant':<24}{'us/' + suite.unit:>10}{'overhead':>10}{'95% CI of median':>20}"
        f"{'IQR':>20}{'% of base':>10}{'vs floor':>9}"
    )
    return "\n".join([header, *(_line(row) for row in rows)])


def _md_pair(values: tuple[float, float] | None) -> str:
    return "-" if values is None else f"[{values[0]:.2f}, {values[1]:.2f}]"


def markdown_suite(suite: Suite, rows: Sequence[Row]) -> str:
    """The suite's rows as a markdown table (the README's results block)."""
    lines = [
        f"| variant | us/{suite.unit} | overhead | 95% CI of median | IQR | % of base | vs floor |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.variant} | {row.per_unit_us:.2f} | {_cell(row.overhead_us, '.2f')} | {_md_pair(row.ci95_us)} "
            f"| {_md_pair(row.iqr_us)} | {_cell(row.overhead_pct, '.2f', '%')} | {_cell(row.x_floor, '.2f', 'x')} |"
        )
    return "\n".join(lines)
