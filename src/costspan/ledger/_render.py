"""``costspan report``'s output: the plain summary SPEC.md gives (what a pipe gets), a rich table on a terminal
(compact when it is narrow), CSV and JSON.

Dollars are shown in cents from $0.10 up, as SPEC.md's "$2.45"; a smaller amount with two significant digits
($0.045, $0.0011, $0.000019), because a day of sub-cent calls (most calls of small models cost a fraction of a
cent) must never read "$0.00". CSV and JSON carry the exact amounts.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from ._report import Line, Summary

__all__ = ["render_csv", "render_json", "render_plain", "render_table"]

_TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
_FIELDS = ("requests", *_TOKEN_FIELDS, "cost_usd", "unpriced")
_NARROW = 100
_WARN_AT = 0.5


_CENTS_FROM = 0.1


def money(amount: float) -> str:
    """USD as the report shows it: ``$2.45``, ``$0.80``, ``$0.045``, ``$0.0011``; ``$0.00`` only for nothing."""
    if amount == 0 or abs(amount) >= _CENTS_FROM or not math.isfinite(amount):
        return f"${amount:,.2f}"
    decimals = 1 - math.floor(math.log10(abs(amount)))  # two significant digits
    whole, _, fraction = f"{amount:.{decimals}f}".partition(".")
    return f"${whole}.{fraction.rstrip('0').ljust(2, '0')}"


def _cost(line: Line) -> str:
    if line.unpriced and line.unpriced == line.requests:
        return "unpriced"
    return money(line.cost_usd) + (f" (+{line.unpriced} unpriced)" if line.unpriced else "")


def _requests(count: int) -> str:
    return f"{count} request" if count == 1 else f"{count} requests"


def budget_lines(summary: Summary) -> list[str]:
    share = summary.budget_share
    if share is None or summary.budget_usd is None:
        return []
    budget = money(summary.budget_usd)
    lines = [f"Budget: {money(summary.total.cost_usd)} of {budget} ({share:.0%})"]
    if share >= 1:
        lines.append(f"Warning: over budget: {share:.0%} of {budget} spent")
    elif share >= _WARN_AT:
        lines.append(f"Warning: {share:.0%} of the {budget} budget spent")
    return lines


def render_plain(summary: Summary) -> str:
    lines = [summary.title, "=" * len(summary.title)]
    lines += [f"{line.key}: {_requests(line.requests)}, {_cost(line)}" for line in summary.lines]
    if not summary.lines:
        lines.append("No calls in this period.")
    total = summary.total
    lines.append(f"Total: {money(total.cost_usd)}" + (f" (+{total.unpriced} unpriced)" if total.unpriced else ""))
    return "\n".join(lines + budget_lines(summary)) + "\n"


def render_table(summary: Summary, width: int) -> Any:
    """A rich renderable: every token column when the terminal is wide, the essential ones when narrow."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    compact = width < _NARROW
    table = Table(title=summary.title, show_footer=True, title_style="bold", expand=False)
    total = summary.total
    table.add_column(
        summary.by.capitalize() if summary.by in ("model", "provider", "user", "day") else summary.by, footer="Total"
    )
    table.add_column("Requests", justify="right", footer=f"{total.requests:,}")
    token_columns = _TOKEN_FIELDS[:2] if compact else _TOKEN_FIELDS
    for name in token_columns:
        header = name.removesuffix("_tokens").replace("_", " ").capitalize()
        table.add_column(header, justify="right", footer=f"{getattr(total, name):,}")
    table.add_column("Cost", justify="right", footer=_cost(total))
    for line in summary.lines:
        table.add_row(line.key, f"{line.requests:,}", *(f"{getattr(line, n):,}" for n in token_columns), _cost(line))
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
