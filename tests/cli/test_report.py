"""``costspan report`` over a seeded ledger: exactly the expected lines for a day, a range, by user, by an
attribution key, with a budget, in each format; one-line errors for what it cannot answer."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from costspan.cli import main
from costspan.ledger import SCHEMA_VERSION, ReportError
from costspan.ledger import report as report_of
from costspan.ledger._render import render_table
from costspan.ledger._report import period_of, summarize
from costspan.ledger._summary import money
from ledger_support import read_only_directory, version_1_ledger


def report(path: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["report", "--ledger", str(path), *args])


def ok(path: Path, *args: str) -> list[str]:
    result = report(path, *args)
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def error(path: Path, *args: str) -> str:
    result = report(path, *args)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    (line,) = result.output.splitlines()
    assert line.startswith("Error: ")
    return line.removeprefix("Error: ")


@pytest.fixture
def ledger(seeded: tuple[Path, Any]) -> Path:
    """Two days of calls in UTC."""
    path, add = seeded
    add("2025-01-15T09:00:00.000000Z", "gpt-4.1", 1.20, "u-1", attributes={"team": "search"})
    add("2025-01-15T10:00:00.000000Z", "gpt-4.1", 1.25, "u-2", attributes={"team": "search"})
    add("2025-01-15T11:00:00.000000Z", "gpt-4.1-mini", 0.80, "u-1", attributes={"team": "ads"}, cache_read_tokens=500)
    add("2025-01-15T12:00:00.000000Z", "my-finetune", None, "u-2")
    add("2025-01-16T08:00:00.000000Z", "claude-sonnet-4-6", 2.00, "u-1", reasoning_tokens=40)
    return path


def test_the_default_output_is_the_daily_summary(ledger: Path) -> None:
    assert ok(ledger, "--date", "2025-01-15", "--utc") == [
        "Daily Summary (2025-01-15) UTC",
        "==============================",
        "gpt-4.1: 2 requests, $2.45",
        "gpt-4.1-mini: 1 request, $0.80",
        "my-finetune: 1 request, unpriced",
        "Total: $3.25 (+1 unpriced)",
    ]


def test_a_range_by_provider(ledger: Path) -> None:
    assert ok(ledger, "--since", "2025-01-14", "--until", "2025-01-16", "--utc", "--by", "provider") == [
        "Summary by provider (2025-01-14 to 2025-01-16) UTC",
        "==================================================",
        "openai: 4 requests, $3.25 (+1 unpriced)",
        "anthropic: 1 request, $2.00",
        "Total: $5.25 (+1 unpriced)",
    ]


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("user", ["u-1: 2 requests, $2.00", "u-2: 2 requests, $1.25 (+1 unpriced)"]),
        ("team", ["search: 2 requests, $2.45", "ads: 1 request, $0.80", "(none): 1 request, unpriced"]),
        ("day", ["2025-01-15: 4 requests, $3.25 (+1 unpriced)"]),
    ],
)
def test_by_user_attribution_key_and_day(ledger: Path, by: str, expected: list[str]) -> None:
    lines = ok(ledger, "--date", "2025-01-15", "--utc", "--by", by)
    assert lines[0] == f"Daily Summary by {by} (2025-01-15) UTC"
    assert lines[2:-1] == expected


def test_the_report_leaves_no_file_beside_the_ledger(ledger: Path) -> None:
    """A report only reads: a WAL ledger that no writer has open is read with no -wal or -shm file left beside."""
    connection = sqlite3.connect(ledger)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.close()
    before = sorted(path.name for path in ledger.parent.iterdir())

    assert ok(ledger, "--date", "2025-01-15", "--utc")[-1] == "Total: $3.25 (+1 unpriced)"
    assert report_of(ledger, day="2025-01-15", utc=True).total.requests == 4

    assert sorted(path.name for path in ledger.parent.iterdir()) == before


def test_csv_and_json_amounts_have_no_float_noise(seeded: tuple[Path, Any]) -> None:
    path, add = seeded
    for hour, cost in enumerate((0.0001, 0.0002, 0.0003)):
        add(f"2025-01-15T0{hour}:00:00.000000Z", "gpt-4.1-nano", cost)
    assert 0.0001 + 0.0002 + 0.0003 != 0.0006, "the sum this test is about"

    assert ok(path, "--date", "2025-01-15", "--utc", "--format", "csv")[1].endswith(",0.0006,0")
    document = json.loads("\n".join(ok(path, "--date", "2025-01-15", "--utc", "--format", "json")))
    assert document["rows"][0]["cost_usd"] == document["total"]["cost_usd"] == 0.0006


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        ("10", ["Budget: $3.25 of $10.00 (32%)"]),
        ("5", ["Budget: $3.25 of $5.00 (65%)", "Warning: 65% of the $5.00 budget spent"]),
        ("3", ["Budget: $3.25 of $3.00 (108%)", "Warning: over budget: 108% of $3.00 spent"]),
    ],
)
def test_a_budget_line_warns_from_half(ledger: Path, budget: str, expected: list[str]) -> None:
    lines = ok(ledger, "--date", "2025-01-15", "--utc", "--budget", budget)
    assert lines[lines.index("Total: $3.25 (+1 unpriced)") + 1 :] == expected


def test_csv(ledger: Path) -> None:
    assert ok(ledger, "--date", "2025-01-15", "--utc", "--format", "csv") == [
        "model,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,reasoning_tokens,cost_usd,unpriced",
        "gpt-4.1,2,2000,200,0,0,0,2.45,0",
        "gpt-4.1-mini,1,1000,100,500,0,0,0.8,0",
        "my-finetune,1,1000,100,0,0,0,0.0,1",
    ]


def test_csv_with_a_budget_keeps_stdout_rows_and_says_the_budget_on_stderr(ledger: Path) -> None:
    options = ["--ledger", str(ledger), "--date", "2025-01-15", "--utc", "--format", "csv", "--budget", "5"]
    result = subprocess.run(
        [str(Path(sys.executable).with_name("costspan")), "report", *options],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ok(ledger, "--date", "2025-01-15", "--utc", "--format", "csv")
    assert result.stderr.splitlines() == ["Budget: $3.25 of $5.00 (65%)", "Warning: 65% of the $5.00 budget spent"]


def test_json(ledger: Path) -> None:
    document = json.loads(
        "\n".join(
            ok(ledger, "--since", "2025-01-16", "--until", "2025-01-16", "--utc", "--format", "json", "--budget", "4")
        )
    )
    assert document == {
        "title": "Daily Summary (2025-01-16) UTC",
        "by": "model",
        "since": "2025-01-16T00:00:00+00:00",
        "until": "2025-01-17T00:00:00+00:00",
        "rows": [
            {
                "key": "claude-sonnet-4-6",
                "requests": 1,
                "input_tokens": 1000,
                "output_tokens": 100,
                "cache_read_tokens": 0,
                "cache_write_tokens": 0,
                "reasoning_tokens": 40,
                "cost_usd": 2.0,
                "unpriced": 0,
            }
        ],
        "total": {
            "requests": 1,
            "input_tokens": 1000,
            "output_tokens": 100,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "reasoning_tokens": 40,
            "cost_usd": 2.0,
            "unpriced": 0,
        },
        "budget": {"limit_usd": 4.0, "share_used": 0.5},
    }


def test_sub_cent_spend_never_reads_zero(seeded: tuple[Path, Any]) -> None:
    """Cents from $0.10 up, as SPEC.md's summary; below, two significant digits: a day of small calls is not $0.00."""
    path, add = seeded
    for cost in (0.001124, 0.0000192, 0.0000192, 0.04452):
        add("2025-01-15T09:00:00.000000Z", "claude-sonnet-4-6" if cost > 0.01 else "gpt-4.1-mini", cost)
    add("2025-01-15T10:00:00.000000Z", "gpt-4.1-nano", 0.0)
    assert ok(path, "--date", "2025-01-15", "--utc", "--budget", "0.08") == [
        "Daily Summary (2025-01-15) UTC",
        "==============================",
        "claude-sonnet-4-6: 1 request, $0.045",
        "gpt-4.1-mini: 3 requests, $0.0012",
        "gpt-4.1-nano: 1 request, $0.00",
        "Total: $0.046",
        "Budget: $0.046 of $0.08 (57%)",
        "Warning: 57% of the $0.08 budget spent",
    ]


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (1234.5, "$1,234.50"),
        (2.454, "$2.45"),
        (0.1, "$0.10"),
        (0.09996, "$0.10"),
        (0.0994, "$0.099"),
        (0.001124, "$0.0011"),
        (0.04, "$0.04"),
        (0.000009, "$0.000009"),
        (0.0000094, "$0.0000094"),
        (0.0, "$0.00"),
    ],
)
def test_dollars_are_cents_or_two_significant_digits(amount: float, shown: str) -> None:
    assert money(amount) == shown


