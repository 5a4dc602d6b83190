"""Request and run totals: the real SDK clients (each provider, sync and async) against the local provider
server, costspan instrumenting into the test's in-memory providers."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from providers import PROVIDERS, ProviderUnderTest

from costspan.testing import ProviderServer
from support import Driver, make_driver

if TYPE_CHECKING:
    from conftest import Otel

MESSAGES = [{"role": "user", "content": "Plan the next step."}]


@pytest.fixture(params=PROVIDERS, ids=lambda provider: provider.name)
def provider(request: pytest.FixtureRequest) -> ProviderUnderTest:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=["sync", "async"])
def llm(
    request: pytest.FixtureRequest, provider: ProviderUnderTest, server: ProviderServer, otel: Otel
) -> Iterator[Driver]:
    """A real client of ``provider`` (sync or async) pointed at the local server."""
    yield from make_driver(
        request.param,
        lambda: provider.client(server, otel.tracer_provider, {}),
        lambda: provider.async_client(server, otel.tracer_provider, {}),
    )


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
