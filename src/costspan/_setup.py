"""Default OpenTelemetry SDK providers for ``costspan.instrument()`` when the application configured none.

Exporters follow the standard variables: ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` (``otlp``,
``otlp_proto_grpc``, ``otlp_proto_http``, ``console``, ``none``), and an ``OTEL_EXPORTER_OTLP_*ENDPOINT`` alone
also asks for OTLP. With none of them set, no exporter is added here. OTLP goes over ``OTEL_EXPORTER_OTLP_PROTOCOL``
(or the per-signal ``OTEL_EXPORTER_OTLP_{TRACES,METRICS}_PROTOCOL``): ``http/protobuf`` (the default the
OpenTelemetry specification gives) or ``grpc``. An endpoint on the other protocol's well-known port (4317 is gRPC's,
4318 HTTP's) receives nothing, so that mismatch is logged once with the fix.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

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
_logger = logging.getLogger("costspan")
_GRPC, _HTTP = "grpc", "http/protobuf"
_PORTS = {_GRPC: 4317, _HTTP: 4318}
# The exporter names the OpenTelemetry SDK's configurator accepts for OTLP, and the protocol each one fixes.
_OTLP_NAMES = {"otlp": None, "otlp_proto_grpc": _GRPC, "otlp_proto_http": _HTTP}
_warned: set[tuple[str, str]] = set()


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


def _otlp_protocol(environ: Mapping[str, str], signal: str, wanted: set[str]) -> str | None:
    """The OTLP protocol of ``signal``'s exporter, None when it exports no OTLP."""
    named = [protocol for name, protocol in _OTLP_NAMES.items() if name in wanted]
    if not named:
        return None
    variable = _first_set(environ, f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
    protocol = named[0] or (environ[variable].strip() if variable else _HTTP)
    if protocol not in _PORTS:
        _warn_once(
            (variable or "", protocol),
            "costspan: %s=%s is not an OTLP protocol costspan exports with (grpc, http/protobuf); using %s",
            variable,
            protocol,
            _HTTP,
        )
        protocol = _HTTP
    _check_port(environ, signal, protocol, variable)
    return protocol


def _check_port(environ: Mapping[str, str], signal: str, protocol: str, protocol_variable: str | None) -> None:
    """Warn once when the endpoint is the other protocol's well-known port: nothing would be received there."""
    variable = _first_set(environ, f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    if variable is None:
        return
    endpoint = environ[variable].strip()
    try:
        port = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}").port
    except ValueError:
        return  # the exporter reports an unusable endpoint itself
    other = _GRPC if protocol == _HTTP else _HTTP
    if port != _PORTS[other]:
        return
    how = f"{protocol_variable}={protocol}" if protocol_variable else f"the default protocol, {protocol}"
    _warn_once(
        (variable, protocol),
        "costspan: %s=%s is the OTLP %s port, but costspan exports %s there (%s), which it will not receive; "
        "use port %d, or set OTEL_EXPORTER_OTLP_PROTOCOL=%s",
        variable,
        endpoint,
        other,
        protocol,
        how,
        _PORTS[protocol],
        other,
    )


def _first_set(environ: Mapping[str, str], *names: str) -> str | None:
    """The first of ``names`` set to something (the per-signal variable wins over the general one)."""
    return next((name for name in names if environ.get(name, "").strip()), None)


def _warn_once(key: tuple[str, str], message: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        _logger.warning(message, *args)


def _span_exporters(environ: Mapping[str, str]) -> list[SpanExporter]:
    exporters: list[SpanExporter] = []
    wanted = _wanted(environ, "TRACES")
    if "console" in wanted:
        exporters.append(ConsoleSpanExporter())
    protocol = _otlp_protocol(environ, "TRACES", wanted)
    if protocol == _GRPC:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    elif protocol == _HTTP:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[assignment]
    if protocol is not None:
        exporters.append(OTLPSpanExporter())
    return exporters


def _metric_exporters(environ: Mapping[str, str]) -> list[MetricExporter]:
    exporters: list[MetricExporter] = []
    wanted = _wanted(environ, "METRICS")
    if "console" in wanted:
        exporters.append(ConsoleMetricExporter())
    protocol = _otlp_protocol(environ, "METRICS", wanted)
    if protocol == _GRPC:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    elif protocol == _HTTP:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[assignment]
            OTLPMetricExporter,
        )
    if protocol is not None:
        exporters.append(OTLPMetricExporter())
    return exporters
