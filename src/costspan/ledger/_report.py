"""Reading the ledger for ``costspan report`` and :func:`report`: spend and tokens per model, provider, user, day or
attribution key, over a period. Read-only: a report never creates, migrates or locks a ledger."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from ._paths import ENV, ledger_path
from ._schema import SCHEMA_VERSION

__all__ = [
    "BUILT_IN_KEYS",
    "Line",
    "Period",
    "ReportError",
    "Summary",
    "ledger_file",
    "period_of",
    "report",
    "summarize",
]

BUILT_IN_KEYS = ("model", "provider", "user", "day", "operation", "request")
REQUEST_TOP = 10
"""Requests ``--by request`` lists unless told otherwise: the most expensive of the period."""
_NONE = {"model": "(unknown)", "provider": "(unknown)", "operation": "(unknown)"}
_NUMBERS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "cost_usd")


class ReportError(Exception):
    """What is wrong with the ledger or the question, in one line."""


@dataclass(frozen=True, slots=True)
class Period:
    """``[start, end)`` in UTC (either open), and how to name it."""

    start: datetime | None
    end: datetime | None
    title: str
    utc: bool = False


@dataclass(frozen=True, slots=True)
class Line:
    """One group of calls (a model, a user, a day, ...), or all of them (``Summary.total``)."""

    key: str
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0
    """Requests with usage but no known price: their cost is not in ``cost_usd``."""


@dataclass(frozen=True, slots=True)
class Summary:
    """A report: a line per group, most expensive first (days in order), their total, and the budget if one was
    given. ``str(summary)`` is the text ``costspan report`` prints when piped."""

    title: str
    by: str
    lines: list[Line]
    total: Line
    budget_usd: float | None = None
    period: Period = field(default_factory=lambda: Period(None, None, ""))

    @property
    def budget_share(self) -> float | None:
        """The share of ``budget_usd`` spent (1.0 is all of it), or None without a budget."""
        return None if self.budget_usd is None else self.total.cost_usd / self.budget_usd

    def __str__(self) -> str:
        from ._render import render_plain  # _render reads this module's types

        return render_plain(self).removesuffix("\n")


def report(
    path: str | os.PathLike[str] | None = None,
    *,
    by: str = "model",
    day: date | str | None = None,
    since: date | str | None = None,
    until: date | str | None = None,
    budget_usd: float | None = None,
    utc: bool = False,
    top: int | None = None,
) -> Summary:
    """What ``costspan report`` shows, from Python: the spend and tokens of the ledger at ``path`` (by default
    ``COSTSPAN_LEDGER``'s, or the per-user default) per ``by`` (model, provider, user, day, operation, or an
    attribution key such as ``team``; ``request``: the most expensive requests, each as its name and trace id),
    for ``day`` (default: today) or ``since`` to ``until`` (both included; a
    ``date`` or ``"YYYY-MM-DD"``), in local days unless ``utc``. ``budget_usd`` adds the budget line and, from
    half of it spent, a warning line to ``str(summary)``; ``summary.budget_share`` is the share spent. ``top``
    keeps the most expensive lines only (by default all, and 10 requests ``by="request"``).

    Raises :class:`ReportError` (its message is one line) for a missing or unreadable ledger, an unknown ``by``
    key or an impossible period, and ValueError for a budget that is not a positive number.
    """
    if budget_usd is not None and not budget_usd > 0:
        raise ValueError(f"budget_usd={budget_usd!r}: expected a positive number of USD")
    period = period_of(day=_iso_day(day), since=_iso_day(since), until=_iso_day(until), utc=utc)
    return summarize(ledger_file(path, "pass the path of a ledger file"), by, period, budget_usd, top)


def _iso_day(value: date | str | None) -> str | None:
    return f"{value:%Y-%m-%d}" if isinstance(value, date) else value


def ledger_file(path: str | os.PathLike[str] | None, name_one: str) -> Path:
    """The ledger a report reads: ``path``, or the one applications write by default; ``name_one`` says how to
    name a ledger when the default is off."""
    if path is not None:
        return Path(path).expanduser()
    found = ledger_path(None)
    if found is None:
        raise ReportError(f"the ledger is off ({ENV}=off): {name_one}")
    return found


def summarize(path: Path, by: str, period: Period, budget_usd: float | None = None, top: int | None = None) -> Summary:
    """The report of the ledger at ``path``; ``top`` keeps only the most expensive lines (the total is still the
    period's), by default all of them, and the :data:`REQUEST_TOP` most expensive requests ``by="request"``."""
    connection = _open(path)
    try:
        columns = _columns(connection, path)
        key, group = _key_expression(connection, by, columns, period.utc), "k"
        if by == "request":  # one line per trace: the request's name and its trace id, for the tracing backend
            key = (f"COALESCE(MIN({_column('request_name', columns)}), '(unnamed)') || ' ' || trace_id", ())
            group, top = "trace_id", REQUEST_TOP if top is None else top
        where, parameters = _where(period)
        selected = ", ".join(f"SUM({_column(name, columns)})" for name in _NUMBERS)
        rows = connection.execute(
            f"SELECT {key[0]} AS k, COUNT(*), {selected}, SUM({_column('unpriced', columns)})"
            f" FROM calls WHERE {where} GROUP BY {group}",
            [*key[1], *parameters],
        ).fetchall()
    except sqlite3.Error as failure:
        raise ReportError(f"cannot read the ledger at {path}: {failure}") from None
    finally:
        connection.close()
    lines = [_line(row, _NONE.get(by, "(none)")) for row in rows]
    if by == "day":
        lines.sort(key=lambda line: line.key)
    else:
        lines.sort(key=lambda line: (-line.cost_usd, -line.requests, line.key))
    total = _total(lines)
    return Summary(period.title, by, lines if top is None else lines[:top], total, budget_usd, period)


def _open(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        where = "" if path.parent.is_dir() else f" (directory {str(path.parent)!r} does not exist)"
        raise ReportError(
            f"no ledger at {path}{where}: it is written by applications that call costspan.instrument(); "
            "--ledger PATH or COSTSPAN_LEDGER names another"
        )
    try:
        connection, version = _connect(path, "mode=ro")
    except sqlite3.OperationalError:
        # A WAL ledger in a directory this user cannot write: SQLite cannot make the -shm file a reader needs.
        # No writer can be using it there either, so the file is read as it stands.
        try:
            connection, version = _connect(path, "mode=ro&immutable=1")
        except sqlite3.DatabaseError as failure:
            raise ReportError(f"cannot read the ledger at {path}: {failure}") from None
    except sqlite3.DatabaseError as failure:
        if "not a database" in str(failure):
            raise ReportError(f"{path} is not an SQLite database, so not a costspan ledger") from None
        raise ReportError(f"cannot read the ledger at {path}: {failure}") from None
    if version > SCHEMA_VERSION:
        connection.close()
        raise ReportError(
            f"the ledger at {path} has schema version {version}, newer than this costspan's ({SCHEMA_VERSION}): "
            "upgrade costspan"
        )
    return connection


def _connect(path: Path, options: str) -> tuple[sqlite3.Connection, int]:
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?{options}", uri=True)
    try:
        return connection, int(connection.execute("PRAGMA user_version").fetchone()[0])
    except BaseException:
        connection.close()
        raise


def _columns(connection: sqlite3.Connection, path: Path) -> set[str]:
    columns = {row[1] for row in connection.execute("PRAGMA table_info(calls)")}
    if not columns:
        raise ReportError(f"{path} is not a costspan ledger: it has no calls table")
    return columns


def _column(name: str, columns: set[str]) -> str:
    # A ledger of an older schema is read as it is (a report never migrates): what it lacks counts as nothing.
    return name if name in columns else "NULL"


def _key_expression(
    connection: sqlite3.Connection, by: str, columns: set[str], utc: bool
) -> tuple[str, Sequence[object]]:
    if by == "model":
        return f"COALESCE({_column('request_model', columns)}, {_column('response_model', columns)})", ()
    if by in ("provider", "operation"):
        return _column(by, columns), ()
    if by in ("user", "user.id", "user_id"):
        return _column("user_id", columns), ()
    if by == "day":
        return ("date(time)" if utc else "date(time, 'localtime')"), ()
    if by == "request":
        return "trace_id", ()
    path = _json_path(by)
    if "attributes" in columns:
        found = connection.execute(
            "SELECT 1 FROM calls WHERE json_extract(attributes, ?) IS NOT NULL LIMIT 1", (path,)
        ).fetchone()
        if found:
            return "json_extract(attributes, ?)", (path,)
    known = _attribution_keys(connection, columns)
    raise ReportError(
        f"unknown --by key {by!r}: use {', '.join(BUILT_IN_KEYS)}"
        + (
            f", or an attribution key of this ledger: {', '.join(known)}"
            if known
            else " (this ledger has no attribution keys)"
        )
    )


def _json_path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _attribution_keys(connection: sqlite3.Connection, columns: set[str]) -> list[str]:
    if "attributes" not in columns:
        return []
    rows = connection.execute(
        "SELECT DISTINCT j.key FROM calls, json_each(calls.attributes) AS j WHERE calls.attributes IS NOT NULL"
        " ORDER BY j.key"
    )
    return [row[0] for row in rows]


def _where(period: Period) -> tuple[str, list[object]]:
    clauses: list[str] = ["1"]
    parameters: list[object] = []
    if period.start is not None:
        clauses.append("time >= ?")
        parameters.append(_iso(period.start))
    if period.end is not None:
        clauses.append("time < ?")
        parameters.append(_iso(period.end))
    return " AND ".join(clauses), parameters


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _line(row: Sequence[Any], none: str) -> Line:
    key, requests, input_tokens, output_tokens, cache_read, cache_write, reasoning, cost, unpriced = row
    return Line(
        key=str(key) if key is not None else none,
        requests=int(requests),
        input_tokens=int(input_tokens or 0),
        output_tokens=int(output_tokens or 0),
        cache_read_tokens=int(cache_read or 0),
        cache_write_tokens=int(cache_write or 0),
        reasoning_tokens=int(reasoning or 0),
        cost_usd=float(cost or 0.0),
        unpriced=int(unpriced or 0),
    )


def _total(lines: Sequence[Line]) -> Line:
    return Line(
        "Total",
        sum(line.requests for line in lines),
        sum(line.input_tokens for line in lines),
        sum(line.output_tokens for line in lines),
        sum(line.cache_read_tokens for line in lines),
        sum(line.cache_write_tokens for line in lines),
        sum(line.reasoning_tokens for line in lines),
        sum(line.cost_usd for line in lines),
        sum(line.unpriced for line in lines),
    )


_UNITS = {"h": 3600, "d": 86400, "w": 7 * 86400}


def period_of(
    *,
    day: str | None = None,
    since: str | None = None,
    until: str | None = None,
    last: str | None = None,
    utc: bool = False,
    now: datetime | None = None,
) -> Period:
    """The period ``--date`` / ``--since`` / ``--until`` / ``--last`` name (default: today), in local days or UTC."""
    zone = UTC if utc else None
    now = (now or datetime.now(UTC)).astimezone(zone)
    if last is not None:
        if day is not None or since is not None or until is not None:
            raise ReportError("--last cannot be combined with --date, --since or --until")
        return _last(last, now, utc)
    first: date | None
    final: date | None
    if day is not None:
        if since is not None or until is not None:
            raise ReportError("--date cannot be combined with --since or --until")
        first = final = _day("--date", day)
    else:
        first = _day("--since", since) if since is not None else None
        final = _day("--until", until) if until is not None else (now.date() if first is not None else None)
    if first is None and final is None:
        first = final = now.date()
    if first is not None and final is not None and first > final:
        raise ReportError(f"--since {first.isoformat()} is after --until {final.isoformat()}: no day is in that range")
    start = _midnight(first, zone) if first is not None else None
    end = _midnight(final + timedelta(days=1), zone) if final is not None else None
    return Period(start, end, _title(first, final) + (" UTC" if utc else ""), utc)


def _title(first: date | None, final: date | None) -> str:
    if first is None:
        return f"Summary (until {final.isoformat() if final else 'now'})"
    if final is None or first == final:
        return f"Daily Summary ({first.isoformat()})"
    return f"Summary ({first.isoformat()} to {final.isoformat()})"


def _last(text: str, now: datetime, utc: bool) -> Period:
    value = text.strip().lower()
    count, unit = value[:-1], value[-1:]
    if unit not in _UNITS or not count.isdigit() or int(count) == 0:
        raise ReportError(f"--last {text!r}: expected a number of hours, days or weeks, such as 24h, 7d or 2w")
    if unit == "h":
        return Period(now - timedelta(hours=int(count)), None, f"Summary (last {value})", utc)
    days = int(count) * (7 if unit == "w" else 1)
    first = now.date() - timedelta(days=days - 1)
    zone = UTC if utc else None
    title = f"Summary (last {value}: {first.isoformat()} to {now.date().isoformat()})"
    return Period(_midnight(first, zone), None, title + (" UTC" if utc else ""), utc)


def _day(option: str, text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ReportError(f"{option} {text!r}: expected a date as YYYY-MM-DD") from None


def _midnight(day: date, zone: timezone | None) -> datetime:
    # A naive datetime's astimezone() reads it as local time, with the local offset of that date (DST included).
    return datetime.combine(day, time()).replace(tzinfo=zone) if zone else datetime.combine(day, time()).astimezone()
