"""A budget's Redis stopped, slow or restarted: with on_store_error="allow" calls go on, with one warning per
outage and a fraction of a second added at most; with "block" they are refused with an error that names the
store (never its password) and the failure; once Redis answers again the same Budget works again."""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from budgets.helpers import PASSWORD, RedisServer, SlowProxy, Way
from redis.backoff import NoBackoff
from redis.retry import Retry

from costspan.budgets import Budget, BudgetStoreError, Reservation

SLOW = 1.0  # seconds, well past the client's 0.25 s timeout: Redis is effectively stalled


def costspan_records(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "costspan" and record.levelno == level]


async def timed_call(way: Way, budget: Budget, amount: float) -> tuple[Reservation, float]:
    """One call's budget work (reserve then settle), and how long it took."""
    began = time.monotonic()
    reservation = await way.reserve(budget, None, amount)
    await way.settle(budget, reservation, amount)
    return reservation, time.monotonic() - began


async def until_stored(way: Way, budget: Budget, amount: float) -> Reservation:
    deadline = time.monotonic() + 5
    while not (reservation := await way.reserve(budget, None, amount)).stored:
        assert time.monotonic() < deadline, "the budget never used its store again"
        await way.settle(budget, reservation, 0.0)
    return reservation


def budget_on(url: str, **options: object) -> Budget:
    return Budget(10.0, store=url, name=f"outage-{time.time_ns()}", **options)  # type: ignore[arg-type]


async def test_allow_goes_on_while_redis_is_down_and_recovers(
    own_redis: RedisServer, way: Way, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "costspan")
    budget = budget_on(own_redis.url, on_store_error="allow")
    await way.settle(budget, await way.reserve(budget, None, 1.0), 1.0)
    assert await way.spent(budget) == 1.0  # applied before the outage (it is lost with the server's memory)
    stream = await way.reserve(budget, None, 0.5)
    own_redis.stop()
    assert await way.extend(budget, stream, 0.25)  # a stream goes on
    assert stream.amount_usd == 0.75
    await way.settle(budget, stream, 0.75)
    for _ in range(4):
        reservation, took = await timed_call(way, budget, 0.5)
        assert not reservation.stored
        assert took < 1.0
    assert budget.store_errors == 10  # every reserve and settle that could not reach the store
    [warning] = costspan_records(caplog)
    # A pooled connection learns of it as "Connection closed by server", a new one as "Connection refused".
    assert re.fullmatch(
        rf"costspan: budget {budget.name!r} cannot use its store redis://:\*\*\*@127.0.0.1:{own_redis.port}/0 "
        r"\(ConnectionError: .*(closed by server|Connection refused)\.\); "
        r"calls are let through unchecked \(on_store_error='allow'\) until it answers",
        warning.getMessage(),
    )
    with pytest.raises(BudgetStoreError, match="could not read its spend this day: its store redis://:\\*\\*\\*@"):
        await way.spent(budget)
    own_redis.start()  # same port, empty (no persistence): the 1.0 settled before the outage is gone
    await way.settle(budget, await until_stored(way, budget, 0.25), 0.25)
    journal_applied(budget)  # what was settled during the outage counts, once: 0.75 + 4 x 0.5
    assert round(await way.spent(budget), 9) == 3.0
    assert [r.getMessage() for r in costspan_records(caplog, logging.INFO)] == [
        f"costspan: budget {budget.name!r} store redis://:***@127.0.0.1:{own_redis.port}/0 answers again"
    ]
    assert len(costspan_records(caplog)) == 1
    assert not any(PASSWORD in record.getMessage() for record in caplog.records)


async def test_block_refuses_while_redis_is_down_and_recovers(
    own_redis: RedisServer, way: Way, caplog: pytest.LogCaptureFixture
) -> None:
    budget = budget_on(own_redis.url, on_store_error="block")
    in_flight = await way.reserve(budget, None, 1.0)
    stream = await way.reserve(budget, None, 0.5)
    own_redis.stop()
    assert not await way.extend(budget, stream, 0.25)  # a stream is cut
    assert isinstance(stream.refusal, BudgetStoreError)
    assert f"{budget.name!r} stopped a call needing $0.250000 more: its store redis://:***@" in str(stream.refusal)
    assert await way.settle(budget, stream, 0.6) == ()
    assert await way.settle(budget, in_flight, 1.0) == ()  # the money is spent: settling never raises
    for _ in range(3):
        began = time.monotonic()
        with pytest.raises(BudgetStoreError) as raised:
            await way.reserve(budget, None, 0.5)
        assert time.monotonic() - began < 1.0
    error = raised.value
    assert (error.budget, error.scope_value, error.limit, error.estimate) == (budget.name, None, 10.0, 0.5)
    assert math.isnan(error.spent) and math.isnan(error.reserved)
    assert re.fullmatch(
        rf"budget {budget.name!r} refused a call needing \$0.500000: its store redis://:\*\*\*@127.0.0.1:"
        rf"{own_redis.port}/0 failed \(ConnectionError: .*(closed by server|Connection refused)\.\); "
        "on_store_error='block' refuses calls while it is down",
        str(error),
    )
    assert len(costspan_records(caplog)) == 1
    own_redis.start()
    deadline = time.monotonic() + 5
    while True:
        try:
            reservation = await way.reserve(budget, None, 0.5)
            break
        except BudgetStoreError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    await way.settle(budget, reservation, 0.5)
    journal_applied(budget)  # the two settled during the outage count too, once each: 0.6 + 1.0
    assert round(await way.spent(budget), 9) == 2.1


