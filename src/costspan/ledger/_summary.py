"""A report's data: the summary of a period's calls (:class:`Summary`, a :class:`Line` per group), and its plain
text, the shape SPEC.md gives, which is ``str(summary)`` and what ``costspan report`` prints to a pipe.

Dollars are shown in cents from $0.10 up, as SPEC.md's "$2.45"; a smaller amount with two significant digits
($0.045, $0.0011, $0.000019), because a day of sub-cent calls (most calls of small models cost a fraction of a
cent) must never read "$0.00". CSV and JSON (:mod:`._render`) carry the exact amounts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Line", "Period", "ReportError", "Summary", "budget_lines", "cost_text", "money", "render_plain"]

_WARN_AT = 0.5


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
        return render_plain(self).removesuffix("\n")


_CENTS_FROM = 0.1


def money(amount: float) -> str:
    """USD as the report shows it: ``$2.45``, ``$0.80``, ``$0.045``, ``$0.0011``; ``$0.00`` only for nothing."""
    if amount == 0 or abs(amount) >= _CENTS_FROM or not math.isfinite(amount):
        return f"${amount:,.2f}"
    decimals = 1 - math.floor(math.log10(abs(amount)))  # two significant digits
    whole, _, fraction = f"{amount:.{decimals}f}".partition(".")
    return f"${whole}.{fraction.rstrip('0').ljust(2, '0')}"


def cost_text(line: Line) -> str:
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
    lines += [f"{line.key}: {_requests(line.requests)}, {cost_text(line)}" for line in summary.lines]
    if not summary.lines:
        lines.append("No calls in this period.")
    total = summary.total
    lines.append(f"Total: {money(total.cost_usd)}" + (f" (+{total.unpriced} unpriced)" if total.unpriced else ""))
    return "\n".join(lines + budget_lines(summary)) + "\n"
