"""``costspan report``'s other outputs: a rich table on a terminal (compact when it is narrow), CSV and JSON. The
plain text a pipe gets is the summary's own (:func:`._summary.render_plain`).

Everything drawn from the ledger (model names, user ids, attribution values) is text, never markup: a user id of
``[/]`` or ``[link=...]`` is shown as written (rich would otherwise fail on the one and make a link of the other).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from ._summary import Line, Summary, budget_lines, cost_text

__all__ = ["render_csv", "render_json", "render_table"]

_TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
_FIELDS = ("requests", *_TOKEN_FIELDS, "cost_usd", "unpriced")
_NARROW = 100


def render_table(summary: Summary, width: int) -> Any:
    """A rich renderable: every token column when the terminal is wide, the essential ones when narrow."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    compact = width < _NARROW
    table = Table(title=Text(summary.title, style="bold"), show_footer=True, expand=False)
    total = summary.total
    by = summary.by.capitalize() if summary.by in ("model", "provider", "user", "day") else summary.by
    table.add_column(Text(by), footer="Total")
    table.add_column("Requests", justify="right", footer=f"{total.requests:,}")
    token_columns = _TOKEN_FIELDS[:2] if compact else _TOKEN_FIELDS
    for name in token_columns:
        header = name.removesuffix("_tokens").replace("_", " ").capitalize()
        table.add_column(header, justify="right", footer=f"{getattr(total, name):,}")
    table.add_column("Cost", justify="right", footer=cost_text(total))
    for line in summary.lines:
        cells = (f"{line.requests:,}", *(f"{getattr(line, n):,}" for n in token_columns), cost_text(line))
        table.add_row(Text(line.key), *cells)
    budget = [Text(text, style="bold yellow" if text.startswith("Warning") else "") for text in budget_lines(summary)]
    return Group(table, *budget)


def _record(line: Line) -> dict[str, Any]:
    return {"key": line.key, **{name: getattr(line, name) for name in _FIELDS}}


def render_json(summary: Summary) -> str:
    period = summary.period
    document: dict[str, Any] = {
        "title": summary.title,
        "by": summary.by,
        "since": period.start.isoformat() if period.start else None,
        "until": period.end.isoformat() if period.end else None,
        "rows": [_record(line) for line in summary.lines],
        "total": {name: getattr(summary.total, name) for name in _FIELDS},
    }
    if summary.budget_usd is not None:
        document["budget"] = {"limit_usd": summary.budget_usd, "share_used": summary.budget_share}
    return json.dumps(document, indent=2) + "\n"


def render_csv(summary: Summary) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([summary.by, *_FIELDS])
    for line in summary.lines:
        writer.writerow([line.key, *(getattr(line, name) for name in _FIELDS)])
    return out.getvalue()
