"""Reading a ledger file in tests, as a user's own SQL would."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["rows"]


def rows(path: Path, where: str = "1") -> list[dict[str, Any]]:
    connection = sqlite3.connect(path)
    connection.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in connection.execute(f"SELECT * FROM calls WHERE {where} ORDER BY id")]
    finally:
        connection.close()
