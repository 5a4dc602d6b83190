"""The ledger writes one row per call, off the request path: every call arrives, a full queue drops and counts
instead of blocking, and shutdown and interpreter exit write what is queued."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan

import costspan
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


def test_10000_rows_from_8_threads_arrive_complete_with_their_exact_costs(
    ledger: LedgerProcessor, ledger_file: Path, client: openai.OpenAI, server: ProviderServer, otel: Any
) -> None:
    """10,000 real round trips would take about 20 s on the CI's two cores (2 ms each through the local server, 0.8
    ms with no network at all, measured), so 48 real calls (plain and inline streams, two models, cached and
    reasoning tokens, every usage different) give costspan's spans, and 8 threads end 10,000 spans carrying exactly
    those spans' scope, name, kind and attributes through the OpenTelemetry SDK, as costspan ends its own: what
    the ledger receives from 8 request threads at once, at a rate no real call reaches. The test above does 1000
    real calls from 8 threads."""
    for index in range(48):
        usage = {
            "prompt_tokens": 1000 + 37 * index,
            "completion_tokens": 50 + 11 * index,
            "total_tokens": 1050 + 48 * index,
            "prompt_tokens_details": {"cached_tokens": 64 * (index % 5)},
            "completion_tokens_details": {"reasoning_tokens": 7 * (index % 3)},
        }
        server.push(Reply(usage=usage))
        model = ("gpt-4.1-mini", "gpt-4.1")[index % 2]
        if index % 4 < 2:
            client.chat.completions.create(model=model, messages=MESSAGES)
        else:
            for _ in client.chat.completions.create(model=model, messages=MESSAGES, stream=True):
                pass
    assert ledger.force_flush()
    calls = otel.spans()
    assert len({call.attributes["gen_ai.usage.cost.amount"] for call in calls}) == 48
    scope = calls[0].instrumentation_scope
    tracer = otel.tracer_provider.get_tracer(scope.name, scope.version, schema_url=scope.schema_url)
    start = threading.Barrier(8)

    def end_spans(thread: int) -> list[tuple[int, ReadableSpan]]:
        start.wait()
        ended = []
        for index in range(thread, 10_000, 8):
            call = calls[index % len(calls)]
            span = tracer.start_span(call.name, kind=call.kind, attributes=call.attributes)
            span.end()
            ended.append((span.get_span_context().span_id, call))
        return ended

    with ThreadPoolExecutor(8) as pool:
        ended = dict(pair for spans in pool.map(end_spans, range(8)) for pair in spans)
    assert ledger.force_flush()
    written = {int(row["span_id"], 16): row for row in rows(ledger_file)}
    assert len(ended) == 10_000 and set(ended) <= set(written) and len(written) == 10_000 + len(calls)
    for span_id, call in ended.items():
        row, attributes = written[span_id], call.attributes
        assert row["cost_usd"] == attributes["gen_ai.usage.cost.amount"]
        assert (row["input_tokens"], row["output_tokens"], row["cache_read_tokens"], row["reasoning_tokens"]) == (
            attributes["gen_ai.usage.input_tokens"],
            attributes["gen_ai.usage.output_tokens"],
            attributes.get("gen_ai.usage.cache_read.input_tokens", 0),
            attributes.get("gen_ai.usage.reasoning.output_tokens", 0),
        )
    assert (ledger.dropped, ledger.unwritten) == (0, 0)


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


def test_calls_never_wait_on_a_stalled_writer(
    tmp_path: Path, server: ProviderServer, otel: Any, instrument: Any, client: openai.OpenAI
) -> None:
    """A deliberately slow ledger, proven without measuring latency: another connection holds the write lock and
    the writer waits on it for up to an hour, inside its write, with a flush waiting behind it. Plain calls and
    inline streams, sync and async, all complete and end their spans meanwhile (a call that waited on the writer
    could not finish before the lock is released: the test would fail at its one-minute cap); nothing is dropped,
    and every row arrives once the lock is gone."""
    path = tmp_path / "ledger.db"
    processor = LedgerProcessor(path, busy_timeout=3600)
    otel.tracer_provider.add_span_processor(processor)
    instrument()
    _chat(client)
    assert processor.force_flush()
    holder = sqlite3.connect(path)
    holder.execute("BEGIN EXCLUSIVE")
    _chat(client)
    flushed: list[bool] = []
    flusher = threading.Thread(target=lambda: flushed.append(processor.force_flush(3_600_000)))
    flusher.start()
    caller = ThreadPoolExecutor(1)
    try:
        _wait_until_writing(processor)
        caller.submit(_calls_of_every_kind, client, server, 10).result(timeout=60)
        assert _writing(processor) and flusher.is_alive(), "the writer stayed stalled while the calls ran"
        spans = otel.spans()
        assert len(spans) == 42 and set(otel.lifecycle.ended) == set(otel.lifecycle.started)
        assert len(rows(path)) == 1
    finally:
        holder.rollback()
        holder.close()
        caller.shutdown()
    flusher.join()
    assert flushed == [True]
    assert processor.force_flush()
    written = {row["span_id"]: row["cost_usd"] for row in rows(path)}
    assert written == {f"{span.context.span_id:016x}": span.attributes["gen_ai.usage.cost.amount"] for span in spans}
    assert (processor.dropped, processor.unwritten) == (0, 0)
    processor.shutdown()


def _calls_of_every_kind(client: openai.OpenAI, server: ProviderServer, count: int) -> None:
    for _ in range(count):
        _chat(client)
        for _ in _chat(client, stream=True):
            pass
    asyncio.run(_async_calls(server, count))


async def _async_calls(server: ProviderServer, count: int) -> None:
    async with openai.AsyncOpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0) as client:
        for _ in range(count):
            await client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)
            async for _ in await client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, stream=True):
                pass


def _writing(processor: LedgerProcessor) -> bool:
    """Whether the ledger's writer thread is inside a write (there, waiting on the database's lock)."""
    frame = sys._current_frames().get(processor._thread.ident or 0)
    while frame is not None:
        if frame.f_code is LedgerProcessor._write.__code__:
            return True
        frame = frame.f_back
    return False


def _wait_until_writing(processor: LedgerProcessor) -> None:
    deadline = time.monotonic() + 60
    while not _writing(processor):
        assert time.monotonic() < deadline, "the writer never began its write"
        time.sleep(0.01)


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


def test_a_symlink_at_the_ledger_path_is_refused(
    tmp_path: Path, otel: Any, instrument: Any, client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    """A link placed at the ledger's path (to another user's file, or ~/.bashrc) is never followed: its target is
    left as it was, and the warning says why no row is written."""
    target = tmp_path / "elsewhere.txt"
    target.write_text("not yours to write\n")
    link = tmp_path / "ledger.db"
    link.symlink_to(target)
    processor = LedgerProcessor(link)
    otel.tracer_provider.add_span_processor(processor)
    instrument()
    _chat(client)
    assert not processor.force_flush()
    processor.shutdown()
    assert target.read_text() == "not yours to write\n" and link.is_symlink()
    assert any("it is a symbolic link, which costspan does not follow" in message for message in caplog.messages)


def test_a_looser_existing_ledger_is_made_owner_only_with_a_warning(
    tmp_path: Path, otel: Any, instrument: Any, client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ledger.db"
    sqlite3.connect(path).close()
    path.chmod(0o644)
    processor = LedgerProcessor(path)
    otel.tracer_provider.add_span_processor(processor)
    instrument()
    _chat(client)
    assert processor.force_flush()
    processor.shutdown()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(rows(path)) == 1
    assert f"costspan: the ledger file {path} was readable or writable by others (mode 644): made owner-only (600)" in (
        caplog.messages
    )
