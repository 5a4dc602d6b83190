"""costspan.track(): a run's totals on its span and in code, nested runs, and a budget per run."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from providers import ProviderUnderTest

import costspan
from costspan.testing import ProviderServer
from request.conftest import call, call_spans, cost_sum, only
from support import Driver

if TYPE_CHECKING:
    from conftest import Otel


def test_a_run_carries_the_sum_of_its_calls(instrumented: None, llm: Driver, provider: ProviderUnderTest, otel: Otel) -> None:
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
