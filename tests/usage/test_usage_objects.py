"""Property: whatever a provider or a compatible server puts in a usage object (fields missing, null, negative,
fractional, strings, booleans, huge, objects of the wrong shape), every endpoint's call returns what it returns
without costspan, ends exactly one span with counts within bounds and a finite, non-negative cost, reports each
usable count exactly and is marked estimated exactly when a field was unusable or missing; the cost counter
receives the span costs and nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from usage.harness import TARGETS, TEXT, usage_views
from usage.shapes import SHAPES, expect

from costspan.testing import Reply

if TYPE_CHECKING:
    from usage.harness import Exchange

# Each example is two calls over loopback (suppressed, then instrumented): about 10 ms.
SETTINGS = settings(
    max_examples=75,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("name", list(TARGETS))
@SETTINGS
@given(data=st.data())
def test_any_usage_object(exchange: Exchange, name: str, data: st.DataObject) -> None:
    target = TARGETS[name]
    endpoint = name.split("-")[0]
    usage = data.draw(SHAPES[endpoint].strategy(), label="usage")

    # A user who asks for the usage chunk gets it: what the SDK read from it is in what they got.
    options = {"stream_options": {"include_usage": True}} if name in ("chat-stream", "completions-stream") else {}

    attributes, got = exchange.run(target, Reply(text=TEXT, usage=usage), **options)

    expect(endpoint, usage_views(got)).check(attributes)
    assert "gen_ai.usage.cost.amount" in attributes, "every model here is priced: no call goes without a cost"
