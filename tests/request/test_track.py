"""costspan.track(): a run's totals on its span and in code, nested runs, and a budget per run."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
from providers import ProviderUnderTest
from request.helpers import MESSAGES, call, call_spans, cost_sum, only

import costspan
from costspan.testing import ProviderServer
from support import Driver

if TYPE_CHECKING:
    from conftest import Otel

MAX_TOKENS = 16
MODELS = {"openai": "gpt-4.1-mini", "anthropic": "claude-haiku-4-5"}


def test_a_run_carries_the_sum_of_its_calls(
    instrumented: None, llm: Driver, provider: ProviderUnderTest, otel: Otel
) -> None:
    with costspan.track("agent-run") as run:
        call(llm, provider)
        assert run.calls == 1 and run.cost > 0
        call(llm, provider, stream=True)
        call(llm, provider)
    calls = call_spans(otel)
    assert len(calls) == 3
    assert run.calls == 3 and run.cost == cost_sum(calls)
    assert run.input_tokens == sum(span.attributes["gen_ai.usage.input_tokens"] for span in calls)
    assert run.output_tokens == sum(span.attributes["gen_ai.usage.output_tokens"] for span in calls)
    span = only(otel.exporter.get_finished_spans(), "agent-run")
    assert span.parent is None
    assert span.attributes["costspan.request.cost"] == run.cost
    assert span.attributes["costspan.request.calls"] == 3
    assert span.attributes["costspan.request.input_tokens"] == run.input_tokens
    assert span.attributes["costspan.request.output_tokens"] == run.output_tokens
    assert "costspan.request.estimated" not in span.attributes
    for child in calls:
        assert child.parent is not None and child.parent.span_id == span.context.span_id
        assert child.attributes["costspan.run.id"] == run.id
        assert child.attributes["costspan.request.name"] == "agent-run"


def test_a_budget_per_run_refuses_the_call_that_would_exceed_it(
    instrument: Callable[..., None], llm: Driver, provider: ProviderUnderTest
) -> None:
    """An agent loop whose run limit fits three calls: the fourth is refused before it is sent, and the next
    run has its own limit."""
    instrument()
    with costspan.track("probe") as probe:
        call(llm, provider, max_tokens=MAX_TOKENS)
    one_call = probe.cost
    worst_case = costspan.estimate(MODELS[provider.name], MESSAGES, max_output_tokens=MAX_TOKENS).worst_case_cost
    assert worst_case is not None and worst_case >= one_call > 0
    costspan.uninstrument()
    # Three calls spent and a fourth reserved do not fit; two spent and a third reserved do.
    limit = 2.5 * one_call + worst_case
    instrument(budgets=[costspan.Budget(limit, window="hour", scope="costspan.run.id")])

    def agent_loop() -> list[int]:
        done = []
        with costspan.track("agent-run") as run:
            for step in range(10):
                try:
                    call(llm, provider, max_tokens=MAX_TOKENS)
                except costspan.BudgetExceededError as refused:
                    assert refused.scope_value == run.id
                    break
                done.append(step)
        assert run.calls == len(done) and run.cost == pytest.approx(len(done) * one_call)
        return done

    assert agent_loop() == [0, 1, 2]
    assert agent_loop() == [0, 1, 2]


def test_nested_runs_and_decorators_count_each_call_in_every_enclosing_run(
    instrumented: None, llm: Driver, provider: ProviderUnderTest, otel: Otel
) -> None:
    if llm.is_async:

        @costspan.track()
        async def step() -> costspan.Run | None:
            await provider.create(llm.client, MESSAGES)
            return costspan.current_run()

        def run_step() -> costspan.Run | None:
            return llm.run(step())  # type: ignore[no-any-return]
    else:

        @costspan.track()
        def step() -> costspan.Run | None:
            provider.create(llm.client, MESSAGES)
            return costspan.current_run()

        run_step = step

    with costspan.track("outer") as outer:
        first, second = run_step(), run_step()
        call(llm, provider)
        assert costspan.current_run() is outer
    assert costspan.current_run() is None
    assert first is not None and second is not None and first is not second
    assert (first.calls, second.calls, outer.calls) == (1, 1, 3)
    assert outer.cost == cost_sum(call_spans(otel))
    finished = otel.exporter.get_finished_spans()
    steps = [span for span in finished if span.name.endswith("step")]
    assert len(steps) == 2 and all(span.attributes["costspan.request.calls"] == 1 for span in steps)
    assert only(finished, "outer").attributes["costspan.request.cost"] == outer.cost


def test_calls_from_threads_and_tasks_of_one_run_are_all_counted(
    instrumented: None, provider: ProviderUnderTest, server: ProviderServer, otel: Otel
) -> None:
    """No lock: settlements from many threads at once (and from tasks) add up exactly."""
    sync_client = provider.client(server, otel.tracer_provider, {})
    async_client = provider.async_client(server, otel.tracer_provider, {})

    async def tasks() -> None:
        await asyncio.gather(*(provider.create(async_client, MESSAGES) for _ in range(8)))
        await async_client.close()

    with costspan.track("fan-out") as run, ThreadPoolExecutor(8) as pool:
        # Each thread runs in a copy of this context, as asyncio.to_thread and Starlette's threadpool do.
        futures = [
            pool.submit(contextvars.copy_context().run, provider.create, sync_client, MESSAGES) for _ in range(16)
        ]
        for future in futures:
            future.result()
        asyncio.run(tasks())
    sync_client.close()
    assert run.calls == 24 and run.cost == cost_sum(call_spans(otel))
    assert only(otel.exporter.get_finished_spans(), "fan-out").attributes["costspan.request.calls"] == 24


def test_a_stream_broken_off_makes_the_run_estimated(
    instrumented: None, llm: Driver, provider: ProviderUnderTest, otel: Otel
) -> None:
    with costspan.track("agent-run") as run:
        call(llm, provider)
        stream = llm.run(provider.create(llm.client, MESSAGES, stream=True))
        llm.collect(stream, limit=2)
        llm.close(stream)
    assert run.calls == 2 and run.estimated
    span = only(otel.exporter.get_finished_spans(), "agent-run")
    assert span.attributes["costspan.request.estimated"] is True
    assert span.attributes["costspan.request.cost"] == cost_sum(call_spans(otel))


def test_a_stream_that_outlives_its_run_is_counted_where_it_settles(
    instrumented: None, llm: Driver, provider: ProviderUnderTest, otel: Otel
) -> None:
    """Its own span has its cost, and names the run it was begun in; the run, ended before, does not count it."""
    with costspan.track("agent-run") as run:
        call(llm, provider)
        stream = llm.run(provider.create(llm.client, MESSAGES, stream=True))
    cost_at_end = run.cost
    llm.collect(stream)
    assert (run.calls, run.cost) == (1, cost_at_end)
    span = only(otel.exporter.get_finished_spans(), "agent-run")
    assert span.attributes["costspan.request.calls"] == 1
    late = call_spans(otel)[-1]
    assert late.attributes["gen_ai.usage.cost.amount"] > 0 and late.attributes["costspan.request.name"] == "agent-run"
