"""What the ledger loses, and when (docs/deploy.md states the bound): nothing while it cannot be opened or its disk
is full, as long as fewer calls than the queue's bound wait; nothing on SIGTERM or a normal exit; on SIGKILL, at most
the calls of about the last second. The database stays readable, and ``costspan report`` counts what it holds.
A call never sent (a budget's store down, with ``on_store_error="block"``) has no row."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import costspan
from costspan.ledger import LedgerProcessor
from costspan.ledger._report import period_of, summarize
from costspan.testing import ProviderServer
from ledger_support import read_only_directory, rows
from servers import in_ci
from support import API_KEY

MESSAGES = [{"role": "user", "content": "hi"}]
FLUSH_INTERVAL = 1.0  # the writer's default: the SIGKILL bound


def _chat(client: openai.OpenAI) -> None:
    assert client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES).choices


def _assert_report_counts(path: Path) -> None:
    """``costspan report``'s numbers are the rows' own, over every day."""
    written = rows(path)
    summary = summarize(path, "model", period_of(since="2000-01-01", utc=True))
    assert summary.total.requests == len(written)
    assert summary.total.cost_usd == pytest.approx(sum(row["cost_usd"] or 0 for row in written), rel=1e-9)
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_ledger_unopenable_for_2_seconds_loses_no_call(
    otel: Any, instrumented: None, client: openai.OpenAI, tmp_path: Path
) -> None:
    """A read-only remount for 2 s, as the immutable flag (or mode 0555) makes it: calls go on at their own pace,
    the writer keeps their rows and retries, and every one is written once the directory takes the file again."""
    directory = tmp_path / "ledger"
    with read_only_directory(directory):
        processor = LedgerProcessor(directory / "ledger.db")
        otel.tracer_provider.add_span_processor(processor)
        began = time.monotonic()
        calls = 0
        while time.monotonic() - began < 2:
            _chat(client)
            calls += 1
        assert not (directory / "ledger.db").exists()
    for _ in range(50):  # and on, with the directory writable again
        _chat(client)
    assert processor.force_flush()
    assert (len(rows(directory / "ledger.db")), processor.dropped, processor.unwritten) == (calls + 50, 0, 0)
    _assert_report_counts(directory / "ledger.db")
    processor.shutdown()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB filesystem of its own (tmpfs, mounted as root); skipped where mounting is not allowed, except under
    CI=true, where it fails."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        message = f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(directory: Path) -> Path:
    """A file taking every free byte of ``directory``'s filesystem."""
    filler = directory / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(descriptor, b"\0" * 512):
            pass
    except OSError:
        pass
    finally:
        os.close(descriptor)
    return filler


def test_a_full_disk_then_freed_writes_every_held_call_in_batches_that_fit(
    otel: Any, instrumented: None, client: openai.OpenAI, small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """1,500 calls wait while the 1 MiB disk is full. Then 128 KiB are freed: not room for all of them in one
    transaction, but for hundreds in smaller ones, which are written; the rest wait, and are written once the disk
    has room for them all. The ledger goes on taking calls."""
    path = small_disk / "ledger.db"
    processor = LedgerProcessor(path)
    otel.tracer_provider.add_span_processor(processor)
    _chat(client)
    assert processor.force_flush()
    filler = _fill(small_disk)
    for _ in range(1500):
        _chat(client)
    assert not processor.force_flush()
    assert any("failed (database or disk is full)" in message for message in caplog.messages)
    os.truncate(filler, max(0, filler.stat().st_size - 128 * 1024))
    assert not processor.force_flush()
    assert len(rows(path)) > 50, "what fits in the space freed was not written"
    filler.unlink()
    deadline = time.monotonic() + 30
    while not processor.force_flush():
        assert time.monotonic() < deadline, f"{len(rows(path))} of 1501 rows written after the disk was freed"
    for _ in range(10):
        _chat(client)
    assert processor.force_flush()
    assert (len(rows(path)), processor.dropped, processor.unwritten) == (1511, 0, 0)
    _assert_report_counts(path)
    processor.shutdown()


CALLING_APP = """
import sys, time
import costspan, openai
costspan.instrument()
client = openai.OpenAI(base_url={base_url!r}, api_key={api_key!r}, max_retries=0)
while True:
    client.chat.completions.create(model="gpt-4.1-mini", messages=[{{"role": "user", "content": "hi"}}])
    print(time.time(), flush=True)
"""


def _calling_app(tmp_path: Path, server: ProviderServer, path: Path) -> subprocess.Popen[str]:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(CALLING_APP).format(base_url=server.openai_base_url, api_key=API_KEY))
    env = {**os.environ, "COSTSPAN_LEDGER": str(path), "OTEL_METRICS_EXPORTER": "none", "OTEL_TRACES_EXPORTER": "none"}
    return subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True)


