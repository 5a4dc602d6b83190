"""The exceptions a budget raises into the user's code.

::

    BudgetError                  anything a budget raises instead of letting a call go out (or a read finish)
    +-- BudgetExceededError      over budget: the call does not fit its limit (what to tell a user)
    +-- BudgetCheckError         the budget could not check the call, and on_store_error="block" refuses it
        +-- BudgetStoreError     ...because its store is unreachable (also raised by spent() and the like)

An ``except BudgetExceededError`` never sees a store outage: the two cannot be confused.
"""

from __future__ import annotations

import math

__all__ = ["BudgetCheckError", "BudgetError", "BudgetExceededError", "BudgetStoreError"]


def usd(amount: float) -> str:
    """Dollars to the micro-dollar, the precision a person reading an error needs."""
    return "unknown" if math.isnan(amount) else f"${amount:,.6f}"


class BudgetError(Exception):
    """What a budget raises instead of letting a call go out: the base of :class:`BudgetExceededError` (over
    budget) and :class:`BudgetCheckError` (could not check). The amounts are USD in the budget's current window;
    NaN where the budget could not tell."""

    def __init__(
        self,
        message: str,
        *,
        budget: str,
        scope_value: str | None,
        spent: float,
        reserved: float,
        limit: float,
        estimate: float,
    ) -> None:
        super().__init__(message)
        self.budget = budget
        self.scope_value = scope_value
        self.spent = spent
        self.reserved = reserved
        self.limit = limit
        self.estimate = estimate

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only fields: the default exception pickling would pass the message alone.
        fields = {name: getattr(self, name) for name in _FIELDS}
        return (_rebuild, (type(self), str(self), fields))


class BudgetExceededError(BudgetError):
    """A call that does not fit its budget: raised before the call is sent, or from a stream's iterator when
    its running cost crosses the limit."""


class BudgetCheckError(BudgetError):
    """The budget could not check the call (costspan failed to price it or to reserve it) and its
    ``on_store_error="block"`` refuses what it cannot check. The call was not sent."""


class BudgetStoreError(BudgetCheckError):
    """The budget's store could not be reached and the budget says ``on_store_error="block"`` (or a read such as
    ``spent()`` failed). ``spent`` and ``reserved`` are NaN: the store could not tell."""


_FIELDS = ("budget", "scope_value", "spent", "reserved", "limit", "estimate")


def _rebuild(kind: type[BudgetError], message: str, fields: dict[str, object]) -> BudgetError:
    return kind(message, **fields)  # type: ignore[arg-type]
