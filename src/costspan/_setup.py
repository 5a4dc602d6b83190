"""Default OpenTelemetry SDK providers for ``costspan.instrument()`` when the application configured none.

Exporters follow the standard variables: ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` (``otlp``,
``console``, ``none``), and an ``OTEL_EXPORTER_OTLP_*ENDPOINT`` alone also asks for OTLP. With none of them set,
no exporter is added here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

__all__ = ["configure_default_providers"]


_configured: list[TracerProvider] = []


def configure_default_providers(environ: Mapping[str, str] = os.environ) -> bool:
    """Set up the global providers the application left unset; True when the global TracerProvider is costspan's
    (set up now or by an earlier call), the case where costspan adds its embedded default, the ledger."""
    resource = Resource.create()
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        tracer_provider = TracerProvider(resource=resource)
        for exporter in _span_exporters(environ):
            tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(tracer_provider)
        if trace.get_tracer_provider() is tracer_provider:
            _configured.append(tracer_provider)
    if not isinstance(metrics.get_meter_provider(), MeterProvider):
        readers: list[MetricReader] = [PeriodicExportingMetricReader(e) for e in _metric_exporters(environ)]
        metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
    return trace.get_tracer_provider() in _configured


def _wanted(environ: Mapping[str, str], signal: str) -> set[str]:
    names = environ.get(f"OTEL_{signal}_EXPORTER")
    if names is not None:
        return {name.strip() for name in names.split(",")} - {"none", ""}
    endpoint = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    return {"otlp"} if endpoint else set()


def _otlp_protocol(environ: Mapping[str, str], signal: str) -> str:
    return environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )


def _span_exporters(environ: Mapping[str, str]) -> list[SpanExporter]:
    exporters: list[SpanExporter] = []
    wanted = _wanted(environ, "TRACES")
    if "console" in wanted:
        exporters.append(ConsoleSpanExporter())
    if "otlp" in wanted:
        if _otlp_protocol(environ, "TRACES") == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[assignment]
        exporters.append(OTLPSpanExporter())
    return exporters


def _metric_exporters(environ: Mapping[str, str]) -> list[MetricExporter]:
    exporters: list[MetricExporter] = []
    wanted = _wanted(environ, "METRICS")
    if "console" in wanted:
        exporters.append(ConsoleMetricExporter())
    if "otlp" in wanted:
        if _otlp_protocol(environ, "METRICS") == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[assignment]
                OTLPMetricExporter,
            )
        exporters.append(OTLPMetricExporter())
    return exporters
