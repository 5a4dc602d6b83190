"""The floor: the OpenTelemetry SDK work SPEC.md demands of one call, with no costspan logic at all.

One CLIENT span started with the request attributes, one ``set_attributes`` with the response, usage and cost
attributes, ``end``; and the metric records, in the span's context: gen_ai.client.token.usage (input, output),
gen_ai.client.operation.duration, costspan.cost, costspan.tokens for the non-zero kinds only (here cache_read),
and gen_ai.client.operation.time_to_first_chunk for streams. Every attribute is a precomputed constant, so what
is timed is the SDK alone. The harness checks that costspan emits the same attribute keys and metric records.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from _wire import (
    CACHED_TOKENS,
    INPUT_TOKENS,
    MODEL,
    OUTPUT_TOKENS,
    REQUEST,
    RESPONSE_ID,
    RESPONSE_MODEL,
    STREAM_REQUEST,
)
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv._incubating.attributes import openai_attributes
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics
from opentelemetry.semconv.attributes import server_attributes
from opentelemetry.trace import SpanKind

from costspan import attributes as attrs
from costspan.telemetry import DURATION_BUCKETS, TOKEN_BUCKETS

__all__ = ["FLOOR_SCOPE", "Floor"]

FLOOR_SCOPE = "benchmarks.floor"
_SPAN_NAME = f"chat {MODEL}"


def _request_attributes(stream: bool) -> dict[str, Any]:
    return {
        gen_ai.GEN_AI_OPERATION_NAME: "chat",
        gen_ai.GEN_AI_PROVIDER_NAME: "openai",
        gen_ai.GEN_AI_REQUEST_MODEL: MODEL,
        server_attributes.SERVER_ADDRESS: "api.openai.com",
        server_attributes.SERVER_PORT: 443,
        gen_ai.GEN_AI_REQUEST_TEMPERATURE: REQUEST["temperature"],
        gen_ai.GEN_AI_REQUEST_MAX_TOKENS: REQUEST["max_completion_tokens"],
        gen_ai.GEN_AI_REQUEST_STREAM: stream,
    }


_RESPONSE_ATTRIBUTES: dict[str, Any] = {
    gen_ai.GEN_AI_RESPONSE_ID: RESPONSE_ID,
    gen_ai.GEN_AI_RESPONSE_MODEL: RESPONSE_MODEL,
    gen_ai.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"],
    openai_attributes.OPENAI_RESPONSE_SERVICE_TIER: "default",
    gen_ai.GEN_AI_USAGE_INPUT_TOKENS: INPUT_TOKENS,
    gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS: OUTPUT_TOKENS,
    gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: CACHED_TOKENS,
    attrs.COST_AMOUNT: 0.0003926,
    attrs.COST_CURRENCY: "USD",
    attrs.COST_SOURCE: "local",
    attrs.COST_INPUT: 0.0000704,
    attrs.COST_OUTPUT: 0.0003168,
    attrs.COST_CACHE_READ: 0.0001024,
    attrs.COST_CACHE_WRITE: 0.0,
    attrs.COST_OTHER: 0.0,
    attrs.PRICE_MODEL: MODEL,
    attrs.PRICE_SOURCE: "genai-prices",
}
_METRIC_BASE: dict[str, Any] = {
    gen_ai.GEN_AI_OPERATION_NAME: "chat",
    gen_ai.GEN_AI_PROVIDER_NAME: "openai",
    gen_ai.GEN_AI_REQUEST_MODEL: MODEL,
    gen_ai.GEN_AI_RESPONSE_MODEL: RESPONSE_MODEL,
}
_INPUT = {**_METRIC_BASE, gen_ai.GEN_AI_TOKEN_TYPE: "input"}
_OUTPUT = {**_METRIC_BASE, gen_ai.GEN_AI_TOKEN_TYPE: "output"}
_CACHE_READ = {**_METRIC_BASE, gen_ai.GEN_AI_TOKEN_TYPE: "cache_read"}


class Floor:
    """Runs a ``create`` call inside the bare span and metric work; ``call`` and ``stream`` mirror the baseline's."""

    def __init__(self, tracer_provider: TracerProvider, meter_provider: MeterProvider) -> None:
        self._tracer = tracer_provider.get_tracer(FLOOR_SCOPE)
        meter = meter_provider.get_meter(FLOOR_SCOPE)
        self._token_usage = meter.create_histogram(
            gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE, unit="{token}", explicit_bucket_boundaries_advisory=TOKEN_BUCKETS
        )
        self._duration = meter.create_histogram(
            gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION,
            unit="s",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._time_to_first_chunk = meter.create_histogram(
            gen_ai_metrics.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
            unit="s",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._cost = meter.create_counter(attrs.COST_METRIC, unit="USD")
        self._tokens = meter.create_counter(attrs.TOKENS_METRIC, unit="{token}")
        self._call_attributes = _request_attributes(stream=False)
        self._stream_attributes = _request_attributes(stream=True)
        # The context ``metrics_only`` records in: a sampled span's, as a call's is (the SDK's trace-based exemplar
        # filter samples measurements in it), started once and never ended, so that no span is timed.
        self._span_context = trace.set_span_in_context(self._tracer.start_span(_SPAN_NAME, kind=SpanKind.CLIENT))

    def call(self, create: Callable[..., Any]) -> int:
        span = self._tracer.start_span(_SPAN_NAME, kind=SpanKind.CLIENT, attributes=self._call_attributes)
        start = time.perf_counter_ns()
        create(**REQUEST)
        duration = (time.perf_counter_ns() - start) / 1e9
        span.set_attributes(_RESPONSE_ATTRIBUTES)
        self._record(trace.set_span_in_context(span), duration, None)
        span.end()
        return 0

    def span_only(self, create: Callable[..., Any]) -> int:
        """``call``'s span work without its metric records: the floor's parts, each timed alone."""
        span = self._tracer.start_span(_SPAN_NAME, kind=SpanKind.CLIENT, attributes=self._call_attributes)
        create(**REQUEST)
        span.set_attributes(_RESPONSE_ATTRIBUTES)
        span.end()
        return 0

    def metrics_only(self, create: Callable[..., Any]) -> int:
        """``call``'s metric records (and the duration they record) without its span."""
        start = time.perf_counter_ns()
        create(**REQUEST)
        self._record(self._span_context, (time.perf_counter_ns() - start) / 1e9, None)
        return 0

    def stream(self, create: Callable[..., Any]) -> int:
        span = self._tracer.start_span(_SPAN_NAME, kind=SpanKind.CLIENT, attributes=self._stream_attributes)
        start = time.perf_counter_ns()
        first = 0
        seen = 0
        for _chunk in create(**STREAM_REQUEST):
            if not first:
                first = time.perf_counter_ns()
            seen += 1
        duration = (time.perf_counter_ns() - start) / 1e9
        time_to_first_chunk = (first - start) / 1e9
        span.set_attributes(
            {
                **_RESPONSE_ATTRIBUTES,
                gen_ai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: time_to_first_chunk,
                attrs.STREAM_COMPLETED: True,
            }
        )
        self._record(trace.set_span_in_context(span), duration, time_to_first_chunk)
        span.end()
        return seen

    def _record(self, context: Context, duration: float, time_to_first_chunk: float | None) -> None:
        self._duration.record(duration, _METRIC_BASE, context)
        if time_to_first_chunk is not None:
            self._time_to_first_chunk.record(time_to_first_chunk, _METRIC_BASE, context)
        self._token_usage.record(INPUT_TOKENS, _INPUT, context)
        self._token_usage.record(OUTPUT_TOKENS, _OUTPUT, context)
        self._tokens.add(CACHED_TOKENS, _CACHE_READ, context)
        self._cost.add(_RESPONSE_ATTRIBUTES[attrs.COST_AMOUNT], _METRIC_BASE, context)
