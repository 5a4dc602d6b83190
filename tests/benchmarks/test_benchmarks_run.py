"""The benchmarks still run against the code they measure (a renamed option once broke ``--providers`` unseen):
each mode once, at its smallest size, checking that it reports what its README says it does. Figures are not
judged here: they come from benchmark runs on a quiet machine, never from timed tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(*arguments: str, script: str = "overhead.py") -> str:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_overhead_runs_every_suite_and_checks_parity() -> None:
    out = _run("--rounds", "2", "--calls", "2", "--streams", "1", "--isolated-calls", "2")
    for title in (
        "Non-streaming",
        "Streaming",
        "costspan own work per chunk, alone, watched by a memory budget",
        "floor: the span alone",
        "floor: the metric records alone",
    ):
        assert title in out
    floor_parts = next(line for line in out.splitlines() if line.strip().startswith("of the floor's"))
    assert "the span" in floor_parts and "the metric records" in floor_parts
    assert "floor parity: costspan emits exactly the floor keys and records" in out


def test_overhead_of_gemini_and_bedrock_runs() -> None:
    out = _run("--providers", "--rounds", "1")
    for case in ("gemini generate_content_stream x250", "bedrock converse_stream x250"):
        line = next(line for line in out.splitlines() if line.strip().startswith(case))
        assert "us/chunk" in line and "us/stream beyond a call" in line


@pytest.mark.parametrize("at_once", [False, True], ids=["in-turn", "parallel"])
def test_memory_runs_each_variant_in_its_own_process(tmp_path: Path, at_once: bool) -> None:
    figures = tmp_path / "memory.json"
    arguments = ["--calls", "20", "--abandoned", "4", "--warmup", "10", "--samples", "2", "--json", str(figures)]
    arguments += ["--parallel"] if at_once else []
    out = _run(*arguments, "--variants", "baseline,costspan", script="memory.py")
    for line in ("| baseline | 20 | 4 |", "| costspan + ledger + memory budget | 20 | 4 |"):
        assert line in out
    assert "- RSS growth per 1,000 calls: costspan" in out
    assert "- costspan allocation sites growing linearly:" in out
    runs = {run["variant"]: run for run in json.loads(figures.read_text())["runs"]}
    assert [len(run["samples"]) for run in runs.values()] == [3, 3]
    # Each run pinned to one CPU; at once, to two different ones (where the machine has two).
    cpus = [run["cpus"] for run in runs.values()]
    assert all(len(pinned) == 1 for pinned in cpus)
    if at_once and len(os.sched_getaffinity(0)) > 1:
        assert cpus[0] != cpus[1]
    # Every instrumented call ended its span, the abandoned streams' too (the warm-up's 10 calls and 2 streams).
    assert runs["costspan + ledger + memory budget"]["spans"] == 36
    assert runs["baseline"]["spans"] == 0


def test_memory_untraced_prints_every_rss_sample_and_no_sites() -> None:
    """An untraced run (the RSS verdict) lists its samples, so that a step shows apart from a trend."""
    arguments = ["--calls", "20", "--abandoned", "4", "--warmup", "10", "--samples", "2", "--no-tracemalloc"]
    out = _run(*arguments, "--variants", "baseline,costspan", script="memory.py")
    assert "- costspan allocation sites: not traced (--no-tracemalloc)" in out
    assert "RSS at each sample, KiB above the first:" in out
    samples = next(line for line in out.splitlines() if line.startswith("- baseline (every 10 calls): "))
    assert len(samples.split(": ", 1)[1].split(", ")) == 3
    assert "Allocation sites" not in out
