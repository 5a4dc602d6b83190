"""A failure inside costspan never reaches the user's call: it is logged once and the call proceeds."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace import Tracer
from providers import PROVIDERS, WAYS, ProviderUnderTest

from costspan.pricing import ResolvedPrice
from costspan.telemetry import Telemetry
from costspan.testing import ProviderServer, Reply

TEXT = "one two three"
MESSAGES = [{"role": "user", "content": "hi"}]
# Faults in the shared machinery, which every way of calling every provider goes through.
SHARED_FAULTS: dict[str, tuple[Any, str, tuple[str, ...]]] = {
    "pricing": (ResolvedPrice, "cost", WAYS),
    "metrics": (Telemetry, "_record_metrics", WAYS),
    "span start": (Tracer, "start_span", WAYS),
}
# Faults that leave costspan without a span for the call (the call itself goes on).
UNTRACED = {"span start", "stream helper tracing"}

CASES = [
    pytest.param(provider, fault, target, way, id=f"{provider.name}-{fault}-{way}")
    for provider in PROVIDERS
    for fault, (*target, ways) in {**SHARED_FAULTS, **provider.faults}.items()
    for way in ways
]


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("injected costspan fault")


@pytest.mark.parametrize(("provider", "fault", "target", "way"), CASES)
def test_fault_never_reaches_the_call(
    provider: ProviderUnderTest,
    fault: str,
    target: tuple[Any, str],
    way: str,
    monkeypatch: pytest.MonkeyPatch,
    instrument: Callable[..., None],
    server: ProviderServer,
    caplog: pytest.LogCaptureFixture,
    otel: Any,
) -> None:
    monkeypatch.setattr(*target, _boom)
    instrument()
    with provider.client(server, otel.tracer_provider, {}) as client:
        for _ in range(2):
            server.push(Reply(chunks=3, text=TEXT))
            assert provider.call(client, way, MESSAGES, "be brief") == TEXT
    warnings = [r for r in caplog.records if r.name == "costspan" and r.levelno >= logging.WARNING]
    assert len(warnings) == 1, "a fault is logged once, then quietly"
    if fault in UNTRACED:
        assert otel.spans() == []
    else:
        assert len(otel.spans()) == 2
        otel.lifecycle.assert_each_ended_once()
