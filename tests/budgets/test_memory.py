"""The memory store stays bounded: windows are dropped after they end, and past its cap on (scope value, window)
counters the least recently used one without a call in flight is forgotten, with one warning."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from budgets.helpers import Clock

from costspan.budgets import Budget, _memory


def counters(budget: Budget) -> int:
    """How many (scope value, window) counters the budget's memory store holds."""
    store = budget._store
    assert isinstance(store, _memory.MemoryStore)
    return len(store)


def test_old_windows_are_dropped() -> None:
    clock = Clock(datetime.fromisoformat("2026-03-08T10:00:00+00:00").timestamp())
    budget = Budget(10.0, "hour", scope="user.id", clock=clock, reservation_ttl=600)
    for _ in range(48):
        for user in ("u-1", "u-2", "u-3"):
            budget.settle(budget.reserve(user, 0.1), 0.1)
        clock.now += 3600
    # Kept: the window itself and the ones that ended less than reservation_ttl + 1 hour (+ a minute) ago.
    assert counters(budget) <= 3 * 4
    assert budget.spent("u-1") == 0.0


def test_past_the_cap_the_least_recently_used_is_forgotten(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_memory, "MAX_SLOTS", 4)
    budget = Budget(10.0, scope="user.id")
    in_flight = budget.reserve("u-0", 1.0)
    for index in range(1, 8):
        budget.settle(budget.reserve(f"u-{index}", 1.0), 1.0)
    assert counters(budget) == 4
    assert budget.spent("u-7") == 1.0
    assert budget.reserved("u-0") == 1.0  # a call in flight keeps its counters
    budget.settle(in_flight, 1.0)
    assert budget.spent("u-0") == 1.0
    assert budget.spent("u-1") == 0.0  # forgotten: starts again from $0
    assert [r.getMessage() for r in caplog.records if r.name == "costspan" and r.levelno == logging.WARNING] == [
        f"costspan: budget {budget.name!r} tracks more than 4 scope values in memory; the least recently used are "
        "forgotten (their spend starts again from $0). Use a Redis store for this many."
    ]
