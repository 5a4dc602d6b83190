"""The OpenTelemetry SDK pipeline every measured variant shares: real providers whose export is kept out of the
timed loop.

Spans go through a ``BatchSpanProcessor`` (what production uses) into an exporter that only counts them. The
processor's worker is never woken during a batch: a batch ends fewer spans than ``max_export_batch_size``, the
schedule delay is an hour, and the harness flushes between batches. Metrics go to an ``InMemoryMetricReader``,
collected between rounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

__all__ = ["Otel"]

_HOUR_MS = 3_600_000
_MAX_EXPORT_BATCH = 512


class CountingExporter(SpanExporter):
    """Drops spans, keeping only their count and the last one."""

    def __init__(self) -> None:
        self.count = 0
        self.last: ReadableSpan | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if spans:
            self.count += len(spans)
            self.last = spans[-1]
        return SpanExportResult.SUCCESS


class Otel:
    def __init__(self) -> None:
        self.exporter = CountingExporter()
        self.tracer_provider = TracerProvider()
        processor = BatchSpanProcessor(
            self.exporter, schedule_delay_millis=_HOUR_MS, max_export_batch_size=_MAX_EXPORT_BATCH
        )
        self.tracer_provider.add_span_processor(processor)
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def flush(self) -> int:
        """Export what the batch ended; the number of spans exported so far."""
        self.tracer_provider.force_flush()
        return self.exporter.count

    def metric_shapes(self, scope_prefix: str) -> set[tuple[str, tuple[str, ...]]]:
        """(metric name, sorted attribute keys) of every data point recorded by scopes named ``scope_prefix*``."""
        data = self.reader.get_metrics_data()
        shapes: set[tuple[str, tuple[str, ...]]] = set()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                if scope.scope.name.startswith(scope_prefix):
                    shapes |= {
                        (metric.name, tuple(sorted(point.attributes or {})))
                        for metric in scope.metrics
                        for point in metric.data.data_points
                    }
        return shapes

    def collect(self) -> None:
        self.reader.get_metrics_data()

    def shutdown(self) -> None:
        self.meter_provider.shutdown()
        self.tracer_provider.shutdown()


class Switch(SpanProcessor):
    """Passes spans to ``processor`` only while on: a processor for some variants' batches on a provider shared
    by all (a provider's processors cannot be removed). The same call either way, so every variant pays for it;
    the processor's flush and shutdown stay its owner's."""

    def __init__(self, processor: SpanProcessor) -> None:
        self.processor = processor
        self.on = False

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if self.on:
            self.processor.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if self.on:
            self.processor.on_end(span)
