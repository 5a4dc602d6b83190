"""costspan: exact token counts and USD cost on every OpenAI and Anthropic call, as OpenTelemetry spans and
metrics. ``costspan.instrument()`` is the one line; importing costspan patches nothing and does no I/O."""

from __future__ import annotations

from typing import Any

from ._estimate import Estimate, estimate
from ._request import Run, current_run, track
from ._version import __version__
from .budgets import Budget, BudgetCheckError, BudgetError, BudgetExceededError, BudgetStoreError
from .context import attribution
from .instrumentor import CostspanInstrumentor
from .pricing import Cost, Pricing, cost_of
from .usage import Usage

__all__ = [
    "Budget",
    "BudgetCheckError",
    "BudgetError",
    "BudgetExceededError",
    "BudgetStoreError",
    "Cost",
    "CostspanInstrumentor",
    "Estimate",
    "Pricing",
    "Run",
    "Usage",
    "__version__",
    "attribution",
    "cost_of",
    "current_run",
    "estimate",
    "instrument",
    "track",
    "uninstrument",
]


def instrument(**options: Any) -> None:
    """Instrument every installed provider SDK.

    With no OpenTelemetry SDK providers configured, sets up default ones first: exporters from the standard
    ``OTEL_*`` variables, and the local ledger (``costspan report`` reads it; see :mod:`costspan.ledger`).
    ``tracer_provider`` / ``meter_provider`` may be passed explicitly; the other options are those of
    :class:`costspan.config.Options`. An unknown or unusable option raises TypeError or ValueError naming it and
    what it accepts. Calling it twice instruments once.
    """
    CostspanInstrumentor().instrument(**options)


def uninstrument() -> None:
    """Restore every patched SDK function exactly."""
    CostspanInstrumentor().uninstrument()
