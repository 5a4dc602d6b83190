"""The memory store stays bounded: windows are dropped after they end, and its cap on (scope value, window)
counters never forgets a current window's spend."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from budgets.helpers import Clock

from costspan.budgets import Budget, BudgetStoreError, _memory


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


@pytest.mark.parametrize("policy", ["allow", "block"])
def test_a_full_store_never_forgets_spend(policy: str, caplog: pytest.LogCaptureFixture) -> None:
    """Defect 10: past ``max_scope_values`` a new scope value gets the ``on_store_error`` policy (let through
    unchecked and counted, or refused) and every current value keeps its spend; once a window ends, its
    counters make room, and what was let through is counted then."""
    clock = Clock(datetime.fromisoformat("2026-03-08T10:00:00+00:00").timestamp())
    budget = Budget(10.0, "hour", scope="user.id", max_scope_values=4, on_store_error=policy, clock=clock)
    for index in range(4):
        budget.settle(budget.reserve(f"u-{index}", 1.0), 1.0)
    for _ in range(3):
        if policy == "block":
            with pytest.raises(BudgetStoreError, match="max_scope_values"):
                budget.reserve("u-new", 1.0)
        else:
            reservation = budget.reserve("u-new", 1.0)
            assert not reservation.stored
            budget.settle(reservation, 1.0)
    assert [budget.spent(f"u-{index}") for index in range(4)] == [1.0] * 4, "no current spend forgotten"
    assert counters(budget) == 4
    assert budget.unchecked == (3 if policy == "allow" else 0)
    assert len(_warnings(caplog)) == 2  # the store's, once; the outage's, once
    clock.now += 3600  # the window ends: its counters make room for the next one's
    budget.settle(budget.reserve("u-0", 0.5), 0.5)
    assert budget.spent("u-0") == 0.5
    assert budget.journaled == 0  # the settlement above applied the journal first: the store has room again


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "costspan" and r.levelno == logging.WARNING]
