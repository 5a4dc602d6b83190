"""The two exceptions a budget raises into the user's code."""

from __future__ import annotations

import math

__all__ = ["BudgetExceededError", "BudgetStoreError"]


def usd(amount: float) -> str:
    """Dollars to the micro-dollar, the precision a person reading an error needs."""
    return "unknown" if math.isnan(amount) else f"${amount:,.6f}"


class BudgetExceededError(Exception):
    """A call that does not fit its budget: raised before the call is sent, or from a stream's iterator when
    its running cost crosses the limit. The amounts are USD in the budget's current window."""

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


class BudgetStoreError(BudgetExceededError):
    """The budget's store could not be reached and the budget says ``on_store_error="block"`` (or a read such as
    ``spent()`` failed). ``spent`` and ``reserved`` are NaN: the store could not tell."""


_FIELDS = ("budget", "scope_value", "spent", "reserved", "limit", "estimate")


def _rebuild(kind: type[BudgetExceededError], message: str, fields: dict[str, object]) -> BudgetExceededError:
    return kind(message, **fields)  # type: ignore[arg-type]
