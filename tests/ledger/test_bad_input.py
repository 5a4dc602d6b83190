"""A ledger that cannot be written never reaches the application: one warning names the file and what is wrong,
every call goes on, the calls are kept (within the queue's bound) and written once the ledger takes them, and what
is still unwritten at shutdown is counted and said in one more line."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from costspan.ledger import SCHEMA_VERSION, LedgerProcessor
from costspan.testing import ProviderServer
from ledger_support import read_only_directory, rows, version_1_ledger
from support import API_KEY

MESSAGES = [{"role": "user", "content": "hi"}]


def _calls(client: openai.OpenAI, count: int) -> None:
    for _ in range(count):
        assert client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES).choices


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]


def _one_warning(caplog: pytest.LogCaptureFixture, *parts: str) -> None:
    (message,) = _warnings(caplog)
    assert "\n" not in message
    for part in parts:
        assert part in message, message


def _warned_then_lost(caplog: pytest.LogCaptureFixture, lost: int, where: Path, *parts: str) -> None:
    warning, loss = _warnings(caplog)
    assert "\n" not in warning
    for part in (f"opening the ledger at {where} failed", "its calls are kept", *parts):
        assert part in warning, warning
    assert loss == f"costspan: {lost} calls could not be written to the ledger at {where} and are lost"


def _processor(otel: Any, path: Path, **options: Any) -> LedgerProcessor:
    processor = LedgerProcessor(path, **options)
    otel.tracer_provider.add_span_processor(processor)
    return processor


def test_a_missing_directory_in_code_fails_at_instrument(instrument: Callable[..., None], tmp_path: Path) -> None:
    path = tmp_path / "no-such-dir" / "ledger.db"
    with pytest.raises(ValueError, match=f"ledger='{path}': directory '{path.parent}' does not exist"):
        instrument(ledger=str(path))


def test_a_missing_directory_from_the_environment_is_one_warning(
    instrument: Callable[..., None],
    client: openai.OpenAI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "no-such-dir" / "ledger.db"
    monkeypatch.setenv("COSTSPAN_LEDGER", str(path))
    instrument()
    _calls(client, 3)
    assert not __import__("costspan").CostspanInstrumentor()._ledger.force_flush()
    _one_warning(caplog, f"opening the ledger at {path} failed", f"directory '{path.parent}' does not exist")
    assert not path.parent.exists()


def test_a_read_only_directory_is_one_warning(
    otel: Any, instrumented: None, client: openai.OpenAI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with read_only_directory(tmp_path / "read-only") as directory:
        processor = _processor(otel, directory / "ledger.db")
        _calls(client, 3)
        assert not processor.force_flush()
        _calls(client, 2)
        assert not processor.force_flush()
        processor.shutdown()
    _warned_then_lost(caplog, 5, directory / "ledger.db", "ermi")  # Permission denied / Operation not permitted
    assert processor.unwritten == 5


def test_a_corrupted_database_is_one_warning_and_left_as_it_is(
    otel: Any, instrumented: None, client: openai.OpenAI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ledger.db"
    garbage = b"this was never an SQLite database\n" * 200
    path.write_bytes(garbage)
    path.chmod(0o600)
    processor = _processor(otel, path)
    _calls(client, 3)
    assert not processor.force_flush()
    processor.shutdown()
    _warned_then_lost(caplog, 3, path, "not an SQLite database")
    assert path.read_bytes() == garbage


def test_a_newer_schema_is_one_warning_and_never_written(
    otel: Any, instrumented: None, client: openai.OpenAI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ledger.db"
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    path.chmod(0o600)
    processor = _processor(otel, path)
    _calls(client, 2)
    assert not processor.force_flush()
    processor.shutdown()
    newer = f"schema version {SCHEMA_VERSION + 1}, newer than this costspan's ({SCHEMA_VERSION})"
    _warned_then_lost(caplog, 2, path, newer)


def test_an_older_schema_is_migrated_and_keeps_its_rows(
    instrument: Callable[..., None], client: openai.OpenAI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ledger.db"
    version_1_ledger(path, provider="openai", request_model="gpt-4.1", input_tokens=10, output_tokens=5, cost_usd=0.25)
    caplog.set_level(logging.INFO, logger="costspan")
    instrument(ledger=path)
    with __import__("costspan").attribution(user_id="u-1", team="search"):
        _calls(client, 2)
    assert __import__("costspan").CostspanInstrumentor()._ledger.force_flush()
    old, *new = rows(path)
    assert (old["cost_usd"], old["scope"], old["attributes"]) == (0.25, None, None)
    assert [(row["user_id"], json.loads(row["attributes"])) for row in new] == [("u-1", {"team": "search"})] * 2
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert f"costspan: migrated the ledger at {path} from schema version 1 to {SCHEMA_VERSION}" in caplog.messages
    assert not _warnings(caplog)


def test_a_locked_database_keeps_the_calls_and_writes_them_when_released(
    otel: Any, instrumented: None, client: openai.OpenAI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ledger.db"
    processor = _processor(otel, path, busy_timeout=0.2)
    _calls(client, 1)
    assert processor.force_flush()
    holder = sqlite3.connect(path)
    holder.execute("BEGIN EXCLUSIVE")  # another process's long write transaction
    _calls(client, 20)
    assert not processor.force_flush()
    assert not processor.force_flush()
    holder.rollback()
    holder.close()
    assert processor.force_flush()
    assert len(rows(path)) == 21
    _one_warning(caplog, f"writing the ledger at {path} failed (database is locked)", "kept")
    processor.shutdown()


DISK_FULL_APP = """
import json, os, resource, signal
import costspan, openai
from opentelemetry import trace

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing us
costspan.instrument(ledger={path!r})
provider = trace.get_tracer_provider()
client = openai.OpenAI(base_url={base_url!r}, api_key={api_key!r}, max_retries=0)
call = lambda: client.chat.completions.create(model="gpt-4.1-mini", messages=[{{"role": "user", "content": "hi"}}])
call()
assert provider.force_flush()
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
# No file may grow: the ledger's disk is full.
resource.setrlimit(resource.RLIMIT_FSIZE, (max(os.path.getsize(p) for p in ({path!r}, {path!r} + "-wal")), hard))
for _ in range(40):
    call()
while_full = provider.force_flush()
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space again
print(json.dumps([while_full, provider.force_flush()]))
"""


def test_a_full_disk_keeps_the_calls_and_writes_them_when_there_is_space(
    tmp_path: Path, server: ProviderServer
) -> None:
    path = tmp_path / "ledger.db"
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(DISK_FULL_APP).format(path=str(path), base_url=server.openai_base_url, api_key=API_KEY)
    )
    env = {**os.environ, "OTEL_METRICS_EXPORTER": "none", "OTEL_TRACES_EXPORTER": "none"}
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [False, True]
    warnings = [line for line in result.stderr.splitlines() if "costspan:" in line]
    assert len(warnings) == 1, result.stderr
    assert f"writing the ledger at {path} failed" in warnings[0]
    assert len(rows(path)) == 41
