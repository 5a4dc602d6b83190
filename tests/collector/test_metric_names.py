"""docs/backends.md's metric table is what Prometheus sees: costspan's metrics as the OpenTelemetry Python
Prometheus exporter serves them after real SDK calls, and the budget metrics (not emitted by this version of
costspan) as that exporter names instruments of the contract's name, kind and unit.

The collector's prometheus exporter names them with github.com/prometheus/otlptranslator (MetricNamer with
suffixes); read in otelcol-contrib 0.159.0, it gives the same names for all of these, which the table states and
this test holds it to."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import anthropic
import openai
import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import costspan
from collector.shipped import REPO
from costspan.testing import ProviderServer, Reply
from support import API_KEY

if TYPE_CHECKING:
    from conftest import Otel

ROW = re.compile(
    r"^\| (?P<otel>[a-z_.]+) \| (?P<kind>[a-z ]+) \| (?P<unit>\S+) \| (?P<collector>\w+) \| (?P<python>\w+) \|$"
)
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("",), "observable gauge": ("",)}


def table() -> dict[str, dict[str, str]]:
    rows = [ROW.match(line) for line in (REPO / "docs" / "backends.md").read_text().splitlines()]
    return {m["otel"]: m.groupdict() for m in rows if m}


def served(registry: CollectorRegistry) -> set[str]:
    text = generate_latest(registry).decode()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


@pytest.fixture
def scrape(otel: Otel, server: ProviderServer) -> set[str]:
    """Series names served after calls that produce every metric costspan emits."""
    registry = CollectorRegistry()
    meter_provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    costspan.CostspanInstrumentor().instrument(tracer_provider=otel.tracer_provider, meter_provider=meter_provider)
    try:
        usage = {
            "input_tokens": 10,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 20,
            "cache_creation": {"ephemeral_5m_input_tokens": 20, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 5,
        }
        server.push(Reply(usage=usage))
        claude = anthropic.Anthropic(base_url=server.anthropic_base_url, api_key=API_KEY, max_retries=0)
        with claude.messages.stream(
            model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
        ) as s:
            s.get_final_text()
        claude.close()
        return served(registry)
    finally:
        costspan.CostspanInstrumentor().uninstrument()
        meter_provider.shutdown()


def test_the_table_lists_every_contract_metric() -> None:
    assert list(table()) == [
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.duration",
        "gen_ai.client.operation.time_to_first_chunk",
        "costspan.cost",
        "costspan.tokens",
        "costspan.budget.blocked",
        "costspan.budget.spent",
        "costspan.budget.limit",
        "costspan.budget.store_errors",
    ]


def test_both_paths_give_the_same_names() -> None:
    for otel_name, row in table().items():
        assert row["collector"] == row["python"], otel_name


def test_costspan_metrics_arrive_as_the_table_says(scrape: set[str]) -> None:
    emitted = {name: row for name, row in table().items() if not name.startswith("costspan.budget.")}
    for otel_name, row in emitted.items():
        for suffix in SUFFIXES[row["kind"]]:
            assert row["python"] + suffix in scrape, f"{otel_name}: {row['python'] + suffix} not in {sorted(scrape)}"


def test_budget_metrics_will_arrive_as_the_table_says() -> None:
    registry = CollectorRegistry()
    meter_provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    meter = meter_provider.get_meter("costspan.budgets")
    attributes = {"costspan.budget.name": "daily"}

    def observe(options: CallbackOptions) -> list[Observation]:
        return [Observation(1.5, attributes)]

    for otel_name, row in table().items():
        if not otel_name.startswith("costspan.budget."):
            continue
        instrument: Any
        if row["kind"] == "counter":
            instrument = meter.create_counter(otel_name, unit=row["unit"])
            instrument.add(1, attributes)
        else:
            meter.create_observable_gauge(otel_name, [observe], unit=row["unit"])
    names = served(registry)
    meter_provider.shutdown()
    for otel_name, row in table().items():
        if otel_name.startswith("costspan.budget."):
            assert row["python"] in names, f"{otel_name}: {row['python']} not in {sorted(names)}"


def test_failures_are_an_error_type_label(otel: Otel, server: ProviderServer) -> None:
    registry = CollectorRegistry()
    meter_provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    costspan.CostspanInstrumentor().instrument(tracer_provider=otel.tracer_provider, meter_provider=meter_provider)
    try:
        server.push(Reply(status=503))
        client = openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0)
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "Hi"}])
        client.close()
        text = generate_latest(registry).decode()
    finally:
        costspan.CostspanInstrumentor().uninstrument()
        meter_provider.shutdown()
    assert re.search(r'gen_ai_client_operation_duration_seconds_count\{[^}]*error_type="InternalServerError"', text)
