"""Calls traced by other instrumentations (the official openai-v2, OpenLLMetry's openai and anthropic, the anthropic
SDK's own spans) become priced rows; a call traced by costspan and another instrumentation is one row, costspan's."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from costspan import Usage, cost_of
from costspan.ledger import LedgerProcessor
from costspan.testing import ProviderServer, Reply
from ledger_support import rows
from support import API_KEY

MESSAGES = [{"role": "user", "content": "a secret prompt"}]
OPENAI_USAGE = {
    "prompt_tokens": 1500,
    "completion_tokens": 400,
    "total_tokens": 1900,
    "prompt_tokens_details": {"cached_tokens": 1024},
    "completion_tokens_details": {"reasoning_tokens": 300},
}
ANTHROPIC_USAGE = {
    "input_tokens": 30,
    "cache_read_input_tokens": 2000,
    "cache_creation_input_tokens": 500,
    "output_tokens": 90,
}
ANTHROPIC_INPUT = 30 + 2000 + 500


def _official_openai() -> Any:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    return OpenAIInstrumentor()


def _openllmetry_openai() -> Any:
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    return OpenAIInstrumentor()


def _openllmetry_anthropic() -> Any:
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

    return AnthropicInstrumentor()


@pytest.fixture
def ledger_processor(otel: Any, tmp_path: Path) -> Iterator[LedgerProcessor]:
    processor = LedgerProcessor(tmp_path / "ledger.db")
    otel.tracer_provider.add_span_processor(processor)
    yield processor
    processor.shutdown()


@pytest.fixture
def peer(otel: Any) -> Iterator[Callable[[Callable[[], Any]], None]]:
    """``peer(factory)`` instruments with another instrumentation (its tracer provider is the test's)."""
    started: list[Any] = []

    def start(factory: Callable[[], Any]) -> None:
        with warnings.catch_warnings():  # the peers' own deprecations (pydantic class-based config) are not ours
            warnings.simplefilter("ignore", DeprecationWarning)
            instrumentor = factory()
            instrumentor.instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
        started.append(instrumentor)

    before = _sdk_functions()
    yield start
    for instrumentor in started:
        instrumentor.uninstrument()
    # OpenLLMetry's openai uninstrument() leaves Completions.create and .parse wrapped (0.62): put back what the
    # SDK had, so the tests after this one see the SDK as it was.
    for (owner, name), value in before.items():
        if vars(owner).get(name) is not value:
            setattr(owner, name, value)


def _sdk_functions() -> dict[tuple[type, str], Any]:
    """Every attribute of every class the provider SDKs' loaded modules define."""
    found = {}
    for module_name, module in list(sys.modules.items()):
        if module is None or not module_name.startswith(("openai.", "anthropic.")):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, type) and value.__module__ == module_name:
                found.update({(value, name): attribute for name, attribute in vars(value).items()})
    return found


def _openai_call(server: ProviderServer) -> None:
    server.push(Reply(usage=OPENAI_USAGE))
    with openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0) as client:
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)


def _anthropic_call(server: ProviderServer, otel: Any, sdk_tracing: bool = False) -> None:
    server.push(Reply(usage=ANTHROPIC_USAGE))
    tracing: Any = {"tracer_provider": otel.tracer_provider} if sdk_tracing else False
    with anthropic.Anthropic(
        base_url=server.anthropic_base_url, api_key=API_KEY, max_retries=0, open_telemetry=tracing
    ) as client:
        client.messages.create(model="claude-sonnet-4-6", max_tokens=256, messages=MESSAGES)


def _priced_openai() -> float:
    usage = Usage(input_tokens=1500, output_tokens=400, cache_read_tokens=1024, reasoning_tokens=300)
    cost = cost_of("openai", "gpt-4.1", usage)
    assert cost is not None
    return cost.amount


def _single_row(processor: LedgerProcessor) -> dict[str, Any]:
    assert processor.force_flush()
    (row,) = rows(processor.path)
    assert "secret" not in repr(row), "message content in the ledger"
    return row


def test_official_openai_instrumentation_call_is_a_priced_row(
    ledger_processor: LedgerProcessor, peer: Any, server: ProviderServer, otel: Any
) -> None:
    peer(_official_openai)
    _openai_call(server)
    (span,) = otel.exporter.get_finished_spans()
    assert "gen_ai.usage.cost.amount" not in span.attributes
    row = _single_row(ledger_processor)
    assert row["scope"] == span.instrumentation_scope.name
    assert (row["provider"], row["operation"], row["request_model"]) == ("openai", "chat", "gpt-4.1")
    assert row["request_id"] == span.attributes["gen_ai.response.id"]
    assert (row["input_tokens"], row["output_tokens"]) == (1500, 400)
    usage = Usage(input_tokens=1500, output_tokens=400)  # this instrumentation reports no cached or reasoning tokens
    assert row["cost_usd"] == pytest.approx(cost_of("openai", "gpt-4.1", usage).amount)
    assert (row["cost_source"], row["price_model"], row["unpriced"]) == ("ledger", "gpt-4.1", 0)


