"""The benchmarks still run against the code they measure (a renamed option once broke ``--providers`` unseen):
each mode once, at its smallest size, checking that it reports what its README says it does. Figures are not
judged here: they come from benchmark runs on a quiet machine, never from timed tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(*arguments: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "overhead.py"), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_overhead_runs_every_suite_and_checks_parity() -> None:
    out = _run("--rounds", "2", "--calls", "2", "--streams", "1", "--isolated-calls", "2")
    for title in ("Non-streaming", "Streaming", "costspan own work per chunk, alone, watched by a memory budget"):
        assert title in out
    assert "floor parity: costspan emits exactly the floor keys and records" in out


def test_overhead_of_gemini_and_bedrock_runs() -> None:
    out = _run("--providers", "--rounds", "1")
    for case in ("gemini generate_content_stream x250", "bedrock converse_stream x250"):
        line = next(line for line in out.splitlines() if line.strip().startswith(case))
        assert "us/chunk" in line and "us/stream beyond a call" in line