def test_the_report_from_python(ledger: Path) -> None:
    summary = report_of(ledger, day=date(2025, 1, 15), utc=True, budget_usd=5)
    assert str(summary).splitlines() == ok(ledger, "--date", "2025-01-15", "--utc", "--budget", "5")
    assert [(line.key, line.requests, line.cost_usd, line.unpriced) for line in summary.lines] == [
        ("gpt-4.1", 2, 2.45, 0),
        ("gpt-4.1-mini", 1, 0.80, 0),
        ("my-finetune", 1, 0.0, 1),
    ]
    assert (summary.total.requests, summary.total.cache_read_tokens) == (4, 500)
    assert summary.total.cost_usd == pytest.approx(3.25)
    assert summary.budget_share == pytest.approx(0.65)
    by_team = report_of(str(ledger), by="team", since="2025-01-15", until="2025-01-16", utc=True)
    assert [(line.key, line.requests) for line in by_team.lines] == [("search", 2), ("(none)", 2), ("ads", 1)]
    assert by_team.budget_share is None


def test_the_report_from_python_reads_the_applications_ledger(
    ledger: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("COSTSPAN_LEDGER", str(ledger))
    assert report_of(day="2025-01-16", utc=True).total.requests == 1
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("COSTSPAN_LEDGER")
    default = tmp_path / "data" / "costspan" / "ledger.db"
    with pytest.raises(ReportError, match=f"^no ledger at {default} "):
        report_of()
    monkeypatch.setenv("COSTSPAN_LEDGER", "off")
    with pytest.raises(ReportError, match=r"^the ledger is off \(COSTSPAN_LEDGER=off\): pass the path or URL of"):
        report_of()


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"by": "tema"}, ReportError, "unknown by key 'tema'"),
        ({"since": "2025-02-01", "until": "2025-01-01"}, ReportError, "since=2025-02-01 is after until=2025-01-01"),
        ({"day": "15/01/2025"}, ReportError, "day='15/01/2025': expected a date as YYYY-MM-DD"),
        ({"budget_usd": 0}, ValueError, "budget_usd=0: expected a positive number of USD"),
    ],
)
def test_the_report_from_python_names_what_is_wrong(
    ledger: Path, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=f"^{re.escape(message)}"):
        report_of(ledger, **options)


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_days_are_local_unless_utc(seeded: tuple[Path, Any], new_york: None) -> None:
    """03:00 UTC on the 16th is the evening of the 15th in New York."""
    path, add = seeded
    add("2025-01-16T03:00:00.000000Z", "gpt-4.1", 1.0)
    assert ok(path, "--date", "2025-01-15", "--by", "day")[2] == "2025-01-15: 1 request, $1.00"
    assert ok(path, "--date", "2025-01-16", "--by", "day", "--utc")[2] == "2025-01-16: 1 request, $1.00"
    assert ok(path, "--date", "2025-01-16")[2] == "No calls in this period."


