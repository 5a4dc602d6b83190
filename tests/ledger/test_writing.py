"""The ledger writes one row per call, off the request path: every call arrives, a full queue drops and counts
instead of blocking, and shutdown and interpreter exit write what is queued."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest

from costspan.ledger import LedgerProcessor
from costspan.testing import ProviderServer, Reply
from ledger_support import rows
from support import API_KEY

MESSAGES = [{"role": "user", "content": "hi"}]


def _chat(client: openai.OpenAI, **options: Any) -> Any:
    return client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, **options)


def test_a_call_becomes_a_row_with_the_spans_numbers(
    ledger: LedgerProcessor, ledger_file: Path, client: openai.OpenAI, server: ProviderServer, otel: Any
) -> None:
    usage = {
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 1024},
        "completion_tokens_details": {"reasoning_tokens": 200},
    }
    server.push(Reply(usage=usage, chunks=4))
    import costspan

    with costspan.attribution(user_id="u-42"), _chat(client, stream=True) as stream:
        for _ in stream:
            pass
    assert ledger.force_flush()
    (row,) = rows(ledger_file)
    span = otel.span()
    attributes = span.attributes
    assert row["trace_id"] == f"{span.context.trace_id:032x}"
    assert row["span_id"] == f"{span.context.span_id:016x}"
    assert row["request_id"] == attributes.get("gen_ai.response.id")
    assert (row["provider"], row["operation"], row["request_model"]) == ("openai", "chat", "gpt-4.1-mini")
    assert row["response_model"] == attributes["gen_ai.response.model"]
    assert (row["input_tokens"], row["output_tokens"]) == (1200, 300)
    assert (row["cache_read_tokens"], row["cache_write_tokens"], row["reasoning_tokens"]) == (1024, 0, 200)
    assert row["cost_usd"] == attributes["gen_ai.usage.cost.amount"]
    parts = ("input", "output", "cache_read", "cache_write", "other")
    assert [row[f"cost_{part}"] for part in parts] == [attributes[f"costspan.cost.{part}"] for part in parts]
    assert (row["price_model"], row["price_source"]) == (
        attributes["costspan.price.model"],
        attributes["costspan.price.source"],
    )
    assert (row["unpriced"], row["estimated"], row["stream_completed"]) == (0, 0, 1)
    assert row["user_id"] == "u-42"
    assert (row["server_address"], row["server_port"]) == ("127.0.0.1", int(server.url.rsplit(":", 1)[1].rstrip("/")))
    assert row["duration_s"] == pytest.approx((span.end_time - span.start_time) / 1e9)
    assert row["time_to_first_chunk_s"] == attributes["gen_ai.response.time_to_first_chunk"]
    assert row["error_type"] is None
    assert row["time"].endswith("Z")


def test_unpriced_and_failed_calls_have_no_cost(
    ledger: LedgerProcessor, ledger_file: Path, client: openai.OpenAI, server: ProviderServer
) -> None:
    server.push(Reply())
    client.chat.completions.create(model="my-finetune-v2", messages=MESSAGES)
    server.push(Reply(status=500))
    with pytest.raises(openai.InternalServerError):
        _chat(client)
    assert ledger.force_flush()
    unpriced, failed = rows(ledger_file)
    assert (unpriced["unpriced"], unpriced["cost_usd"], unpriced["input_tokens"] > 0) == (1, None, True)
    assert (failed["error_type"], failed["cost_usd"], failed["input_tokens"], failed["unpriced"]) == (
        "InternalServerError",
        None,
        None,
        0,
    )


def test_1000_calls_from_8_threads_are_1000_rows_that_cost_what_the_spans_cost(
    ledger: LedgerProcessor, ledger_file: Path, client: openai.OpenAI, otel: Any
) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: _chat(client), range(1000)))
    assert ledger.force_flush()
    written = rows(ledger_file)
    spans = otel.spans()
    assert len(written) == len(spans) == 1000
    assert {row["span_id"] for row in written} == {f"{span.context.span_id:016x}" for span in spans}
    assert sum(row["cost_usd"] for row in written) == pytest.approx(
        sum(span.attributes["gen_ai.usage.cost.amount"] for span in spans), rel=1e-12
    )
    assert ledger.dropped == 0


def test_a_full_queue_drops_and_counts_and_never_blocks(
    tmp_path: Path,
    server: ProviderServer,
    otel: Any,
    instrument: Any,
    client: openai.OpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another connection holds the write lock: the writer waits on it, and calls go on at their own speed."""
    path = tmp_path / "ledger.db"
    processor = LedgerProcessor(path, max_queue=5, busy_timeout=30)
    otel.tracer_provider.add_span_processor(processor)
    instrument()
    _chat(client)
    assert processor.force_flush()
    holder = sqlite3.connect(path)
    holder.execute("BEGIN EXCLUSIVE")
    slowest = 0.0
    for _ in range(40):
        started = time.perf_counter()
        _chat(client)
        slowest = max(slowest, time.perf_counter() - started)
    assert slowest < 5, "a call waited on the ledger"
    assert processor.dropped >= 40 - 5
    holder.rollback()
    holder.close()
    assert processor.force_flush()
    assert len(rows(path)) + processor.dropped == 41
    processor.shutdown()
    assert "costspan: the ledger queue is full (5 calls waiting): calls are dropped and counted, not written" in (
        caplog.messages
    )
    assert f"costspan: {processor.dropped} calls were dropped from the full ledger queue and are not in it" in (
        caplog.messages
    )


