"""Reading the ledger for ``costspan report`` and :func:`report`: spend and tokens per model, provider, user, day or
attribution key, over a period, summed by the database in one query that both engines run (:mod:`._engine`).
Read-only: a report never creates, migrates or locks a ledger."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from ._engine import Reader, engine_for
from ._paths import ENV, Target, is_url, ledger_path
from ._summary import COST_DECIMALS, Line, Period, ReportError, Summary

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
# How an error names what the user gave: the CLI's flags, or report()'s arguments.
CLI_NAMES = {"by": "--by", "day": "--date", "since": "--since", "until": "--until", "last": "--last"}
PYTHON_NAMES = {"by": "by", "day": "day", "since": "since", "until": "until", "last": "last"}
_NONE = {"model": "(unknown)", "provider": "(unknown)", "operation": "(unknown)"}
_NUMBERS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "cost_usd")


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
    """What ``costspan report`` shows, from Python: the spend and tokens of the ledger at ``path`` (a file, or a
    ``postgresql://`` URL; by default ``COSTSPAN_LEDGER``'s, or the per-user default) per ``by`` (model, provider,
    user, day, operation, or an attribution key such as ``team``; ``request``: the most expensive requests, each
    as its name and trace id), for ``day`` (default: today) or ``since`` to ``until`` (both included; a ``date``
    or ``"YYYY-MM-DD"``), in local days unless ``utc``. ``budget_usd`` adds the budget line and, from half of it
    spent, a warning line to ``str(summary)``; ``summary.budget_share`` is the share spent. ``top`` keeps the most
    expensive lines only (by default all, and 10 requests ``by="request"``).

    Raises :class:`ReportError` (its message is one line) for a missing or unreadable ledger, an unknown ``by``
    key or an impossible period, and ValueError for a budget that is not a positive number.
    """
    if budget_usd is not None and not budget_usd > 0:
        raise ValueError(f"budget_usd={budget_usd!r}: expected a positive number of USD")
    period = period_of(day=_iso_day(day), since=_iso_day(since), until=_iso_day(until), utc=utc, names=PYTHON_NAMES)
    ledger = ledger_file(path, "pass the path or URL of a ledger")
    return summarize(ledger, by, period, budget_usd, PYTHON_NAMES, top)


def _iso_day(value: date | str | None) -> str | None:
    return f"{value:%Y-%m-%d}" if isinstance(value, date) else value


def ledger_file(path: str | os.PathLike[str] | None, name_one: str) -> Target:
    """The ledger a report reads: ``path``, or the one applications write by default; ``name_one`` says how to
    name a ledger when the default is off."""
    if path is not None:
        return str(path).strip() if is_url(path) else Path(path).expanduser()
    found = ledger_path(None)
    if found is None:
        raise ReportError(f"the ledger is off ({ENV}=off): {name_one}")
    return found


def summarize(
    ledger: Target,
    by: str,
    period: Period,
    budget_usd: float | None = None,
    names: dict[str, str] = CLI_NAMES,
    top: int | None = None,
) -> Summary:
    """The summary of the ledger at ``ledger`` (a path or a PostgreSQL URL) per ``by`` over ``period``; its title
    is the period's, naming the grouping unless it is the default (by model), as SPEC.md's shape has it. ``top``
    keeps only the most expensive lines (the total is still the period's), by default all of them, and the
    :data:`REQUEST_TOP` most expensive requests ``by="request"``."""
    reader = engine_for(ledger).open_reader()
    try:
        columns = reader.columns
        group = "k"
        key: str
        key_parameters: Sequence[object] = ()
        if by == "request":  # one line per trace: the request's name and its trace id, for the tracing backend
            name = f"CAST({_column('request_name', columns)} AS TEXT)"
            key = f"COALESCE(MIN({name}), '(unnamed)') || ' ' || trace_id"
            group, top = "trace_id", REQUEST_TOP if top is None else top
        else:
            key, key_parameters = _key_expression(reader, by, period.utc, names)
        where, parameters = _where(reader, period)
        selected = ", ".join(f"SUM({_column(name, columns)})" for name in _NUMBERS)
        rows = reader.query(
            f"SELECT {key} AS k, COUNT(*), {selected}, SUM({_column('unpriced', columns)})"
            f" FROM calls WHERE {where} GROUP BY {group}",
            [*key_parameters, *parameters],
        )
    finally:
        reader.close()
    lines = [_line(row, _NONE.get(by, "(none)")) for row in rows]
    if by == "day":
        lines.sort(key=lambda line: line.key)
    else:
        # Amounts to the price data's precision: engines sum floats in their own order, and their last bits must
        # not decide the order of two groups that cost the same.
        lines.sort(key=lambda line: (-round(line.cost_usd, COST_DECIMALS), -line.requests, line.key))
    title = period.title if by == "model" else period.title.replace("Summary (", f"Summary by {by} (", 1)
    return Summary(title, by, lines if top is None else lines[:top], _total(lines), budget_usd, period)


def _column(name: str, columns: frozenset[str]) -> str:
    # A ledger of an older schema is read as it is (a report never migrates): what it lacks counts as nothing.
    return name if name in columns else "NULL"


def _key_expression(reader: Reader, by: str, utc: bool, names: dict[str, str]) -> tuple[str, Sequence[object]]:
    columns = reader.columns
    if by == "model":
        return f"COALESCE({_column('request_model', columns)}, {_column('response_model', columns)})", ()
    if by in ("provider", "operation"):
        return _column(by, columns), ()
    if by in ("user", "user.id", "user_id"):
        return _column("user_id", columns), ()
    if by == "day":
        return reader.day(utc)
    if "attributes" in columns:
        parameter = reader.key_parameter(by)
        found = reader.query(f"SELECT 1 FROM calls WHERE {reader.attribute()} IS NOT NULL LIMIT 1", (parameter,))
        if found:
            return reader.attribute(), (parameter,)
    known = reader.attribution_keys()
    raise ReportError(
        f"unknown {names['by']} key {by!r}: use {', '.join(BUILT_IN_KEYS)}"
        + (
            f", or an attribution key of this ledger: {', '.join(known)}"
            if known
            else " (this ledger has no attribution keys)"
        )
    )


def _where(reader: Reader, period: Period) -> tuple[str, list[object]]:
    clauses: list[str] = ["1 = 1"]
    parameters: list[object] = []
    if period.start is not None:
        clauses.append(f"time >= {reader.mark}")
        parameters.append(reader.moment(period.start))
    if period.end is not None:
        clauses.append(f"time < {reader.mark}")
        parameters.append(reader.moment(period.end))
    return " AND ".join(clauses), parameters


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
    names: dict[str, str] = CLI_NAMES,
) -> Period:
    """The period ``--date`` / ``--since`` / ``--until`` / ``--last`` name (default: today), in local days or UTC;
    errors call them by ``names`` (the CLI's flags, or report()'s arguments)."""
    zone = UTC if utc else None
    now = (now or datetime.now(UTC)).astimezone(zone)
    if last is not None:
        if day is not None or since is not None or until is not None:
            raise ReportError(f"{names['last']} cannot be combined with {_either(names, 'day', 'since', 'until')}")
        return _last(last, now, utc, names["last"])
    first: date | None
    final: date | None
    if day is not None:
        if since is not None or until is not None:
            raise ReportError(f"{names['day']} cannot be combined with {_either(names, 'since', 'until')}")
        first = final = _day(names["day"], day)
    else:
        first = _day(names["since"], since) if since is not None else None
        final = _day(names["until"], until) if until is not None else (now.date() if first is not None else None)
    if first is None and final is None:
        first = final = now.date()
    if first is not None and final is not None and first > final:
        raise ReportError(
            f"{_given(names['since'], first.isoformat())} is after {_given(names['until'], final.isoformat())}: "
            "no day is in that range"
        )
    start = _midnight(first, zone) if first is not None else None
    end = _midnight(final + timedelta(days=1), zone) if final is not None else None
    return Period(start, end, _title(first, final) + (" UTC" if utc else ""), utc)


def _title(first: date | None, final: date | None) -> str:
    if first is None:
        return f"Summary (until {final.isoformat() if final else 'now'})"
    if final is None or first == final:
        return f"Daily Summary ({first.isoformat()})"
    return f"Summary ({first.isoformat()} to {final.isoformat()})"


def _given(option: str, value: str) -> str:
    """``--since 2025-01-01`` on the command line, ``since=2025-01-01`` in Python."""
    return f"{option} {value}" if option.startswith("--") else f"{option}={value}"


def _either(names: dict[str, str], *options: str) -> str:
    return ", ".join(names[option] for option in options[:-1]) + f" or {names[options[-1]]}"


def _last(text: str, now: datetime, utc: bool, option: str) -> Period:
    value = text.strip().lower()
    count, unit = value[:-1], value[-1:]
    if unit not in _UNITS or not count.isdigit() or int(count) == 0:
        raise ReportError(
            f"{_given(option, repr(text))}: expected a number of hours, days or weeks, such as 24h, 7d or 2w"
        )
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
        raise ReportError(f"{_given(option, repr(text))}: expected a date as YYYY-MM-DD") from None


def _midnight(day: date, zone: timezone | None) -> datetime:
    # A naive datetime's astimezone() reads it as local time, with the local offset of that date (DST included).
    return datetime.combine(day, time()).replace(tzinfo=zone) if zone else datetime.combine(day, time()).astimezone()
