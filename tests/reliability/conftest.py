"""The reliability suite's figures: each test adds what it drove and measured; with COSTSPAN_RELIABILITY_FIGURES
set (scripts/reliability-report sets it) they are written there as JSON when the session ends, for the table in
docs/reliability.md. Sizes: the CI run drives a tenth of what COSTSPAN_SOAK=1 drives."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SOAK = os.environ.get("COSTSPAN_SOAK") == "1"


class Figures:
    """Figures by name: counts add up over tests, latencies and growths keep their largest value."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def count(self, name: str, amount: int) -> None:
        self.values[name] = self.values.get(name, 0) + amount

    def largest(self, name: str, value: float) -> None:
        self.values[name] = max(self.values.get(name, value), value)


_figures = Figures()


@pytest.fixture(scope="session")
def figures() -> Iterator[Figures]:
    yield _figures
    target = os.environ.get("COSTSPAN_RELIABILITY_FIGURES")
    if target:
        Path(target).write_text(json.dumps(_figures.values, indent=1, sort_keys=True), encoding="utf-8")
