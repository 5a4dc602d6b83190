"""Faults around the call: the telemetry backend down or black-holed adds no latency to calls (within 5% of a
healthy backend); a provider fault raises exactly what the bare SDK raises (same type, same message), compared
against the same client with costspan suppressed. (Redis killed, paused and restarted: tests/budgets/
test_store_failures.py; the ledger read-only, locked, corrupt, disk full: tests/ledger/test_bad_input.py; costspan's
own faults: tests/core/test_faults.py.)"""

from __future__ import annotations

import re
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from providers import PROVIDERS, ProviderUnderTest
from reliability.conftest import Figures

import costspan
from costspan.testing import ProviderServer, Reply
from support import API_KEY

CALLS_PER_ROUND, ROUNDS = 100, 3
MESSAGES = [{"role": "user", "content": "hi"}]


class _Accepting(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def endpoints() -> Iterator[dict[str, str]]:
    """OTLP/HTTP endpoints on loopback: one that answers, one where nothing listens, one that takes connections
    and never reads them."""
    healthy = ThreadingHTTPServer(("127.0.0.1", 0), _Accepting)
    threading.Thread(target=healthy.serve_forever, daemon=True).start()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(1024)
    yield {
        "healthy": f"http://127.0.0.1:{healthy.server_port}",
        "down": f"http://127.0.0.1:{closed.getsockname()[1]}",
        "black-holed": f"http://127.0.0.1:{hole.getsockname()[1]}",
    }
    healthy.shutdown()
    closed.close()
    hole.close()


def _median_call_seconds(server: ProviderServer, endpoint: str) -> float:
    """The median duration of an instrumented call while costspan's spans and metrics export to ``endpoint``."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(f"{endpoint}/v1/traces", timeout=2), schedule_delay_millis=500)
    )
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(f"{endpoint}/v1/metrics", timeout=2), export_interval_millis=1000
    )
    meter_provider = MeterProvider(metric_readers=[reader])
    costspan.CostspanInstrumentor().instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    durations = []
    try:
        with openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0) as client:
            for _ in range(CALLS_PER_ROUND):
                started = time.perf_counter()
                client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)
                durations.append(time.perf_counter() - started)
    finally:
        costspan.CostspanInstrumentor().uninstrument()
        threading.Thread(target=tracer_provider.shutdown, daemon=True).start()  # a black hole holds it 2 s
        threading.Thread(target=meter_provider.shutdown, daemon=True).start()
    return statistics.median(durations)


def test_a_dead_telemetry_backend_adds_no_latency(
    server: ProviderServer, endpoints: dict[str, str], figures: Figures
) -> None:
    medians: dict[str, list[float]] = {kind: [] for kind in endpoints}
    for _ in range(ROUNDS):  # interleaved rounds, so that the machine's own drift hits every kind alike
        for kind, endpoint in endpoints.items():
            medians[kind].append(_median_call_seconds(server, endpoint))
    healthy = min(medians["healthy"])
    noise = max(medians["healthy"]) - healthy  # how much a healthy endpoint's rounds differ among themselves
    for kind in ("down", "black-holed"):
        added = min(medians[kind]) - healthy
        figures.largest(f"latency added: OTLP endpoint {kind} (ms)", round(max(added, 0.0) * 1000, 3))
        figures.count(f"faults: OTLP endpoint {kind} (calls)", ROUNDS * CALLS_PER_ROUND)
        assert added <= 0.05 * healthy + noise, f"{kind}: {medians[kind]} vs healthy {medians['healthy']}"


FAULTS: dict[str, tuple[Reply, bool, dict[str, Any]]] = {
    "500": (Reply(status=500), False, {}),
    "429": (Reply(status=429, headers={"retry-after": "0"}), False, {}),
    "529 overloaded": (Reply(status=529), False, {}),
    "timeout": (Reply(delay=1.0), False, {"timeout": 0.2}),
    "timeout mid-stream": (Reply(chunks=6, chunk_delay=1.0), True, {"timeout": 0.2}),
    "reset mid-stream": (Reply(chunks=6, drop_after=2), True, {}),
    "error event mid-stream": (Reply(chunks=6, error_after=2), True, {}),
}


def _outcome(provider: ProviderUnderTest, client: Any, server: ProviderServer, reply: Reply, stream: bool) -> Any:
    server.push(reply)
    try:
        result = provider.create(client, MESSAGES, stream=stream)
        if stream:
            list(result)
    except Exception as error:  # the request id differs from one request to the next
        return type(error), re.sub(r"req_[0-9a-f]+", "req_", str(error))
    return None


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("provider", PROVIDERS, ids=[p.name for p in PROVIDERS])
def test_a_provider_fault_raises_what_the_bare_sdk_raises(
    provider: ProviderUnderTest,
    fault: str,
    instrumented: None,
    server: ProviderServer,
    otel: Any,
    figures: Figures,
) -> None:
    reply, stream, options = FAULTS[fault]
    with provider.client(server, otel.tracer_provider, options) as client:
        with suppress_instrumentation():
            bare = _outcome(provider, client, server, reply, stream)
        instrumented_outcome = _outcome(provider, client, server, reply, stream)

    assert bare is not None, "the fault did not reach the bare SDK"
    assert instrumented_outcome == bare
    otel.lifecycle.assert_each_ended_once()
    assert len(otel.spans()) == 1
    figures.count(f"faults: provider {fault}", 2)