def _ended_calls(app: subprocess.Popen[str], seconds: float, sig: signal.Signals) -> tuple[list[float], float]:
    """Let the app call for ``seconds`` after its first call, send it ``sig``; the end times of its calls (each
    printed once the call returned) and the time of the signal."""
    assert app.stdout is not None
    ended: list[float] = []
    reader = threading.Thread(target=lambda: ended.extend(float(line) for line in app.stdout))  # type: ignore[union-attr]
    reader.start()
    deadline = time.monotonic() + 60
    while not ended:
        assert time.monotonic() < deadline and app.poll() is None, "the app made no call"
        time.sleep(0.05)
    time.sleep(seconds)
    sent = time.time()
    app.send_signal(sig)
    assert app.wait(timeout=30) == -sig
    reader.join()
    return ended, sent


def test_sigterm_writes_every_call(tmp_path: Path, server: ProviderServer) -> None:
    """Kubernetes stops a pod with SIGTERM, whose default action ends the process without the interpreter's exit:
    the ledger writes what it holds first, and the process still ends as SIGTERM ends it."""
    path = tmp_path / "ledger.db"
    ended, _ = _ended_calls(_calling_app(tmp_path, server, path), 2.0, signal.SIGTERM)
    # Every call that returned is a row; one more may have ended its span before its return was printed.
    assert len(ended) <= len(rows(path)) <= len(ended) + 1
    _assert_report_counts(path)


def test_sigkill_loses_at_most_the_last_second(tmp_path: Path, server: ProviderServer) -> None:
    """Nothing runs on SIGKILL: what the writer had not written is lost, and that is at most the calls of the last
    flush interval (one second) and the write under way; every call that ended before is in the ledger."""
    path = tmp_path / "ledger.db"
    ended, killed = _ended_calls(_calling_app(tmp_path, server, path), 3.5, signal.SIGKILL)
    written = len(rows(path))
    settled = sum(1 for moment in ended if moment < killed - FLUSH_INTERVAL - 0.5)
    assert settled <= written <= len(ended) + 1, (settled, written, len(ended))
    _assert_report_counts(path)


def test_calls_refused_by_a_budget_whose_store_is_down_have_no_row(
    instrument: Any, ledger_file: Path, client: openai.OpenAI, otel: Any
) -> None:
    """With its Redis unreachable and ``on_store_error="block"``, a budget refuses the calls before they are sent:
    they reached no server, so they are no requests in the ledger (the spans record the refusals)."""
    budget = costspan.Budget(5.0, store="redis://127.0.0.1:1/0", on_store_error="block", name="store-down")
    instrument(ledger=ledger_file, budgets=[budget])
    for _ in range(3):
        with pytest.raises(costspan.BudgetStoreError):
            _chat(client)
    assert costspan.CostspanInstrumentor()._ledger.force_flush()
    assert [span.attributes["error.type"] for span in otel.spans()] == ["BudgetStoreError"] * 3
    assert not ledger_file.exists() or rows(ledger_file) == [], "a call never sent is no request"
