"""A seeded ledger: rows as costspan writes them, on days and for users the report tests choose."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from costspan.ledger._schema import migrate

Seed = Callable[..., None]


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, Seed]:
    """(path, add): ``add(time, model, cost, user=None, **row)`` appends a row to the ledger at ``path``."""
    path = tmp_path / "ledger.db"
    connection = sqlite3.connect(path, isolation_level=None)
    migrate(connection)
    connection.close()

    def add(when: str, model: str, cost: float | None, user: str | None = None, **row: Any) -> None:
        values: dict[str, Any] = {
            "time": when,
            "trace_id": "0" * 32,
            "span_id": f"{abs(hash((when, model, cost, user, str(row)))):016x}"[:16],
            "provider": "anthropic" if model.startswith("claude") else "openai",
            "operation": "chat",
            "request_model": model,
            "input_tokens": 1000,
            "output_tokens": 100,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "reasoning_tokens": 0,
            "cost_usd": cost,
            "unpriced": int(cost is None),
            "user_id": user,
            "scope": "costspan.instrumentor",
            **row,
        }
        if isinstance(values.get("attributes"), dict):
            values["attributes"] = json.dumps(values["attributes"])
        connection = sqlite3.connect(path)
        with connection:
            connection.execute(
                f"INSERT INTO calls ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                list(values.values()),
            )
        connection.close()

    return path, add
