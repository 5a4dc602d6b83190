"""Helpers of the request tests: one call as users write it, and the sums a request's totals must equal."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace import ReadableSpan
from providers import ProviderUnderTest

from support import Driver

if TYPE_CHECKING:
    from conftest import Otel

MESSAGES = [{"role": "user", "content": "Plan the next step."}]


def call(llm: Driver, provider: ProviderUnderTest, *, stream: bool = False, **options: Any) -> None:
    """One call as users write it: a response, or a stream read to its end."""
    if stream:
        llm.collect(llm.run(provider.create(llm.client, MESSAGES, stream=True, **options)))
    else:
        llm.run(provider.create(llm.client, MESSAGES, **options))


def call_spans(otel: Otel) -> list[ReadableSpan]:
    return [span for span in otel.spans() if span.instrumentation_scope.name != "costspan.track"]


def cost_sum(spans: list[ReadableSpan]) -> float:
    """The correctly rounded sum of the calls' costs, as the request's total must be."""
    return math.fsum(span.attributes["gen_ai.usage.cost.amount"] for span in spans)


def only(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, [span.name for span in spans]
    return found[0]
