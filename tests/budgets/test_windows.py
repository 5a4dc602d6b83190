"""Calendar windows roll over at the wall-clock boundary of the budget's time zone, daylight-saving changes
included: spend settled in one window is gone the instant the next begins, and not an instant before."""

from __future__ import annotations

from datetime import datetime

import pytest
from budgets.helpers import Clock, Stores, Way


def utc(text: str) -> float:
    return datetime.fromisoformat(text + "+00:00").timestamp()


# (zone, window, the window's start and end in UTC, its length in hours). New York's clocks go forward on
# Sunday 2026-03-08 at 02:00 EST (07:00Z) and back on Sunday 2026-11-01 at 02:00 EDT (06:00Z).
WINDOWS = [
    ("UTC", "hour", "2026-03-08T06:00", "2026-03-08T07:00", 1),
    ("UTC", "day", "2026-03-08T00:00", "2026-03-09T00:00", 24),
    ("UTC", "week", "2026-03-02T00:00", "2026-03-09T00:00", 168),
    ("UTC", "month", "2026-02-01T00:00", "2026-03-01T00:00", 672),
    ("America/New_York", "day", "2026-03-08T05:00", "2026-03-09T04:00", 23),
    ("America/New_York", "day", "2026-11-01T04:00", "2026-11-02T05:00", 25),
    ("America/New_York", "hour", "2026-03-08T06:00", "2026-03-08T07:00", 1),  # 01:00 EST, then 03:00 EDT
    ("America/New_York", "hour", "2026-11-01T05:00", "2026-11-01T06:00", 1),  # 01:00 EDT, the first one
    ("America/New_York", "hour", "2026-11-01T06:00", "2026-11-01T07:00", 1),  # 01:00 EST, the second one
    ("America/New_York", "week", "2026-03-02T05:00", "2026-03-09T04:00", 167),
    ("America/New_York", "week", "2026-10-26T04:00", "2026-11-02T05:00", 169),
    ("America/New_York", "month", "2026-03-01T05:00", "2026-04-01T04:00", 743),
    ("America/New_York", "month", "2026-11-01T04:00", "2026-12-01T05:00", 721),
    ("Asia/Kolkata", "day", "2026-03-07T18:30", "2026-03-08T18:30", 24),
]


@pytest.mark.parametrize(
    ("zone", "window", "start", "end", "hours"),
    WINDOWS,
    ids=[f"{zone}-{window}-{start[:10]}-{hours}h" for zone, window, start, end, hours in WINDOWS],
)
async def test_window_rolls_over_at_its_boundary(
    stores: Stores, way: Way, zone: str, window: str, start: str, end: str, hours: int
) -> None:
    began, ends = utc(start), utc(end)
    assert ends - began == hours * 3600
    clock = Clock(began)
    budget = stores.budget(10.0, window, timezone=zone, clock=clock, thresholds=(0.1,))
    assert await way.settle(budget, await way.reserve(budget, None, 2.5), 2.5) == (0.1,)
    clock.now = ends - 0.001
    assert await way.spent(budget) == 2.5
    clock.now = ends
    assert (await way.spent(budget), await way.remaining(budget)) == (0.0, 10.0)
    assert await way.settle(budget, await way.reserve(budget, None, 1.0), 1.0) == (0.1,)  # fires again: new window
    clock.now = began - 0.001
    assert await way.spent(budget) == 0.0
    clock.now = began + 1
    assert await way.spent(budget) == 2.5


async def test_a_call_counts_in_the_window_it_was_reserved_in(stores: Stores, way: Way) -> None:
    """A call reserved at 23:59:59 and settled after midnight is yesterday's spend, whole."""
    clock = Clock(utc("2026-03-08T23:59:59"))
    budget = stores.budget(10.0, "day", clock=clock)
    reservation = await way.reserve(budget, None, 3.0)
    clock.now = utc("2026-03-09T00:00:03")
    assert (await way.reserved(budget), await way.spent(budget)) == (0.0, 0.0)
    await way.settle(budget, reservation, 2.0)
    assert await way.spent(budget) == 0.0
    clock.now = utc("2026-03-08T23:59:59")
    assert (await way.spent(budget), await way.reserved(budget)) == (2.0, 0.0)


async def test_no_window_is_a_lifetime_total(stores: Stores, way: Way) -> None:
    clock = Clock(utc("2026-01-01T00:00"))
    budget = stores.budget(10.0, None, clock=clock)
    await way.settle(budget, await way.reserve(budget, None, 4.0), 4.0)
    clock.now = utc("2031-06-01T00:00")
    assert (await way.spent(budget), await way.remaining(budget)) == (4.0, 6.0)


async def test_scope_values_are_per_window(stores: Stores, way: Way) -> None:
    clock = Clock(utc("2026-03-08T10:00"))
    budget = stores.budget(10.0, "hour", scope="user.id", clock=clock)
    await way.settle(budget, await way.reserve(budget, "u-1", 1.0), 1.0)
    assert budget.scope_values() == ["u-1"]
    clock.now += 3600
    assert budget.scope_values() == []
