"""Small OTLP receivers on 127.0.0.1, gRPC and HTTP/protobuf, built on opentelemetry-proto's service definitions.

Each keeps what it received: ``spans`` (name -> attributes of every span) and ``metrics`` (the names of every
metric). They stand in for a collector where a test (or a docs block) exports OTLP; they answer every export with
success, as a collector does.
"""

from __future__ import annotations

import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

__all__ = ["GrpcReceiver", "HttpReceiver", "Received"]


@dataclass
class Received:
    """What a receiver was sent: each span as (scope name, span name, attributes), and each metric's name."""

    spans: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    metrics: set[str] = field(default_factory=set)
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_traces(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        with self._lock:
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        attributes = {a.key: _value(a.value) for a in span.attributes}
                        self.spans.append((scope_spans.scope.name, span.name, attributes))

    def add_metrics(self, request: metrics_service_pb2.ExportMetricsServiceRequest) -> None:
        with self._lock:
            for resource_metrics in request.resource_metrics:
                for scope_metrics in resource_metrics.scope_metrics:
                    self.metrics.update(metric.name for metric in scope_metrics.metrics)

    def wait_for(self, metric: str, timeout: float = 20.0) -> None:
        """Wait until ``metric`` arrived (exporters send from their own threads)."""
        deadline = time.monotonic() + timeout
        while metric not in self.metrics and time.monotonic() < deadline:
            time.sleep(0.05)


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in {"string_value", "bool_value", "int_value", "double_value"} else None


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(self, request: Any, context: Any) -> Any:
        self.received.add_traces(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):  # type: ignore[misc]
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(self, request: Any, context: Any) -> Any:
        self.received.add_metrics(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class GrpcReceiver:
    """``with GrpcReceiver(port=0) as received:`` an OTLP/gRPC receiver on 127.0.0.1 (``received.port``)."""

    def __init__(self, port: int = 0) -> None:
        self.received = Received()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Traces(self.received), self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Metrics(self.received), self._server)
        self.received.port = self._server.add_insecure_port(f"127.0.0.1:{port}")
        if not self.received.port:
            raise OSError(f"cannot listen on 127.0.0.1:{port}")

    def __enter__(self) -> Received:
        self._server.start()
        return self.received

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None)


class _Handler(BaseHTTPRequestHandler):
    received: Received

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path == "/v1/traces":
            request: Any = trace_service_pb2.ExportTraceServiceRequest()
            request.ParseFromString(body)
            self.received.add_traces(request)
        elif self.path == "/v1/metrics":
            request = metrics_service_pb2.ExportMetricsServiceRequest()
            request.ParseFromString(body)
            self.received.add_metrics(request)
        elif self.path != "/v1/logs":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


class HttpReceiver:
    """``with HttpReceiver(port=0) as received:`` an OTLP/HTTP (protobuf) receiver on 127.0.0.1."""

    def __init__(self, port: int = 0) -> None:
        self.received = Received()
        handler = type("Handler", (_Handler,), {"received": self.received})
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.received.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Received:
        self._thread.start()
        return self.received

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