def test_last_days_and_hours(seeded: tuple[Path, Any]) -> None:
    path, add = seeded
    now = datetime.now(UTC)
    for hours_ago, cost in ((1, 1.0), (30, 2.0), (24 * 10, 4.0)):
        add((now - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "gpt-4.1", cost)
    assert ok(path, "--last", "24h", "--utc")[-1] == "Total: $1.00"
    assert ok(path, "--last", "7d", "--utc")[-1] == "Total: $3.00"
    assert ok(path, "--last", "2w", "--utc")[-1] == "Total: $7.00"


def test_the_table_on_a_terminal_has_token_columns_and_a_compact_layout(ledger: Path) -> None:
    summary = summarize(ledger, "model", period_of(day="2025-01-15", utc=True), budget_usd=5)

    def shown(width: int) -> str:
        console = Console(width=width, record=True, force_terminal=True)
        console.print(render_table(summary, console.width))
        return console.export_text()

    wide, narrow = shown(160), shown(80)
    for header in ("Model", "Requests", "Input", "Output", "Cache read", "Cache write", "Reasoning", "Cost"):
        assert header in wide
    assert "Cache read" not in narrow and "Reasoning" not in narrow
    assert "Input" in narrow and "$3.25 (+1 unpriced)" in narrow
    assert "Warning: 65% of the $5.00 budget spent" in wide
    assert max(len(line) for line in narrow.splitlines()) <= 80


def test_unknown_by_key(ledger: Path) -> None:
    assert error(ledger, "--by", "tema") == (
        "unknown --by key 'tema': use model, provider, user, day, operation, request, "
        "or an attribution key of this ledger: team"
    )


def test_impossible_date_range(ledger: Path) -> None:
    assert error(ledger, "--since", "2025-02-01", "--until", "2025-01-01") == (
        "--since 2025-02-01 is after --until 2025-01-01: no day is in that range"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--date", "2025-13-01"), "--date '2025-13-01': expected a date as YYYY-MM-DD"),
        (("--last", "7x"), "--last '7x': expected a number of hours, days or weeks, such as 24h, 7d or 2w"),
        (("--last", "7d", "--since", "2025-01-01"), "--last cannot be combined with --date, --since or --until"),
        (("--format", "xml"), "--format 'xml': use one of table, csv, json"),
        (("--budget", "0"), "--budget 0: expected a positive number of USD"),
    ],
)
def test_other_bad_options(ledger: Path, args: tuple[str, ...], message: str) -> None:
    assert error(ledger, *args) == message


