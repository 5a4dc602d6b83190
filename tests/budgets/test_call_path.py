"""Budgets on real calls: the real SDK clients against the local provider server, instrumented with budgets in
memory and in a real Redis. A call that does not fit is never sent; every way a call ends replaces its
reservation by its cost, the same cost its span carries; a stream whose running cost outgrows what the budget
can grant is closed upstream and raises from its iterator."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import warnings
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest
import redis.asyncio.connection
import redis.connection
from budgets.helpers import PASSWORD, RedisServer, SlowProxy, Stores
from providers import ANTHROPIC, PROVIDERS, ProviderUnderTest

import costspan
from costspan.budgets import Budget, BudgetExceededError, BudgetStoreError
from costspan.testing import ProviderServer, Reply
from support import Driver, make_driver

MESSAGES = [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]
NANOS = 1_000_000_000


@pytest.fixture(params=PROVIDERS, ids=[p.name for p in PROVIDERS])
def provider(request: pytest.FixtureRequest) -> ProviderUnderTest:
    return request.param


@pytest.fixture(params=["sync", "async"])
def driver(
    request: pytest.FixtureRequest, provider: ProviderUnderTest, server: ProviderServer, otel: Any
) -> Iterator[Driver]:
    """A real client (sync or async) of the local server; the test instruments costspan with its budgets."""
    yield from make_driver(
        request.param,
        lambda: provider.client(server, otel.tracer_provider, {}),
        lambda: provider.async_client(server, otel.tracer_provider, {}),
    )


def _create(provider: ProviderUnderTest, driver: Driver, *, stream: bool = False, **options: Any) -> Any:
    """One call as users write it: ``create(...)``, or the inline ``for chunk in create(..., stream=True)``."""
    call = provider.create(driver.client, MESSAGES, stream=stream, **options)
    if not stream:
        return driver.run(call)
    return driver.collect(driver.run(call))


def _span_costs(otel: Any) -> list[float]:
    return [span.attributes.get("gen_ai.usage.cost.amount", 0.0) for span in otel.spans()]


def _nanos(amounts: list[float]) -> int:
    return sum(round(amount * NANOS) for amount in amounts)


def _settle_dropped(driver: Driver, otel: Any) -> None:
    """What a running application does for a stream nobody closed: collect it, and for an async one let its event
    loop close it, which settles the budget through the store's async client (a round trip or two)."""
    gc.collect()
    if driver.is_async:
        for _ in range(200):
            if otel.spans():
                return
            driver.run(asyncio.sleep(0.01))
            gc.collect()


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_call_that_does_not_fit_is_never_sent(
    provider: ProviderUnderTest,
    driver: Driver,
    stores: Stores,
    stream: bool,
    server: ProviderServer,
    otel: Any,
    instrument: Callable[..., None],
) -> None:
    budget = stores.budget(0.0001, name=f"tiny-{stores.kind}-{id(driver)}")
    instrument(budgets=[budget])
    with pytest.raises(BudgetExceededError) as refused:
        _create(provider, driver, stream=stream, max_tokens=1000)
    assert server.requests == [], "a refused call reached the provider"
    error = refused.value
    assert (error.budget, error.limit, error.spent, error.reserved) == (budget.name, 0.0001, 0.0, 0.0)
    assert error.estimate > 0.0001
    assert budget.name in str(error) and "refused a call needing" in str(error)
    span = otel.span()
    otel.lifecycle.assert_each_ended_once()
    assert span.attributes["error.type"] == "BudgetExceededError"
    assert "gen_ai.usage.input_tokens" not in span.attributes, "a call never sent used nothing"
    (event,) = [event for event in span.events if event.name == "costspan.budget.exceeded"]
    assert event.attributes["costspan.budget.name"] == budget.name
    blocked = otel.metrics()["costspan.budget.blocked"]
    assert [(p.value, dict(p.attributes)) for p in blocked] == [(1, {"costspan.budget.name": budget.name})]
    assert budget.spent() == budget.reserved() == 0.0


