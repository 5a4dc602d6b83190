"""Metrics carry the values and attributes SPEC.md gives; the cost counter sums the span amounts."""

from __future__ import annotations

import math

import pytest

from costspan.testing import ProviderServer, Reply
from support import Driver

MESSAGES = [{"role": "user", "content": "hi"}]
USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 300,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 1024},
    "completion_tokens_details": {"reasoning_tokens": 128},
}
BASE = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "o4-mini",
    "gen_ai.response.model": "o4-mini",
}


def _points(otel, name: str) -> list:
    return otel.metrics().get(name, [])


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_metrics_values_and_attributes(oai: Driver, server: ProviderServer, otel, stream: bool) -> None:
    for _ in range(3):
        server.push(Reply(usage=USAGE, chunks=4))
        result = oai.call(oai.client.chat.completions.create, model="o4-mini", messages=MESSAGES, stream=stream)
        if stream:
            oai.collect(result)

    tokens = {p.attributes["gen_ai.token.type"]: p for p in _points(otel, "gen_ai.client.token.usage")}
    assert set(tokens) == {"input", "output"}
    assert tokens["input"].sum == 3 * 1200 and tokens["input"].count == 3
    assert tokens["output"].sum == 3 * 300
    assert dict(tokens["input"].attributes) == {**BASE, "gen_ai.token.type": "input"}
    assert tokens["input"].explicit_bounds[:3] == (1, 4, 16)

    extra = {p.attributes["gen_ai.token.type"]: p.value for p in _points(otel, "costspan.tokens")}
    assert extra == {"cache_read": 3 * 1024, "reasoning": 3 * 128}, "zero kinds (cache_write) are not recorded"

    (duration,) = _points(otel, "gen_ai.client.operation.duration")
    assert duration.count == 3 and dict(duration.attributes) == BASE

    ttfc = _points(otel, "gen_ai.client.operation.time_to_first_chunk")
    if stream:
        assert ttfc[0].count == 3 and 0 < ttfc[0].sum < duration.sum
    else:
        assert ttfc == []

    (cost,) = _points(otel, "costspan.cost")
    assert dict(cost.attributes) == BASE
    span_total = sum(span.attributes["gen_ai.usage.cost.amount"] for span in otel.spans())
    assert math.isclose(cost.value, span_total, rel_tol=0, abs_tol=1e-12)
    assert cost.value > 0