def test_openllmetry_openai_call_is_priced_with_its_cached_and_reasoning_tokens(
    ledger_processor: LedgerProcessor, peer: Any, server: ProviderServer
) -> None:
    peer(_openllmetry_openai)
    _openai_call(server)
    row = _single_row(ledger_processor)
    assert (row["input_tokens"], row["cache_read_tokens"], row["reasoning_tokens"]) == (1500, 1024, 300)
    assert row["cost_usd"] == pytest.approx(_priced_openai())
    assert row["scope"].startswith("opentelemetry.instrumentation.openai")


def _priced_anthropic() -> float:
    usage = Usage(input_tokens=ANTHROPIC_INPUT, output_tokens=90, cache_read_tokens=2000, cache_write_tokens=500)
    cost = cost_of("anthropic", "claude-sonnet-4-6", usage)
    assert cost is not None
    return cost.amount


@pytest.mark.parametrize("tracer", ["anthropic-sdk", "openllmetry"])
def test_anthropic_calls_of_other_instrumentations_are_priced_rows(
    ledger_processor: LedgerProcessor, peer: Any, server: ProviderServer, otel: Any, tracer: str
) -> None:
    if tracer == "openllmetry":
        peer(_openllmetry_anthropic)
    _anthropic_call(server, otel, sdk_tracing=tracer == "anthropic-sdk")
    row = _single_row(ledger_processor)
    assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_tokens"]) == (ANTHROPIC_INPUT, 2000, 500)
    assert row["cost_usd"] == pytest.approx(_priced_anthropic())
    assert (row["provider"], row["cost_source"]) == ("anthropic", "ledger")


def test_two_other_instrumentations_side_by_side_are_one_row(
    ledger_processor: LedgerProcessor, peer: Any, server: ProviderServer, otel: Any
) -> None:
    """OpenLLMetry and the anthropic SDK each trace the call, as siblings: one row, by the response id."""
    peer(_openllmetry_anthropic)
    _anthropic_call(server, otel, sdk_tracing=True)
    assert len(otel.exporter.get_finished_spans()) == 2
    assert _single_row(ledger_processor)["cost_usd"] == pytest.approx(_priced_anthropic())


@pytest.mark.parametrize("first", ["costspan", "peer"], ids=["costspan-first", "peer-first"])
@pytest.mark.parametrize("factory", [_official_openai, _openllmetry_openai], ids=["openai-v2", "openllmetry"])
def test_openai_call_traced_by_costspan_and_a_peer_is_costspans_row(
    ledger_processor: LedgerProcessor,
    peer: Any,
    instrument: Callable[..., None],
    server: ProviderServer,
    otel: Any,
    first: str,
    factory: Callable[[], Any],
) -> None:
    if first == "costspan":
        instrument()
        peer(factory)
    else:
        peer(factory)
        instrument()
    _openai_call(server)
    assert len(otel.exporter.get_finished_spans()) == 2
    row = _single_row(ledger_processor)
    ours = otel.span()
    assert row["span_id"] == f"{ours.context.span_id:016x}"
    assert (row["scope"], row["cost_source"]) == (ours.instrumentation_scope.name, "local")
    assert row["cost_usd"] == ours.attributes["gen_ai.usage.cost.amount"] == pytest.approx(_priced_openai())


@pytest.mark.parametrize("openllmetry", [False, True], ids=["sdk-tracing", "sdk-tracing-and-openllmetry"])
def test_anthropic_call_traced_by_costspan_and_the_sdk_is_costspans_row(
    ledger_processor: LedgerProcessor,
    peer: Any,
    instrument: Callable[..., None],
    server: ProviderServer,
    otel: Any,
    openllmetry: bool,
) -> None:
    instrument()
    if openllmetry:
        peer(_openllmetry_anthropic)
    _anthropic_call(server, otel, sdk_tracing=True)
    row = _single_row(ledger_processor)
    assert row["span_id"] == f"{otel.span().context.span_id:016x}"
    assert row["cost_usd"] == pytest.approx(_priced_anthropic())
    assert row["cost_source"] == "local"
