"""Metrics carry the values and attributes SPEC.md gives, for Anthropic; the cost counter sums the span amounts."""

from __future__ import annotations

import math

import pytest

from costspan.testing import ProviderServer, Reply
from support import Driver

MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "hi"}]
USAGE = {
    "input_tokens": 200,
    "cache_read_input_tokens": 1024,
    "cache_creation_input_tokens": 0,
    "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
    "output_tokens": 300,
}
WRITES = {**USAGE, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 512}
BASE = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": MODEL,
    "gen_ai.response.model": MODEL,
}


def _points(otel, name: str) -> list:
    return otel.metrics().get(name, [])


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_metrics_values_and_attributes(ant: Driver, server: ProviderServer, otel, stream: bool) -> None:
    for usage in (USAGE, USAGE, WRITES):
        server.push(Reply(usage=usage, chunks=4))
        result = ant.call(ant.client.messages.create, model=MODEL, max_tokens=512, messages=MESSAGES, stream=stream)
        if stream:
            ant.collect(result)

    tokens = {p.attributes["gen_ai.token.type"]: p for p in _points(otel, "gen_ai.client.token.usage")}
    assert set(tokens) == {"input", "output"}
    assert tokens["input"].count == 3
    assert tokens["input"].sum == 2 * (200 + 1024) + (200 + 512), "input includes cache reads and writes"
    assert tokens["output"].sum == 3 * 300
    assert dict(tokens["input"].attributes) == {**BASE, "gen_ai.token.type": "input"}

    extra = {p.attributes["gen_ai.token.type"]: p.value for p in _points(otel, "costspan.tokens")}
    assert extra == {"cache_read": 2 * 1024, "cache_write": 512}, "only the non-zero kinds; no reasoning"

    (duration,) = _points(otel, "gen_ai.client.operation.duration")
    assert duration.count == 3 and dict(duration.attributes) == BASE
    ttfc = _points(otel, "gen_ai.client.operation.time_to_first_chunk")
    assert (ttfc[0].count if ttfc else 0) == (3 if stream else 0)

    (cost,) = _points(otel, "costspan.cost")
    assert dict(cost.attributes) == BASE
    span_total = sum(span.attributes["gen_ai.usage.cost.amount"] for span in otel.spans())
    assert math.isclose(cost.value, span_total, rel_tol=0, abs_tol=1e-12)
    assert cost.value > 0
