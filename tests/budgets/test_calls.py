"""What the call path asks of a budget, on every store, sync and async: reserve refuses what does not fit, alert
never refuses, extend grows a live reservation, settle replaces a reservation by the actual cost exactly once,
thresholds fire once, and spent / reserved / remaining say where the window stands."""

from __future__ import annotations

import logging
import math
import uuid
from typing import Any

import pytest
from budgets.helpers import RedisServer, Stores, Way
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costspan.budgets import Budget, BudgetExceededError, ThresholdEvent


async def test_reserve_refuses_past_the_limit_with_the_figures(stores: Stores, way: Way) -> None:
    budget = stores.budget(1.0, scope="user.id")
    held = await way.reserve(budget, "u-1", 0.25)
    await way.settle(budget, await way.reserve(budget, "u-1", 0.5), 0.5)
    with pytest.raises(BudgetExceededError) as raised:
        await way.reserve(budget, "u-1", 0.3)
    error = raised.value
    assert (error.budget, error.scope_value) == (budget.name, "u-1")
    assert (error.spent, error.reserved, error.limit, error.estimate) == (0.5, 0.25, 1.0, 0.3)
    assert str(error) == (
        f"budget {budget.name!r} for user.id='u-1' refused a call needing $0.300000: $0.500000 spent and "
        "$0.250000 reserved of its $1.000000 limit this day"
    )
    assert await way.reserve(budget, "u-1", 0.25)  # exactly up to the limit fits
    assert await way.reserve(budget, "u-2", 1.0)  # another scope value has its own limit
    assert held.stored


async def test_a_call_larger_than_the_whole_limit_is_refused(stores: Stores, way: Way) -> None:
    budget = stores.budget(1.0)
    with pytest.raises(BudgetExceededError, match=r"refused a call needing \$1.000001: \$0.000000 spent"):
        await way.reserve(budget, None, 1.000001)
    assert await way.reserved(budget) == 0


async def test_alert_never_refuses_but_counts_and_fires(stores: Stores, way: Way) -> None:
    events: list[ThresholdEvent] = []
    budget = stores.budget(1.0, action="alert", on_threshold=events.append)
    first = await way.reserve(budget, None, 0.75)
    second = await way.reserve(budget, None, 0.75)
    assert await way.reserved(budget) == 1.5
    assert await way.extend(budget, second, 5.0)
    assert await way.settle(budget, first, 0.75) == (0.5,)
    assert await way.settle(budget, second, 2.0) == (0.8, 1.0)
    assert (await way.spent(budget), await way.remaining(budget)) == (2.75, 0.0)
    assert [(event.threshold, event.spent) for event in events] == [(0.5, 0.75), (0.8, 2.75), (1.0, 2.75)]


async def test_settle_replaces_the_reservation_exactly_once(stores: Stores, way: Way) -> None:
    budget = stores.budget(1.0)
    reservation = await way.reserve(budget, None, 0.6)
    assert (await way.spent(budget), await way.reserved(budget), await way.remaining(budget)) == (0.0, 0.6, 1.0)
    await way.settle(budget, reservation, 0.4)
    assert (await way.spent(budget), await way.reserved(budget), await way.remaining(budget)) == (0.4, 0.0, 0.6)
    assert reservation.settled
    assert await way.settle(budget, reservation, 0.4) == ()
    assert not await way.extend(budget, reservation, 0.1)
    assert (await way.spent(budget), await way.reserved(budget)) == (0.4, 0.0)


async def test_a_call_that_cost_nothing_frees_its_reservation(stores: Stores, way: Way) -> None:
    """A call that failed before any output settles at $0: nothing spent, nothing held."""
    budget = stores.budget(1.0)
    await way.settle(budget, await way.reserve(budget, None, 0.9), 0.0)
    assert (await way.spent(budget), await way.reserved(budget)) == (0.0, 0.0)
    assert await way.reserve(budget, None, 1.0)