def test_stream_helper_that_does_not_fit_is_never_sent(
    stores: Stores, server: ProviderServer, otel: Any, instrument: Any
) -> None:
    """``async with client.messages.stream(...)``, refused as it is entered: nothing is sent, and the SDK's
    request coroutine, which the refusal never awaited, is closed rather than left to warn when collected."""
    budget = stores.budget(0.0001)
    instrument(budgets=[budget])

    async def main() -> None:
        client = ANTHROPIC.async_client(server, otel.tracer_provider, {})
        manager = client.messages.stream(model="claude-haiku-4-5", max_tokens=1000, messages=MESSAGES)
        with pytest.raises(BudgetExceededError):
            async with manager:
                pass
        await client.close()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(main())
        gc.collect()
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []
    assert server.requests == []
    assert otel.span().attributes["error.type"] == "BudgetExceededError"
    assert budget.reserved() == budget.spent() == 0.0


def test_spend_is_the_sum_of_the_spans_costs(
    provider: ProviderUnderTest, driver: Driver, stores: Stores, server: ProviderServer, otel: Any, instrument: Any
) -> None:
    """Plain calls and streams read inline, each settled once: the budget holds exactly what the spans say."""
    budget = stores.budget(100.0)
    per_user = stores.budget(50.0, scope="user.id")
    instrument(budgets=[budget, per_user])
    with costspan.attribution(user_id="u-7"):
        for stream in (False, True, False, True):
            server.push(Reply(text="one two three four", chunks=4, usage=provider.streams.usage))
            _create(provider, driver, stream=stream, max_tokens=64)
    costs = _span_costs(otel)
    assert len(costs) == 4 and all(cost > 0 for cost in costs)
    assert round(budget.spent() * NANOS) == _nanos(costs)
    assert round(per_user.spent("u-7") * NANOS) == _nanos(costs)
    assert budget.reserved() == per_user.reserved("u-7") == 0.0
    otel.lifecycle.assert_each_ended_once()


ENDINGS = {
    "success": Reply(chunks=6),
    "http-error": Reply(status=500),
    "timeout": Reply(delay=1.0),
    "dropped-connection": Reply(chunks=20, drop_after=3),
    "in-stream-error": Reply(chunks=20, error_after=3),
}


ENDING_CASES = [
    pytest.param(stream, ending, id=f"{'stream' if stream else 'json'}-{ending}")
    for stream in (False, True)
    for ending in ENDINGS
    if stream or ending not in ("dropped-connection", "in-stream-error")
]


@pytest.mark.parametrize(("stream", "ending"), ENDING_CASES)
def test_every_ending_replaces_the_reservation_by_the_cost(
    provider: ProviderUnderTest,
    driver: Driver,
    stores: Stores,
    stream: bool,
    ending: str,
    server: ProviderServer,
    otel: Any,
    instrument: Any,
) -> None:
    budget = stores.budget(10.0)
    instrument(budgets=[budget])
    server.push(ENDINGS[ending])
    client = driver.client.with_options(timeout=0.3)
    try:
        result = driver.run(provider.create(client, MESSAGES, stream=stream, max_tokens=64))
        if stream:
            driver.collect(result)
    except Exception as error:
        assert ending != "success", error
    _assert_settled(budget, otel)


@pytest.mark.parametrize("how", ["break", "break-in-with", "abandoned"])
def test_streams_left_early_settle_what_they_used(
    provider: ProviderUnderTest,
    driver: Driver,
    stores: Stores,
    how: str,
    server: ProviderServer,
    otel: Any,
    instrument: Any,
) -> None:
    budget = stores.budget(10.0)
    instrument(budgets=[budget])
    server.push(Reply(chunks=20, usage=provider.streams.usage))
    stream = driver.run(provider.create(driver.client, MESSAGES, stream=True, max_tokens=64))
    if how == "break-in-with":
        driver.enter(stream)
        driver.collect(stream, limit=3)
        driver.exit(stream)
    elif how == "break":
        driver.collect(stream, limit=3)
    del stream
    _settle_dropped(driver, otel)
    span = otel.span()
    assert span.attributes["costspan.stream.completed"] is False
    assert span.attributes["gen_ai.usage.cost.amount"] > 0
    _assert_settled(budget, otel)


