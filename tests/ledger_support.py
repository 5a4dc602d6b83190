"""Reading a ledger file in tests, as a user's own SQL would."""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from costspan.ledger._schema import MIGRATIONS
from servers import in_ci

__all__ = ["assert_report_lines", "read_only_directory", "rows", "shows", "version_1_ledger"]


def rows(path: Path, where: str = "1") -> list[dict[str, Any]]:
    connection = sqlite3.connect(path)
    connection.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in connection.execute(f"SELECT * FROM calls WHERE {where} ORDER BY id")]
    finally:
        connection.close()


def version_1_ledger(path: Path, **row: Any) -> None:
    """A ledger at ``path`` as the first schema left it, holding one call: ``row``'s columns, with its time
    (2025-01-15T10:00Z), trace and span ids filled in; owner-only, as costspan created it."""
    row = {"time": "2025-01-15T10:00:00.000000Z", "trace_id": "t", "span_id": "s", **row}
    connection = sqlite3.connect(path)
    try:
        connection.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
        marks = ", ".join("?" * len(row))
        connection.execute(f"INSERT INTO calls ({', '.join(row)}) VALUES ({marks})", tuple(row.values()))
        connection.commit()
    finally:
        connection.close()
    path.chmod(0o600)


@contextlib.contextmanager
def read_only_directory(path: Path) -> Iterator[Path]:
    """``path`` made a directory nobody can write, root included: chattr +i as root (permission bits do not stop
    root), mode 0555 otherwise. Skips where neither works, except under CI=true, where it fails."""
    path.mkdir(exist_ok=True)
    as_root = os.geteuid() == 0
    if as_root:
        subprocess.run(["chattr", "+i", str(path)], check=False, capture_output=True)
    else:
        path.chmod(0o555)
    try:
        if _writable(path):
            message = f"cannot make {path} read-only here"
            if in_ci():
                pytest.fail(message)
            pytest.skip(message)
        yield path
    finally:
        if as_root:
            subprocess.run(["chattr", "-i", str(path)], check=False, capture_output=True)
        path.chmod(0o755)


def _writable(directory: Path) -> bool:
    try:
        (directory / "probe").touch()
    except OSError:
        return False
    (directory / "probe").unlink()
    return True


def shows(text: str, amount: float, error: float = 0.0) -> bool:
    """Whether ``text`` (``$...``) is ``amount`` as ``costspan report`` shows dollars: in cents from $0.10, with two
    significant digits below (never $0.00 for sub-cent spend). ``error``: how far ``amount`` itself may be off
    (when it was read from rounded output)."""
    assert text.startswith("$"), text
    step = 0.01 if amount >= 0.1 else 10.0 ** (math.floor(math.log10(amount)) - 1)
    return abs(float(text[1:].replace(",", "")) - amount) <= step / 2 + error


def assert_report_lines(lines: list[str], written: list[dict[str, Any]], key: str) -> None:
    """``lines`` are a report's ``NAME: N requests, $X`` lines for ``written`` rows grouped by their ``key``: one
    per value, most expensive first, each with its count and its summed cost."""
    groups: dict[str, list[float]] = defaultdict(list)
    for row in written:
        groups[row[key]].append(row["cost_usd"])
    shown = [line.split(": ", 1) for line in lines]
    assert [name for name, _ in shown] == sorted(groups, key=lambda name: -sum(groups[name]))
    for name, text in shown:
        count, cost = text.split(", ")
        costs = groups[name]
        assert count == (f"{len(costs)} requests" if len(costs) > 1 else "1 request")
        assert shows(cost, sum(costs)), (name, cost, sum(costs))