async def test_extend_grows_a_live_reservation_until_it_no_longer_fits(stores: Stores, way: Way) -> None:
    budget = stores.budget(1.0)
    other = await way.reserve(budget, None, 0.5)
    stream = await way.reserve(budget, None, 0.25)
    assert await way.extend(budget, stream, 0.125)
    assert (stream.amount_usd, await way.reserved(budget)) == (0.375, 0.875)
    assert not await way.extend(budget, stream, 0.25)
    assert isinstance(stream.refusal, BudgetExceededError)
    assert (stream.refusal.spent, stream.refusal.reserved, stream.refusal.estimate) == (0.0, 0.875, 0.25)
    assert "stopped a call needing $0.250000 more: $0.000000 spent and $0.875000 reserved" in str(stream.refusal)
    assert (stream.amount_usd, await way.reserved(budget)) == (0.375, 0.875)
    await way.settle(budget, other, 0.5)
    await way.settle(budget, stream, 0.5)  # the partial cost of a stream cut mid-way
    assert (await way.spent(budget), await way.reserved(budget)) == (1.0, 0.0)


async def test_thresholds_fire_once_per_scope_value(stores: Stores, way: Way) -> None:
    events: list[ThresholdEvent] = []
    budget = stores.budget(10.0, scope="team", thresholds=(0.5, 0.8, 1.0), on_threshold=events.append)
    crossed = []
    for amount in (4.0, 1.0, 0.5, 2.5, 1.0):
        crossed.append(await way.settle(budget, await way.reserve(budget, "search", amount), amount))
    assert crossed == [(), (0.5,), (), (0.8,), ()]  # at $4, 5, 5.50, 8, 9
    assert await way.spent(budget, "search") == 9.0
    with pytest.raises(BudgetExceededError):
        await way.reserve(budget, "search", 3.0)
    assert await way.settle(budget, await way.reserve(budget, "search", 1.0), 1.0) == (1.0,)
    assert await way.settle(budget, await way.reserve(budget, "ads", 9.0), 9.0) == (0.5, 0.8)
    fired = [(event.scope_value, event.threshold, event.spent) for event in events]
    assert fired == [
        ("search", 0.5, 5.0),
        ("search", 0.8, 8.0),
        ("search", 1.0, 10.0),
        ("ads", 0.5, 9.0),
        ("ads", 0.8, 9.0),
    ]
    event = events[0]
    assert (event.budget, event.scope, event.limit) == (budget.name, "team", 10.0)
    assert event.window_start is not None and event.window_start.hour == 0


async def test_a_failing_on_threshold_does_not_break_the_call(
    stores: Stores, way: Way, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: ThresholdEvent) -> None:
        raise RuntimeError("pager down")

    budget = stores.budget(1.0, on_threshold=broken)
    assert await way.settle(budget, await way.reserve(budget, None, 0.6), 0.6) == (0.5,)
    assert await way.spent(budget) == 0.6
    assert [r.getMessage() for r in caplog.records if r.name == "costspan"] == [
        f"costspan: on_threshold of budget {budget.name!r} raised"
    ]


async def test_a_scoped_budget_needs_the_scope_value(stores: Stores, way: Way) -> None:
    budget = stores.budget(1.0, scope="user.id")
    with pytest.raises(ValueError, match=r"is kept per user.id: pass the call's user.id value"):
        await way.reserve(budget, None, 0.1)
    unscoped = stores.budget(1.0)
    await way.settle(unscoped, await way.reserve(unscoped, "ignored", 0.1), 0.1)
    assert await way.spent(unscoped) == 0.1
    assert unscoped.scope_values() == []


async def test_scope_values_seen_in_the_window(stores: Stores, way: Way) -> None:
    budget = stores.budget(5.0, scope="user.id")
    for user in ("u-1", "u-2", "u-1", "u-3"):
        await way.settle(budget, await way.reserve(budget, user, 0.1), 0.1)
    assert await way.spent(budget, "u-4") == 0.0  # reading does not make a scope value seen
    assert budget.scope_values() == ["u-1", "u-2", "u-3"]


async def test_scope_values_are_bounded(stores: Stores, way: Way) -> None:
    budget = stores.budget(5.0, scope="user.id", max_scope_values=3)
    for index in range(5):
        await way.settle(budget, await way.reserve(budget, f"u-{index}", 0.1), 0.1)
    assert budget.scope_values() == ["u-2", "u-3", "u-4"]


@pytest.mark.parametrize("amount", [-0.01, math.nan, math.inf, "0.1"])
async def test_a_bad_amount_is_refused_by_name(stores: Stores, way: Way, amount: Any) -> None:
    budget = stores.budget(1.0)
    with pytest.raises(ValueError, match=f"a budget amount must be a finite number of USD >= 0, not {amount!r}"):
        await way.reserve(budget, None, amount)


