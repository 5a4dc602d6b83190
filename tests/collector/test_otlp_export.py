"""What ``costspan.instrument()`` exports over OTLP when it sets up the SDK itself: the protocol the standard
variables ask for (``OTEL_EXPORTER_OTLP_PROTOCOL``, per signal too), received by a real OTLP receiver, and one
warning, with the fix, when the endpoint is the other protocol's well-known port."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from costspan.testing import ProviderServer, Reply
from otlp_receivers import GrpcReceiver, HttpReceiver
from support import API_KEY, child_environment

APP = """
import costspan, openai
costspan.instrument(ledger=False)
client = openai.OpenAI(base_url={base_url!r}, api_key={api_key!r}, max_retries=0)
client.chat.completions.create(model="gpt-4.1-mini", messages=[{{"role": "user", "content": "hi"}}])
"""
USAGE = {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}
Receiver = Callable[[], GrpcReceiver | HttpReceiver]


def _run(code: str, tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    environ = child_environment(OTEL_LOGS_EXPORTER="none", OTEL_METRIC_EXPORT_INTERVAL="60000", **variables)
    return subprocess.run(
        [sys.executable, "-c", code], env=environ, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("receiver", "protocol"),
    [
        (GrpcReceiver, {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}),
        (HttpReceiver, {}),  # the default, as the OpenTelemetry specification gives it
        (GrpcReceiver, {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc"}),
        (HttpReceiver, {"OTEL_TRACES_EXPORTER": "otlp_proto_http", "OTEL_METRICS_EXPORTER": "otlp_proto_http"}),
    ],
    ids=["grpc", "default-http", "grpc-per-signal", "http-by-exporter-name"],
)
def test_spans_and_metrics_reach_an_otlp_receiver_over_the_protocol_asked_for(
    receiver: Receiver, protocol: dict[str, str], server: ProviderServer, tmp_path: Path
) -> None:
    server.push(Reply(usage=USAGE))
    with receiver() as received:
        result = _run(
            APP.format(base_url=server.openai_base_url, api_key=API_KEY),
            tmp_path,
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{received.port}",
            **protocol,
        )
        received.wait_for("costspan.cost")

    assert result.returncode == 0, result.stderr
    assert "costspan" not in result.stderr, result.stderr
    ((scope, name, attributes),) = received.spans
    assert (scope, name) == ("costspan.instrumentor", "chat gpt-4.1-mini")
    assert attributes["gen_ai.usage.input_tokens"] == 1000
    assert attributes["gen_ai.usage.cost.amount"] == pytest.approx(1000 * 0.4e-6 + 100 * 1.6e-6)
    assert {"costspan.cost", "gen_ai.client.token.usage", "gen_ai.client.operation.duration"} <= received.metrics


# The warning comes at instrument(); the script then leaves at once, so no exporter waits on a port nobody serves.
WARN = """
import os, costspan
costspan.instrument(ledger=False)
costspan.uninstrument()
costspan.instrument(ledger=False)
os._exit(0)
"""


@pytest.mark.parametrize(
    ("variables", "fix"),
    [
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4317"},
            "use port 4318, or set OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
        ),
    ],
    ids=["http-to-4317"],
)
def test_an_endpoint_on_the_other_protocols_port_is_warned_once_with_the_fix(
    variables: dict[str, str], fix: str, tmp_path: Path
) -> None:
    result = _run(WARN, tmp_path, **variables)

    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "costspan" in line]
    # Once: traces and metrics export to the same endpoint, and instrument() ran twice.
    assert len(warnings) == 1, warnings
    assert f"OTEL_EXPORTER_OTLP_ENDPOINT={variables['OTEL_EXPORTER_OTLP_ENDPOINT']} is the OTLP" in warnings[0]
    assert fix in warnings[0]
