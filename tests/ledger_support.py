"""Reading a ledger file in tests, as a user's own SQL would."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servers import in_ci

__all__ = ["read_only_directory", "rows"]


def rows(path: Path, where: str = "1") -> list[dict[str, Any]]:
    connection = sqlite3.connect(path)
    connection.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in connection.execute(f"SELECT * FROM calls WHERE {where} ORDER BY id")]
    finally:
        connection.close()


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