async def _cancel_task(read: Callable[[], Awaitable[None]]) -> None:
    """asyncio's cancellation: one CancelledError, after which the task's awaits run as usual."""
    task = asyncio.create_task(read())
    await asyncio.sleep(0.25)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _cancel_scope(read: Callable[[], Awaitable[None]]) -> None:
    """anyio's (Starlette's and sse-starlette's, when the client goes away): every await inside a cancelled scope
    is cancelled again until the scope exits, so a cleanup that awaits its store is cut short too."""
    async with anyio.create_task_group() as group:
        group.start_soon(read)
        await asyncio.sleep(0.25)
        group.cancel_scope.cancel()


@pytest.mark.parametrize("cancel", [_cancel_task, _cancel_scope], ids=["task-cancel", "anyio-cancel-scope"])
def test_cancelled_stream_settles_what_it_used(
    provider: ProviderUnderTest,
    stores: Stores,
    cancel: Callable[[Callable[[], Awaitable[None]]], Awaitable[None]],
    server: ProviderServer,
    otel: Any,
    instrument: Any,
) -> None:
    budget = stores.budget(10.0)
    instrument(budgets=[budget])
    server.push(Reply(chunks=40, chunk_delay=0.02, usage=provider.streams.usage))

    async def main() -> None:
        client = provider.async_client(server, otel.tracer_provider, {})

        async def read() -> None:
            async for _ in await provider.create(client, MESSAGES, stream=True, max_tokens=64):
                pass

        await cancel(read)
        for _ in range(100):  # the settlement goes on after the cancellation, in a task of its own
            if otel.spans():
                break
            await asyncio.sleep(0.01)
        await client.close()

    asyncio.run(main())
    assert otel.span().attributes["error.type"] == "CancelledError"
    _assert_settled(budget, otel)


def test_call_cancelled_while_reserving_ends_unsent(
    provider: ProviderUnderTest, slow_proxy: SlowProxy, server: ProviderServer, otel: Any, instrument: Any
) -> None:
    """A caller cancelled while its budget's store is still answering the reservation: nothing is sent, and the
    call's span ends (what the store may have held expires with the reservation's TTL)."""
    budget = Budget(10.0, store=f"redis://:{PASSWORD}@127.0.0.1:{slow_proxy.port}/0?socket_timeout=5", name="slow")
    instrument(budgets=[budget])

    async def main() -> None:
        await budget.asettle(await budget.areserve(None, 0.01), 0.0)  # connected, scripts loaded
        slow_proxy.script_delay = 0.5
        client = provider.async_client(server, otel.tracer_provider, {})
        task = asyncio.create_task(provider.create(client, MESSAGES, max_tokens=16))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.close()

    asyncio.run(main())
    assert server.requests == []
    otel.lifecycle.assert_each_ended_once()
    assert otel.span().attributes["error.type"] == "CancelledError"


def _assert_settled(budget: Budget, otel: Any) -> None:
    otel.lifecycle.assert_each_ended_once()
    assert budget.reserved() == 0.0, "a reservation was left behind"
    assert round(budget.spent() * NANOS) == _nanos(_span_costs(otel)), "the budget and the span disagree"


def _cost(provider: ProviderUnderTest, input_tokens: int, output_tokens: int) -> float:
    model = "claude-haiku-4-5" if provider.name == "anthropic" else "gpt-4.1-mini"
    cost = costspan.cost_of(
        provider.name, model, costspan.Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    )
    assert cost is not None
    return cost.amount


