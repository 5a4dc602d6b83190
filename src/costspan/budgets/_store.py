"""What a budget asks of its store, in integer nanodollars, and the rounding rule that gets amounts there.

A store keeps, per budget, scope value and window (a :class:`Slot`): the settled spend, the live reservations
(each with an expiry) and the thresholds already fired. Reserve, extend and settle are each one atomic step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple, Protocol

__all__ = ["NANOS_PER_USD", "Outcome", "Rules", "Slot", "Store", "StoreError", "check_amount"]

NANOS_PER_USD = 1_000_000_000
# Redis Lua numbers are doubles: integers are exact up to 2**53 nanodollars ($9,007,199.25).
MAX_NANOS = 2**53


def check_amount(usd: float) -> int:
    """``usd`` in nanodollars, by the one rounding rule used at reserve, extend and settle alike: the nearest
    nanodollar (1e-9 USD), ties to even (Python's ``round``). Refuses what is not a finite amount >= 0."""
    if type(usd) is float and 0.0 <= usd < math.inf:  # every call's cost: one check, on reserve and settle
        return round(usd * NANOS_PER_USD)
    if isinstance(usd, (int, float)) and not isinstance(usd, bool) and 0 <= usd < math.inf:
        return round(usd * NANOS_PER_USD)
    raise ValueError(f"a budget amount must be a finite number of USD >= 0, not {usd!r}")


class Slot(NamedTuple):
    """One budget's counters for one scope value in one window. ``window`` is the window's start (epoch seconds,
    an integer) or None for a budget without a window; ``end`` is when the window ends (``inf`` without one)."""

    scope_value: str | None
    window: int | None
    end: float


class Rules(NamedTuple):
    """What a store needs to know of its budget."""

    name: str
    hold_ms: int  # how long a reservation lives without extend()
    keep: float  # seconds a window's counters outlive the window (late settlements, clock skew)
    thresholds: tuple[tuple[float, int], ...]  # (fraction, settled nanodollars at which it fires)
    clock: Callable[[], float]
    max_slots: int = 10_000  # the memory store's bound on (scope value, window) counters


class Outcome(NamedTuple):
    """A store's answer: whether the step happened, and the slot's settled and reserved nanodollars after it
    (before it, when refused). ``crossed`` holds the thresholds a settlement fired; ``held`` the reservation's
    amount after an extend."""

    ok: bool
    spent: int
    reserved: int
    crossed: tuple[float, ...] = ()
    held: int = 0


class StoreError(Exception):
    """The store failed; the message says how, without credentials."""


class Store(Protocol):
    """The store a Budget uses. ``limit`` is None for a budget that never refuses (action="alert")."""

    # Whether each step is a round trip to another process (Redis): then a settlement that changes nothing but
    # the numbers is applied off the request thread (see _journal).
    remote: bool

    def describe(self) -> str: ...

    def reserve(self, slot: Slot, rid: str, amount: int, limit: int | None) -> Outcome: ...

    def extend(self, slot: Slot, rid: str, add: int, total: int, limit: int | None) -> Outcome: ...

    def settle(self, slot: Slot, rid: str, actual: int, stored: bool) -> Outcome: ...

    def status(self, slot: Slot) -> Outcome: ...

    async def areserve(self, slot: Slot, rid: str, amount: int, limit: int | None) -> Outcome: ...

    async def aextend(self, slot: Slot, rid: str, add: int, total: int, limit: int | None) -> Outcome: ...

    async def asettle(self, slot: Slot, rid: str, actual: int, stored: bool) -> Outcome: ...

    async def astatus(self, slot: Slot) -> Outcome: ...