def test_shutdown_writes_what_is_queued(tmp_path: Path, otel: Any, instrument: Any, client: openai.OpenAI) -> None:
    path = tmp_path / "ledger.db"
    processor = LedgerProcessor(path, flush_interval=3600)
    otel.tracer_provider.add_span_processor(processor)
    instrument()
    for _ in range(25):
        _chat(client)
    otel.tracer_provider.shutdown()
    assert len(rows(path)) == 25


EXITING_APP = """
import costspan, openai
costspan.instrument()
client = openai.OpenAI(base_url={base_url!r}, api_key={api_key!r}, max_retries=0)
for _ in range(30):
    client.chat.completions.create(model="gpt-4.1-mini", messages=[{{"role": "user", "content": "hi"}}])
"""


def test_interpreter_exit_writes_what_is_queued(tmp_path: Path, server: ProviderServer) -> None:
    """The application neither flushes nor shuts down: the last calls are in the ledger all the same."""
    path = tmp_path / "ledger.db"
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(EXITING_APP).format(base_url=server.openai_base_url, api_key=API_KEY))
    env = {**os.environ, "COSTSPAN_LEDGER": str(path), "OTEL_METRICS_EXPORTER": "none"}
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert len(rows(path)) == 30


def test_files_are_owner_only(tmp_path: Path, server: ProviderServer) -> None:
    """The default ledger's directory is created 0700, and the database and its WAL files are 0600."""
    data_home = tmp_path / "data"
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(EXITING_APP).format(base_url=server.openai_base_url, api_key=API_KEY)
        + "import glob, json, os, stat\nfrom opentelemetry import trace\ntrace.get_tracer_provider().force_flush()\n"
        + f"paths = sorted(glob.glob({str(data_home)!r} + '/costspan/*'))\n"
        + "print(json.dumps([(p, oct(stat.S_IMODE(os.stat(p).st_mode))) for p in paths]))\n"
    )
    env = {**os.environ, "XDG_DATA_HOME": str(data_home), "OTEL_METRICS_EXPORTER": "none"}
    env.pop("COSTSPAN_LEDGER", None)
    result = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    directory = data_home / "costspan"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = json.loads(result.stdout)  # the listing while the ledger was open: the database, its -wal and -shm
    assert [Path(name).name for name, _ in files] == ["ledger.db", "ledger.db-shm", "ledger.db-wal"]
    assert {mode for _, mode in files} == {"0o600"}
    assert f"recording LLM calls in the ledger at {directory / 'ledger.db'}" in result.stderr
    assert len(rows(directory / "ledger.db")) == 30


def test_costspan_calls_with_the_same_response_id_are_each_a_row(
    ledger: LedgerProcessor, ledger_file: Path, client: openai.OpenAI
) -> None:
    """A caching proxy replays a response, id and all: each call costspan traced is still a row."""
    recorded = client.chat.completions.with_raw_response.create(model="gpt-4.1-mini", messages=MESSAGES).http_response
    # The SDK's HTTP library: httpx for openai 2, httpx2 for openai 3.
    http = sys.modules[next(c for c in type(client._client).__mro__ if c.__name__ == "Client").__module__.split(".")[0]]
    replayed = http.MockTransport(
        lambda request: http.Response(200, content=recorded.content, headers={"content-type": "application/json"})
    )
    cache = http.Client(transport=replayed)
    with openai.OpenAI(base_url="http://cache.invalid/v1", api_key=API_KEY, max_retries=0, http_client=cache) as cached:
        _chat(cached)
        _chat(cached)
    assert ledger.force_flush()
    assert len({row["request_id"] for row in rows(ledger_file)}) == 1
    assert len(rows(ledger_file)) == 3