def test_stream_outgrowing_the_budget_is_cut(
    provider: ProviderUnderTest,
    driver: Driver,
    stores: Stores,
    server: ProviderServer,
    otel: Any,
    instrument: Any,
) -> None:
    """A stream whose running cost outgrows its reservation extends it, a quarter of it at a time (or, for the
    last of the limit, what it needs); when the budget cannot grant that, the stream is closed upstream and raises
    from its iterator, and the span and the budget hold the same partial cost.

    OpenAI: a request without an output bound reserves ``default_max_output_tokens`` (20 here) and streams on
    past it. Anthropic requests always bound their output, so there it is the input: the request's text says
    little, and the exact count that ``message_start`` reports (a document, an image) is far more."""
    if provider.name == "openai":
        budget = stores.budget(_cost(provider, 20, 20) * 2)
        reply = Reply(text="word " * 200, chunks=200, chunk_delay=0.005)
        options: dict[str, Any] = {}
        read_before_cut = (20, 150)
    else:
        budget = stores.budget(_cost(provider, 3000, 20) * 0.8)
        usage = {"input_tokens": 3000, "output_tokens": 200}
        reply = Reply(text="word " * 200, chunks=200, chunk_delay=0.005, usage=usage)
        options = {"max_tokens": 20}
        read_before_cut = (0, 0)
    instrument(budgets=[budget], default_max_output_tokens=20)
    server.push(reply)
    stream = driver.run(provider.create(driver.client, MESSAGES, stream=True, **options))
    got: list[Any] = []
    with pytest.raises(BudgetExceededError) as cut:
        if driver.is_async:

            async def read() -> None:
                async for chunk in stream:
                    got.append(chunk)

            driver.run(read())
        else:
            for chunk in stream:
                got.append(chunk)
    assert cut.value.budget == budget.name and "stopped a call needing" in str(cut.value)
    low, high = read_before_cut
    assert low <= len(got) <= high
    _wait_for(lambda: len(server.hangups) == 1)
    span = otel.span()
    assert span.attributes["error.type"] == "BudgetExceededError"
    assert span.attributes["costspan.stream.completed"] is False
    assert span.attributes["gen_ai.usage.cost.amount"] > 0
    assert [event.name for event in span.events].count("costspan.budget.exceeded") == 1
    _assert_settled(budget, otel)
    if provider.name == "openai":
        # Cut at the chunk that took it past the limit: over by at most that chunk (5 characters, 2 tokens).
        assert budget.spent() <= budget.limit_usd + _cost(provider, 0, 2), "cut within one chunk of the limit"
    else:  # the input was spent before anyone could know it: the budget records it, and nothing more was read
        assert span.attributes["gen_ai.usage.input_tokens"] == 3000
        assert span.attributes["gen_ai.usage.output_tokens"] <= 1


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    loop_until = asyncio.get_event_loop_policy().new_event_loop()
    try:
        deadline = loop_until.time() + timeout
        while not condition():
            assert loop_until.time() < deadline, "timed out"
            loop_until.run_until_complete(asyncio.sleep(0.02))
    finally:
        loop_until.close()


def test_thresholds_fire_once_and_mark_the_call_that_crossed_them(
    provider: ProviderUnderTest, driver: Driver, stores: Stores, server: ProviderServer, otel: Any, instrument: Any
) -> None:
    fired: list[float] = []
    budget = stores.budget(
        _cost(provider, 100, 10) * 10, action="alert", on_threshold=lambda event: fired.append(event.threshold)
    )
    instrument(budgets=[budget])
    wire = (
        {"input_tokens": 100, "output_tokens": 10}
        if provider.name == "anthropic"
        else {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}
    )
    for _ in range(12):
        server.push(Reply(usage=wire))
        _create(provider, driver, max_tokens=10)
    assert fired == [0.5, 0.8, 1.0]
    crossed = [[event.attributes["costspan.budget.threshold"] for event in span.events] for span in otel.spans()]
    assert crossed[4:10] == [[0.5], [], [], [0.8], [], [1.0]]
    assert sum(map(len, crossed)) == 3