async def test_a_reservation_belongs_to_its_budget(stores: Stores, way: Way) -> None:
    first, second = stores.budget(1.0), stores.budget(1.0)
    reservation = await way.reserve(first, None, 0.1)
    with pytest.raises(ValueError, match=f"reservation of budget {first.name!r} given to budget {second.name!r}"):
        await way.settle(second, reservation, 0.1)


async def test_two_budgets_of_one_name_share_their_state(redis_server: Any, way: Way) -> None:
    """Two processes (here two objects) configured alike on one Redis see the same numbers. A settlement is
    applied just after it returns, off the calling thread; a read through the object that settled applies it first,
    and the other sees the call as reserved until then (docs/budgets.md)."""
    name = f"shared-{uuid.uuid4()}"
    first, second = (Budget(3.0, scope="user.id", store=redis_server.url, name=name) for _ in "ab")
    await way.settle(first, await way.reserve(first, "u-1", 1.0), 1.0)
    held = await way.reserve(second, "u-1", 1.5)
    assert (await way.spent(first, "u-1"), await way.spent(second, "u-1")) == (1.0, 1.0)
    assert (await way.reserved(first, "u-1"), await way.reserved(second, "u-1")) == (1.5, 1.5)
    with pytest.raises(BudgetExceededError):
        await way.reserve(first, "u-1", 0.6)
    await way.settle(first, held, 1.5)  # settled through the other object: same name, same state
    assert (await way.spent(first, "u-1"), await way.spent(second, "u-1")) == (2.5, 2.5)


@pytest.mark.parametrize(("name", "scope_value"), [("cap", "u-1"), ("a{b}c|d", "}{x}"), ("{", "%7B")])
async def test_a_budgets_keys_share_one_cluster_slot(
    cluster_redis: RedisServer, way: Way, name: str, scope_value: str
) -> None:
    """On Redis Cluster a script's keys must hash to one slot: names and scope values with braces (which delimit
    hash tags) and escapes included."""
    budget = Budget(1.0, scope="user.id", store=cluster_redis.url, name=f"{name}-{uuid.uuid4()}")
    await way.settle(budget, await way.reserve(budget, scope_value, 0.5), 0.5)
    assert await way.extend(budget, await way.reserve(budget, scope_value, 0.1), 0.1)
    assert (await way.spent(budget, scope_value), await way.reserved(budget, scope_value)) == (0.5, 0.2)
    assert budget.store_errors == 0


@pytest.mark.parametrize("kind", ["memory", "redis"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(costs=st.lists(st.floats(0, 50, allow_nan=False), max_size=30))
def test_spent_is_the_exact_sum_of_the_rounded_costs(kind: str, costs: list[float], redis_server: Any) -> None:
    """Costs round to the nearest nanodollar, ties to even; the sum of those is kept exactly."""
    budget = Budget(1e6, store=None if kind == "memory" else redis_server.url, name=f"sum-{uuid.uuid4()}")
    for cost in costs:
        budget.settle(budget.reserve(None, cost), cost)
    assert budget.spent() == sum(round(cost * 1_000_000_000) for cost in costs) / 1_000_000_000


async def test_large_amounts_are_exact(stores: Stores, way: Way) -> None:
    """Amounts above 1e14 nanodollars, which Lua would print in exponent form, still count to the nanodollar."""
    budget = stores.budget(9_000_000.0)
    for cost in (4_000_000.125, 4_999_999.875):
        await way.settle(budget, await way.reserve(budget, None, cost), cost)
    assert await way.spent(budget) == 9_000_000.0
    assert await way.remaining(budget) == 0.0


async def test_logs_nothing_when_all_is_well(stores: Stores, way: Way, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "costspan")
    budget = stores.budget(1.0)
    await way.settle(budget, await way.reserve(budget, None, 0.1), 0.1)
    # Earlier tests' budgets may still be retrying their journals in the background, logging their own names.
    others = [name for name in _names_in(caplog.records) if name != budget.name]
    assert [r for r in caplog.records if r.name == "costspan" and not any(n in r.getMessage() for n in others)] == []
    assert budget.store_errors == 0


def _names_in(records: list[logging.LogRecord]) -> set[str]:
    """The budget names the journal's log lines ("budget %r journal: ...") give."""
    return {str(r.args[0]) for r in records if r.msg.startswith("costspan: budget %r journal") and r.args}
