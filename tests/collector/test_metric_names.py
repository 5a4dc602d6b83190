"""docs/backends.md's metric table is what costspan emits and what Prometheus sees: each metric's instrument and
unit as the SDK reports them, and its name as the OpenTelemetry Python Prometheus exporter serves it, after real
SDK calls under a budget that refuses one of them.

The collector's prometheus exporter names them with github.com/prometheus/otlptranslator (MetricNamer with
suffixes); read in otelcol-contrib 0.159.0, it gives the same names for all of these, which the table states and
this test holds it to."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anthropic
import openai
import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import Gauge, Histogram, InMemoryMetricReader, Sum
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
SUFFIXES = {
    "histogram": ("_bucket", "_sum", "_count"),
    "counter": ("",),
    "observable counter": ("",),
    "observable gauge": ("",),
}
# What the SDK reports each kind of instrument as: counters are monotonic sums, gauges are gauges.
POINTS = {"histogram": Histogram, "counter": Sum, "observable counter": Sum, "observable gauge": Gauge}


def table() -> dict[str, dict[str, str]]:
    rows = [ROW.match(line) for line in (REPO / "docs" / "backends.md").read_text().splitlines()]
    return {m["otel"]: m.groupdict() for m in rows if m}


def served_names(registry: CollectorRegistry) -> set[str]:
    text = generate_latest(registry).decode()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


@dataclass
class Emitted:
    served: set[str]
    """Series names the Prometheus exporter serves."""
    metrics: dict[str, tuple[str, type, bool]]
    """OTel metric name -> its unit, point type, and (for a sum) whether it is monotonic."""


@pytest.fixture
def emitted(otel: Otel, server: ProviderServer) -> Emitted:
    """Every metric costspan emits, after an Anthropic stream with cache reads and writes, and a call the budget
    refuses (its worst case, up to 4096 output tokens, is more than the budget has left)."""
    registry = CollectorRegistry()
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry), reader])
    costspan.CostspanInstrumentor().instrument(
        tracer_provider=otel.tracer_provider,
        meter_provider=meter_provider,
        budgets=[costspan.Budget(0.001, window="day", name="daily")],
    )
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
        messages = [{"role": "user", "content": "Hi"}]
        for event in claude.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=messages, stream=True):
            assert event.type
        with pytest.raises(costspan.BudgetExceededError):
            claude.messages.create(model="claude-haiku-4-5", max_tokens=4096, messages=messages)
        claude.close()
        served = served_names(registry)
        data = reader.get_metrics_data()
    finally:
        costspan.CostspanInstrumentor().uninstrument()
        meter_provider.shutdown()
    assert data is not None
    metrics = {
        m.name: (m.unit, type(m.data), getattr(m.data, "is_monotonic", False))
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for m in scope.metrics
    }
    return Emitted(served, metrics)


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
        "costspan.budget.unchecked",
    ]


def test_both_paths_give_the_same_names() -> None:
    for otel_name, row in table().items():
        assert row["collector"] == row["python"], otel_name


def test_costspan_emits_what_the_table_says(emitted: Emitted) -> None:
    assert set(emitted.metrics) == set(table())
    for otel_name, row in table().items():
        unit, points, monotonic = emitted.metrics[otel_name]
        assert (unit, points) == (row["unit"], POINTS[row["kind"]]), otel_name
        assert monotonic == ("counter" in row["kind"]), otel_name


def test_costspan_metrics_arrive_as_the_table_says(emitted: Emitted) -> None:
    for otel_name, row in table().items():
        for suffix in SUFFIXES[row["kind"]]:
            name = row["python"] + suffix
            assert name in emitted.served, f"{otel_name}: {name} not in {sorted(emitted.served)}"


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
