"""Spans and metrics, a consumer of the call's settlement: instruments are created once; each finished call
becomes one attribute write and the metric records SPEC.md names, nothing zero and nothing twice."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.metrics import Meter
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from . import attributes as attrs
from ._call import Call, marked_in_call
from .context import BaggageAttribution, current_attribution

if TYPE_CHECKING:
    from .pricing import Cost
    from .settle import Settlement
    from .usage import Usage

__all__ = ["Telemetry"]

_log = logging.getLogger("costspan")

# Semantic-convention bucket boundaries (gen_ai metrics spec).
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)

# Series whose attribute dicts are kept; past it the cache starts over (a bound, for high-cardinality attribution).
_METRIC_CACHE_SIZE = 4096

_INPUT = {gen_ai.GEN_AI_TOKEN_TYPE: "input"}
_OUTPUT = {gen_ai.GEN_AI_TOKEN_TYPE: "output"}
_CACHE_READ = {gen_ai.GEN_AI_TOKEN_TYPE: "cache_read"}
_CACHE_WRITE = {gen_ai.GEN_AI_TOKEN_TYPE: "cache_write"}
_REASONING = {gen_ai.GEN_AI_TOKEN_TYPE: "reasoning"}


class Telemetry:
    """Everything a call needs to report itself: the tracer, the instruments and the metric attributes."""

    def __init__(
        self,
        tracer: Tracer,
        meter: Meter,
        *,
        metric_attributes: Sequence[str] = (),
        baggage_keys: Sequence[str] | None = None,
    ) -> None:
        self.tracer = tracer
        self.metric_attributes = tuple(metric_attributes)
        self._missing_reported: set[str] = set()
        # Attribution from W3C baggage, when asked for (None: baggage is not read).
        self.baggage = BaggageAttribution(baggage_keys, meter) if baggage_keys is not None else None
        self.token_usage = meter.create_histogram(
            gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.duration = meter.create_histogram(
            gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.time_to_first_chunk = meter.create_histogram(
            gen_ai_metrics.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to receive the first chunk of a streaming response.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.cost = meter.create_counter(attrs.COST_METRIC, unit="USD", description="Cost of GenAI calls.")
        self.tokens = meter.create_counter(
            attrs.TOKENS_METRIC,
            unit="{token}",
            description="Cache read, cache write and reasoning tokens (the kinds gen_ai.client.token.usage lacks).",
        )
        self._metric_cache: dict[tuple[Any, ...], _MetricAttributeSets] = {}

    def start(self, call: Call) -> None:
        """Open the call's span under the caller's current span."""
        attributes = call.attributes
        for key, value in current_attribution().items():
            attributes.setdefault(key, value)
        if self.baggage is not None:
            self.baggage.read(attributes)
        span = self.tracer.start_span(f"{call.operation} {call.model}", kind=SpanKind.CLIENT, attributes=attributes)
        call.span = span
        call.context = marked_in_call(trace.set_span_in_context(span))
        call.start_ns = time.perf_counter_ns()

    def report(
        self,
        call: Call,
        settlement: Settlement,
        error: BaseException | None,
        completed: bool | None,
        end_ns: int,
    ) -> None:
        """Put the call's settlement on its span and metrics, then end the span when the call ended (``end_ns``,
        on the clock of ``call.start_ns``): what costspan did after the call (pricing, a budget's settlement) is
        not the call's time, and the span and the duration metric say the same duration."""
        span = call.span
        if span is None:
            return
        started = getattr(span, "start_time", None)
        end_time = started + end_ns - call.start_ns if isinstance(started, int) else None
        try:
            usage, cost = settlement.usage, settlement.cost
            span_attributes = _span_attributes(call, usage, cost, error, completed)
            if span_attributes:
                span.set_attributes(span_attributes)
            if error is not None:
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            self._record_metrics(call, usage, cost, error, (end_ns - call.start_ns) / 1e9)
        finally:
            span.end(end_time)

    def _record_metrics(
        self, call: Call, usage: Usage | None, cost: Cost | None, error: BaseException | None, duration: float
    ) -> None:
        sets = self._metric_sets(call)
        base = sets.base
        context = call.context
        self.duration.record(
            duration,
            {**base, error_attributes.ERROR_TYPE: _error_type(error)} if error is not None else base,
            context,
        )
        if call.first_chunk_ns:
            self.time_to_first_chunk.record((call.first_chunk_ns - call.start_ns) / 1e9, base, context)
        if usage is None:
            return
        record = self.token_usage.record
        if usage.input_tokens:
            record(usage.input_tokens, sets.input, context)
        if usage.output_tokens:
            record(usage.output_tokens, sets.output, context)
        add = self.tokens.add
        if usage.cache_read_tokens:
            add(usage.cache_read_tokens, sets.cache_read, context)
        if usage.cache_write_tokens:
            add(usage.cache_write_tokens, sets.cache_write, context)
        if usage.reasoning_tokens:
            add(usage.reasoning_tokens, sets.reasoning, context)
        if cost is not None and cost.amount:
            self.cost.add(cost.amount, base, context)

    def _metric_sets(self, call: Call) -> _MetricAttributeSets:
        """The metric attribute dicts for the call's series, built once per series rather than once per call."""
        key: tuple[Any, ...] = (call.operation, call.provider, call.model, call.response_model)
        if self.metric_attributes:
            given = call.attributes
            key += tuple(given.get(name) for name in self.metric_attributes)
        sets = self._metric_cache.get(key)
        if sets is None:
            if len(self._metric_cache) >= _METRIC_CACHE_SIZE:
                self._metric_cache.clear()
            sets = self._metric_cache[key] = _MetricAttributeSets(self._metric_attributes(call))
        return sets

    def _metric_attributes(self, call: Call) -> dict[str, Any]:
        base: dict[str, Any] = {
            gen_ai.GEN_AI_OPERATION_NAME: call.operation,
            gen_ai.GEN_AI_PROVIDER_NAME: call.provider,
            gen_ai.GEN_AI_REQUEST_MODEL: call.model,
        }
        if call.response_model:
            base[gen_ai.GEN_AI_RESPONSE_MODEL] = call.response_model
        if self.metric_attributes:
            given = call.attributes
            for key in self.metric_attributes:
                if key in given:
                    base[key] = given[key]
                elif key not in self._missing_reported:
                    self._report_missing(key, call)
        return base

    def _report_missing(self, key: str, call: Call) -> None:
        """Once per name: a metric attribute a call did not carry, and the attribution attributes it did."""
        self._missing_reported.add(key)
        carried = sorted(name for name in current_attribution() if name in call.attributes) or "none"
        _log.warning(
            "costspan: metric attribute %r was not on a call (its attribution attributes: %s); set it with "
            "costspan.attribution(...), or list one of those in metric_attributes",
            key,
            carried,
        )


class _MetricAttributeSets:
    """One series' attribute dicts: the base set and one per token type. Never mutated once built."""

    __slots__ = ("base", "cache_read", "cache_write", "input", "output", "reasoning")

    def __init__(self, base: dict[str, Any]) -> None:
        self.base = base
        self.input = {**base, **_INPUT}
        self.output = {**base, **_OUTPUT}
        self.cache_read = {**base, **_CACHE_READ}
        self.cache_write = {**base, **_CACHE_WRITE}
        self.reasoning = {**base, **_REASONING}


def _span_attributes(
    call: Call, usage: Usage | None, cost: Cost | None, error: BaseException | None, completed: bool | None
) -> dict[str, Any]:
    out: dict[str, Any] = dict(call.response_attributes) if call.response_attributes else {}
    if call.response_id:
        out[gen_ai.GEN_AI_RESPONSE_ID] = call.response_id
    if call.response_model:
        out[gen_ai.GEN_AI_RESPONSE_MODEL] = call.response_model
    if call.finish_reasons:
        out[gen_ai.GEN_AI_RESPONSE_FINISH_REASONS] = call.finish_reasons
    if call.first_chunk_ns:
        out[gen_ai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = (call.first_chunk_ns - call.start_ns) / 1e9
    if completed is not None:
        out[attrs.STREAM_COMPLETED] = completed
    if error is not None:
        out[error_attributes.ERROR_TYPE] = _error_type(error)
    if usage is not None:
        _usage_attributes(out, usage)
        _cost_attributes(out, cost)
    if call.content is not None:  # only with content capture on; spans only, never metrics
        out.update(call.content.attributes(call.finish_reasons))
    return out


def _usage_attributes(out: dict[str, Any], usage: Usage) -> None:
    out[gen_ai.GEN_AI_USAGE_INPUT_TOKENS] = usage.input_tokens
    out[gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
    if usage.cache_read_tokens:
        out[gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read_tokens
    if usage.cache_write_tokens:
        out[attrs.USAGE_CACHE_WRITE_INPUT_TOKENS] = usage.cache_write_tokens
    if usage.reasoning_tokens:
        out[gen_ai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
    if usage.estimated:
        out[attrs.USAGE_ESTIMATED] = True
    if usage.unusable:
        out[attrs.USAGE_UNUSABLE] = True


def _cost_attributes(out: dict[str, Any], cost: Cost | None) -> None:
    if cost is None:
        out[attrs.COST_UNPRICED] = True
        return
    out[attrs.COST_AMOUNT] = cost.amount
    out[attrs.COST_CURRENCY] = "USD"
    out[attrs.COST_SOURCE] = "local"
    out[attrs.COST_INPUT] = cost.input
    out[attrs.COST_OUTPUT] = cost.output
    out[attrs.COST_CACHE_READ] = cost.cache_read
    out[attrs.COST_CACHE_WRITE] = cost.cache_write
    out[attrs.COST_OTHER] = cost.other
    out[attrs.PRICE_MODEL] = cost.price_model
    out[attrs.PRICE_SOURCE] = cost.price_source
    if cost.fallback:
        out[attrs.PRICE_FALLBACK] = True


def _error_type(error: BaseException) -> str:
    return type(error).__qualname__
