"""Spend budgets: a limit per calendar window (and per scope value such as ``user.id``), checked before a call's
money is spent, kept in memory or in Redis. :class:`Budget` documents them."""

from __future__ import annotations

from ._budget import DEFAULT_RESERVATION_TTL, Budget
from ._errors import BudgetCheckError, BudgetError, BudgetExceededError, BudgetStoreError
from ._reservation import Reservation, ThresholdEvent

__all__ = [
    "DEFAULT_RESERVATION_TTL",
    "Budget",
    "BudgetCheckError",
    "BudgetError",
    "BudgetExceededError",
    "BudgetStoreError",
    "Reservation",
    "ThresholdEvent",
]
