"""The memory store stays bounded: windows are dropped after they end, settled reservations leave nothing
behind, and its cap on (scope value, window) counters never forgets a current window's spend."""

from __future__ import annotations

import collections
import logging
import tracemalloc
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


# What the memory store keeps, and the reservation ids it keeps them by. Not every file of costspan/budgets: an
# earlier test's Redis budget may still be retrying its journal on a thread of its own meanwhile.
_STORE_FILES = ("costspan/budgets/_memory.py", "costspan/budgets/_stores.py")


def _budget_bytes(snapshot: tracemalloc.Snapshot) -> int:
    stats = snapshot.statistics("filename")
    return sum(stat.size for stat in stats if stat.traceback[0].filename.endswith(_STORE_FILES))


def test_settled_reservations_leave_nothing_behind() -> None:
    """benchmarks/memory.py found it: every settled reservation kept its expiry entry (and its id) in the store
    until reservation_ttl later, 15 minutes by default, about 130 bytes per call. Now what the store keeps is
    proportional to the calls in flight (here 20 at a time), and expiry still finds a reservation never settled."""
    clock = Clock(datetime.fromisoformat("2026-03-08T10:00:00+00:00").timestamp())
    budget = Budget(1000.0, "day", clock=clock, reservation_ttl=900)
    in_flight: collections.deque = collections.deque()

    def calls(count: int) -> None:
        for _ in range(count):
            in_flight.append(budget.reserve(None, 0.002))
            if len(in_flight) == 20:
                budget.settle(in_flight.popleft(), 0.001)
            clock.now += 0.001

    calls(1_000)
    tracemalloc.start()
    try:
        before = _budget_bytes(tracemalloc.take_snapshot())
        calls(10_000)
        after = _budget_bytes(tracemalloc.take_snapshot())
    finally:
        tracemalloc.stop()
    assert after - before < 16 * 1024, f"the budget's store grew by {after - before} bytes over 10,000 calls"
    assert budget.reserved() == pytest.approx(19 * 0.002)
    assert budget.spent() == pytest.approx(10_981 * 0.001)
    clock.now += 901  # the 19 never settled expire
    assert budget.reserved() == 0.0


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