@pytest.mark.parametrize("policy", ["allow", "block"])
async def test_a_slow_redis_costs_one_short_timeout(
    own_redis: RedisServer, slow_proxy: SlowProxy, way: Way, policy: str, caplog: pytest.LogCaptureFixture
) -> None:
    budget = budget_on(f"redis://:{PASSWORD}@127.0.0.1:{slow_proxy.port}/0", on_store_error=policy)
    await way.settle(budget, await way.reserve(budget, None, 1.0), 1.0)
    slow_proxy.delay = SLOW
    took = []
    for _ in range(4):
        began = time.monotonic()
        if policy == "allow":
            assert not (await way.reserve(budget, None, 0.5)).stored
        else:
            with pytest.raises(BudgetStoreError, match=r"failed \(TimeoutError: Timeout reading from"):
                await way.reserve(budget, None, 0.5)
        took.append(time.monotonic() - began)
    assert max(took) < 0.75, took  # the first call waits out the 0.25 s timeout; the others do not wait
    assert sum(took) < 1.0, took
    [warning] = costspan_records(caplog)
    assert "(TimeoutError: Timeout reading from" in warning.getMessage()
    slow_proxy.delay = 0
    await way.settle(
        budget, await until_stored(way, budget, 0.5) if policy == "allow" else await retry(way, budget), 0.5
    )
    assert await way.spent(budget) == 1.5


async def retry(way: Way, budget: Budget) -> Reservation:
    deadline = time.monotonic() + 5
    while True:
        try:
            return await way.reserve(budget, None, 0.5)
        except BudgetStoreError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_a_client_that_retries_counts_each_step_once(own_redis: RedisServer, slow_proxy: SlowProxy) -> None:
    """A user's client that retries on timeout delivers a reserve or a settle again when the reply is late: the
    scripts recognise the reservation, so three deliveries hold once and settle once."""
    client = redis.Redis(
        host="127.0.0.1",
        port=slow_proxy.port,
        password=PASSWORD,
        socket_timeout=0.3,
        retry=Retry(NoBackoff(), 2),
        retry_on_error=[redis.TimeoutError],
    )
    budget = Budget(10.0, store=client, name=f"retried-{time.time_ns()}")
    budget.settle(budget.reserve(None, 0.1), 0.1)  # connected, scripts loaded
    assert budget.spent() == 0.1  # the settlement applied (the journal's thread had it)
    with delivered_three_times(own_redis, slow_proxy):
        late = budget.reserve(None, 1.0)  # no reply in time: the call goes on unchecked
    assert not late.stored
    assert budget.reserved() == 1.0
    budget.settle(late, 0.75)
    assert (budget.spent(), budget.reserved()) == (0.85, 0.0)
    settling = budget.reserve(None, 0.5)
    with delivered_three_times(own_redis, slow_proxy, counted=False):  # the journal delivers it too
        # Past its reservation, so settled on this thread; no reply in time: kept in the journal.
        assert budget.settle(settling, 0.6) == ()
    journal_applied(budget)
    assert (budget.spent(), budget.reserved()) == (1.45, 0.0)
    client.close()


def journal_applied(budget: Budget) -> None:
    deadline = time.monotonic() + 10
    while budget.journaled:
        assert time.monotonic() < deadline, "the journal was never applied"
        time.sleep(0.05)


@contextmanager
def delivered_three_times(server: RedisServer, proxy: SlowProxy, counted: bool = True) -> Iterator[None]:
    """Replies to scripts come too late within the block; after it, the late ones have landed and the failed
    store is due to be tried again."""
    admin = server.client()
    before = admin.info("commandstats")["cmdstat_evalsha"]["calls"]
    proxy.script_delay = 0.5
    yield
    proxy.script_delay = 0
    time.sleep(1.1)
    assert not counted or admin.info("commandstats")["cmdstat_evalsha"]["calls"] - before == 3
    admin.close()