def test_dead_store_allow_lets_calls_through_with_one_warning(
    provider: ProviderUnderTest,
    driver: Driver,
    own_redis: RedisServer,
    server: ProviderServer,
    otel: Any,
    instrument: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    budget = Budget(10.0, store=own_redis.url, name="dead-allow")
    own_redis.stop()
    instrument(budgets=[budget])
    for _ in range(3):
        _create(provider, driver, max_tokens=16)
    assert len(server.requests) == 3
    warnings = [r.getMessage() for r in caplog.records if r.name == "costspan" and r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "dead-allow" in warnings[0] and "let through unchecked" in warnings[0]
    assert own_redis.password not in warnings[0]
    assert budget.store_errors >= 3
    assert all("gen_ai.usage.cost.amount" in span.attributes for span in otel.spans())


def test_dead_store_block_refuses_calls_unsent(
    provider: ProviderUnderTest, driver: Driver, own_redis: RedisServer, server: ProviderServer, instrument: Any
) -> None:
    budget = Budget(10.0, store=own_redis.url, name="dead-block", on_store_error="block")
    own_redis.stop()
    instrument(budgets=[budget])
    with pytest.raises(BudgetStoreError) as refused:
        _create(provider, driver, max_tokens=16)
    assert server.requests == []
    assert "dead-block" in str(refused.value) and "on_store_error='block'" in str(refused.value)
    assert own_redis.password not in str(refused.value)


def test_gauges_report_spend_and_limit_until_uninstrumented(
    stores: Stores, server: ProviderServer, otel: Any, instrument: Any
) -> None:
    """Unscoped budgets report spent and limit; a scoped one per value seen when its scope is a metric attribute
    (the application chose that cardinality), and not otherwise."""
    day = stores.budget(5.0, name=f"gauge-day-{stores.kind}")
    per_user = stores.budget(1.0, scope="user.id", name=f"gauge-user-{stores.kind}")
    per_team = stores.budget(2.0, scope="team", name=f"gauge-team-{stores.kind}")
    instrument(budgets=[day, per_user, per_team], metric_attributes=["user.id"])
    provider = PROVIDERS[0]
    with provider.client(server, otel.tracer_provider, {}) as client:
        for user in ("ann", "bob"):
            with costspan.attribution(user_id=user, team="search"):
                server.push(Reply(usage={"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}))
                provider.create(client, MESSAGES, max_tokens=100)
    costs = dict(zip(("ann", "bob"), _span_costs(otel), strict=True))

    def points(name: str) -> dict[tuple[tuple[str, Any], ...], float]:
        return {tuple(sorted(p.attributes.items())): p.value for p in otel.metrics().get(name, [])}

    spent = points("costspan.budget.spent")
    assert spent == pytest.approx(
        {
            (("costspan.budget.name", day.name),): sum(costs.values()),
            (("costspan.budget.name", per_user.name), ("user.id", "ann")): costs["ann"],
            (("costspan.budget.name", per_user.name), ("user.id", "bob")): costs["bob"],
        },
        abs=1e-9,
    )
    limits = points("costspan.budget.limit")
    assert limits[(("costspan.budget.name", day.name),)] == 5.0
    assert limits[(("costspan.budget.name", per_user.name), ("user.id", "ann"))] == 1.0
    assert not any(("costspan.budget.name", per_team.name) in key for key in limits), "team is no metric attribute"
    costspan.CostspanInstrumentor().uninstrument()
    gone = otel.metrics()
    assert "costspan.budget.spent" not in gone and "costspan.budget.limit" not in gone, "observed after uninstrument"
    instrument()  # the fixture uninstruments at the end


def test_span_lasts_as_long_as_the_call_not_its_settlement(
    provider: ProviderUnderTest, driver: Driver, stores: Stores, server: ProviderServer, otel: Any, instrument: Any
) -> None:
    """The span ends when the call ended: pricing and the budget's settlement (a Redis round trip) after it are
    not the call's time, and the span and the duration metric say the same duration."""
    instrument(budgets=[stores.budget(10.0)])
    for stream in (False, True):
        _create(provider, driver, stream=stream, max_tokens=64)
    spans = otel.spans()
    (durations,) = [p for p in otel.metrics()["gen_ai.client.operation.duration"] if "error.type" not in p.attributes]
    span_seconds = sum((span.end_time - span.start_time) / 1e9 for span in spans)
    assert durations.count == 2
    assert durations.sum == pytest.approx(span_seconds, abs=1e-4)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_malformed_usage_is_never_counted_free(
    provider: ProviderUnderTest,
    driver: Driver,
    stores: Stores,
    stream: bool,
    server: ProviderServer,
    otel: Any,
    instrument: Any,
) -> None:
    """A server whose usage fields are null or strings (compatible servers and proxies do this): the call's usage
    is estimated, and the budget counts that estimate, the span's cost, never $0."""
    budget = stores.budget(10.0)
    instrument(budgets=[budget])
    broken = (
        {"input_tokens": None, "output_tokens": "many"}
        if provider.name == "anthropic"
        else {"prompt_tokens": None, "completion_tokens": "many", "total_tokens": None}
    )
    server.push(Reply(text="one two three four five six", chunks=6, usage=broken))
    _create(provider, driver, stream=stream, max_tokens=64)
    span = otel.span()
    assert span.attributes["costspan.usage.estimated"] is True
    assert span.attributes["gen_ai.usage.cost.amount"] > 0
    _assert_settled(budget, otel)


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The thread (its ident) of every script redis-py sends, sync or async, through any connection (a new
    connection's own handshake, when a pool grows, is not the call's)."""
    sent: list[int] = []
    for connection in (redis.connection.AbstractConnection, redis.asyncio.connection.AbstractConnection):
        send = connection.send_packed_command

        def spy(self: Any, command: Any, *args: Any, send: Any = send, **kwargs: Any) -> Any:
            if b"EVALSHA" in (command if isinstance(command, bytes) else b"".join(command)):
                sent.append(threading.get_ident())
            return send(self, command, *args, **kwargs)

        monkeypatch.setattr(connection, "send_packed_command", spy)
    return sent


def _fitting(provider: ProviderUnderTest) -> Reply:
    """A reply whose usage fits its reservation (the estimated input of MESSAGES and max_tokens 64)."""
    if provider.name == "anthropic":
        return Reply(text="one two three four", chunks=4, usage={"input_tokens": 10, "output_tokens": 20})
    return Reply(
        text="one two three four", chunks=4, usage={"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}
    )


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_call_within_its_reservation_makes_one_round_trip(
    provider: ProviderUnderTest,
    driver: Driver,
    redis_server: RedisServer,
    server: ProviderServer,
    otel: Any,
    instrument: Any,
    round_trips: list[int],
    stream: bool,
) -> None:
    """Its reservation is the one request on the calling thread; its settlement, which can cross no threshold,
    is applied by the budget's journal thread, and a read right after the call sees it. A call whose reservation
    reaches a threshold settles in line and its span carries the threshold."""
    budget = Budget(_cost(provider, 100, 64) * 20, store=redis_server.url, name=f"trips-{id(driver)}-{stream}")
    instrument(budgets=[budget])
    server.push(Reply(text="warm", chunks=2, usage=provider.streams.usage))
    _create(provider, driver, stream=stream, max_tokens=64)  # loads the scripts
    assert budget.spent() > 0
    me, calls = threading.get_ident(), 5
    round_trips.clear()
    for _ in range(calls):
        server.push(_fitting(provider))
        _create(provider, driver, stream=stream, max_tokens=64)
    assert round_trips.count(me) == calls
    assert round(budget.spent() * NANOS) == _nanos(_span_costs(otel))
    assert budget.reserved() == 0.0 and budget.journaled == 0
    assert [span.events for span in otel.spans()] == [()] * (calls + 1)
    crossing: list[tuple[int, int]] = []  # round trips on this thread, and settlements pending before the call
    for _ in range(40):
        before, pending = round_trips.count(me), budget.journaled
        server.push(_fitting(provider))
        _create(provider, driver, stream=stream, max_tokens=64)
        if otel.spans()[-1].events:
            crossing.append((round_trips.count(me) - before, pending))
            break
    # Its reservation and its settlement, after those of earlier calls the journal's thread had not applied yet
    # (settlements reach the store in the order the calls ended; the thread may apply some meanwhile).
    assert len(crossing) == 1, "a call crosses the threshold at 0.5"
    ((trips, pending),) = crossing
    assert 2 <= trips <= 2 + pending, "the call crossing the threshold settles on its own thread"