def test_a_missing_ledger_is_never_created(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    assert error(path).startswith(f"no ledger at {path}: it is written by applications")
    missing = tmp_path / "no-such-dir" / "ledger.db"
    assert error(missing).startswith(f"no ledger at {missing} (directory '{missing.parent}' does not exist)")
    assert not path.exists() and not missing.parent.exists()


def test_a_corrupted_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    path.write_bytes(b"not sqlite" * 100)
    assert error(path) == f"{path} is not an SQLite database, so not a costspan ledger"


def test_a_newer_schema(seeded: tuple[Path, Any]) -> None:
    path, _ = seeded
    with sqlite3.connect(path) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    assert error(path) == (
        f"the ledger at {path} has schema version {SCHEMA_VERSION + 1}, newer than this costspan's "
        f"({SCHEMA_VERSION}): upgrade costspan"
    )


def test_an_older_schema_is_read_as_it_is_and_never_migrated(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    version_1_ledger(path, request_model="gpt-4.1", cost_usd=0.5, user_id="u-1")
    assert ok(path, "--date", "2025-01-15", "--utc", "--by", "user")[2:] == ["u-1: 1 request, $0.50", "Total: $0.50"]
    assert error(path, "--date", "2025-01-15", "--by", "team") == (
        "unknown --by key 'team': use model, provider, user, day, operation, request "
        "(this ledger has no attribution keys)"
    )
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (1,)


def test_a_ledger_in_a_read_only_directory_is_read(ledger: Path, tmp_path: Path) -> None:
    """As the writer leaves it: WAL mode, its -wal and -shm files gone with the last connection."""
    staged = tmp_path / "staged"
    staged.mkdir()
    copy = staged / "ledger.db"
    copy.write_bytes(ledger.read_bytes())
    with sqlite3.connect(copy) as connection:
        assert connection.execute("PRAGMA journal_mode = WAL").fetchone() == ("wal",)
    connection.close()
    directory = tmp_path / "read-only"
    staged.rename(directory)
    with read_only_directory(directory):
        assert ok(directory / "ledger.db", "--date", "2025-01-16", "--utc")[-1] == "Total: $2.00"
        assert sorted(path.name for path in directory.iterdir()) == ["ledger.db"]


def test_report_in_a_subprocess_prints_the_summary(ledger: Path) -> None:
    env = {**os.environ, "COSTSPAN_LEDGER": str(ledger)}
    result = subprocess.run(
        [str(Path(sys.executable).with_name("costspan")), "report", "--date", "2025-01-16", "--utc"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Daily Summary (2025-01-16) UTC",
        "==============================",
        "claude-sonnet-4-6: 1 request, $2.00",
        "Total: $2.00",
    ]


def test_the_table_shows_markup_in_the_data_as_text(seeded: tuple[Path, Any]) -> None:
    """User ids and attribution values are whatever an application passed: rich markup among them is shown as
    written, never read as markup (``[/]`` made rich raise, ``[link=...]`` made a link)."""
    path, add = seeded
    hostile = ("[/]", "[link=http://evil.example]x[/link]", "[bold red]boss[/]")
    for index, user in enumerate(hostile):
        add("2025-01-15T10:00:00.000000Z", "gpt-4.1", 1.0 + index, user=user)
    summary = summarize(path, "user", period_of(day="2025-01-15", utc=True))
    console = Console(width=160, record=True, force_terminal=True)
    console.print(render_table(summary, console.width))
    text, styled = console.export_text(), console.export_text(styles=True)
    for user in hostile:
        assert user in text
    assert "evil.example" not in styled.replace("[link=http://evil.example]x[/link]", "")
    assert "\x1b]8;" not in styled, "a terminal hyperlink was drawn"
