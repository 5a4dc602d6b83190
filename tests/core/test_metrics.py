"""Metrics SPEC.md gives that do not depend on the provider: a failed call's duration carries its error type and
nothing else is recorded; the cost counter's exemplar links the spend to its trace. (The values per token kind
are tested under each provider, whose usage they follow.)"""

from __future__ import annotations

import pytest
from providers import ProviderUnderTest

from costspan.testing import ProviderServer, Reply
from support import Driver

MESSAGES = [{"role": "user", "content": "hi"}]


def _points(otel, name: str) -> list:
    return otel.metrics().get(name, [])


def test_failed_call_records_duration_with_error_type(
    provider: ProviderUnderTest, driver: Driver, server: ProviderServer, otel
) -> None:
    server.push(Reply(status=429))
    with pytest.raises(provider.sdk.RateLimitError):
        driver.run(provider.create(driver.client, MESSAGES))
    (duration,) = _points(otel, "gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "RateLimitError"
    assert _points(otel, "gen_ai.client.token.usage") == []
    assert _points(otel, "costspan.tokens") == []
    assert _points(otel, "costspan.cost") == []


def test_exemplars_link_cost_to_the_trace(
    provider: ProviderUnderTest, driver: Driver, server: ProviderServer, otel
) -> None:
    server.push(Reply(usage=provider.streams.usage))
    driver.run(provider.create(driver.client, MESSAGES))
    (cost,) = _points(otel, "costspan.cost")
    assert [exemplar.span_id for exemplar in cost.exemplars] == [otel.span().context.span_id]
