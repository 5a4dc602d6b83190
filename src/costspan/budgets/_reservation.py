"""What a Budget hands out: a reservation held for one call, and the event a threshold fires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ._errors import BudgetError, usd
from ._store import NANOS_PER_USD, Slot

__all__ = ["Reservation", "ThresholdEvent"]


@dataclass(frozen=True, slots=True)
class ThresholdEvent:
    """A threshold crossed for the first time in a window: ``spent`` (USD, settled) reached ``threshold`` of
    ``limit``. ``window_start`` is None for a budget without a window."""

    budget: str
    scope: str | None
    scope_value: str | None
    threshold: float
    spent: float
    limit: float
    window_start: datetime | None


class Reservation:
    """Money held for one call until :meth:`Budget.settle` replaces it by the call's actual cost.

    ``stored`` is False when the store could not be reached (``on_store_error="allow"``): the call went ahead
    unchecked, and settling it still adds its cost. After :meth:`Budget.extend` returns False, ``refusal`` is the
    :class:`BudgetExceededError` to raise.
    """

    __slots__ = ("_nanos", "_pending", "_quiet", "_slot", "budget", "id", "refusal", "scope_value", "stored")

    def __init__(self, budget: str, slot: Slot, rid: str, nanos: int, stored: bool) -> None:
        self.budget = budget
        self.scope_value = slot.scope_value
        self.id = rid
        self.stored = stored
        self.refusal: BudgetError | None = None
        self._slot = slot
        self._nanos = nanos
        self._pending = [True]  # popped by the one settlement: list.pop is atomic
        # Whether a settlement within the reservation can be applied off the request thread: the store is remote
        # and no threshold lies between spent and spent + reserved (this call's hold included) as the store last
        # answered for it, so this settlement cannot be the one to cross one.
        self._quiet = False

    @property
    def amount_usd(self) -> float:
        return self._nanos / NANOS_PER_USD

    @property
    def settled(self) -> bool:
        return not self._pending

    def __repr__(self) -> str:
        state = "settled" if self.settled else "held"
        return f"<Reservation {self.budget!r} {self.scope_value!r} {usd(self.amount_usd)} {state}>"
