"""The in-process store: a dict of counters under one lock held for microseconds (no awaits inside, so the
async methods are safe on any event loop and never block it for longer than a dict update).

Bounded: a window's counters are dropped ``keep`` seconds after the window ends, and at most ``max_slots``
(scope value, window) counters are kept (the budget's ``max_scope_values``). A current window's spend is never
forgotten: when the store is full, counters of windows that have ended and hold no reservation make room; if
none do, a new scope value is a store failure (:class:`StoreError`), so the budget's ``on_store_error`` decides:
"allow" lets its calls through unchecked (counted, and settled into the store once there is room), "block"
refuses them. A warning is logged once. Use Redis for budgets over more scope values than that.
"""

from __future__ import annotations

import heapq
import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from ._store import Outcome, Rules, Slot, StoreError

__all__ = ["MAX_SLOTS", "MemoryStore"]

MAX_SLOTS = 10_000
_STALE_SLACK = 64  # stale expiry entries kept beyond the live holds' count before the heap is rebuilt
_log = logging.getLogger("costspan")


@dataclass(slots=True)
class _Counters:
    end: float
    next_level: float  # the lowest threshold level not fired yet (inf: all fired)
    spent: int = 0
    reserved: int = 0
    holds: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (nanodollars, expiry ms)
    expiries: list[tuple[int, str]] = field(default_factory=list)  # heap; stale entries skipped on pop
    expired: set[str] = field(default_factory=set)  # expired, not yet settled
    fired: set[float] = field(default_factory=set)

    def purge(self, now_ms: int) -> None:
        while self.expiries and self.expiries[0][0] <= now_ms:
            expiry, rid = heapq.heappop(self.expiries)
            hold = self.holds.get(rid)
            if hold is not None and hold[1] == expiry:
                del self.holds[rid]
                self.reserved -= hold[0]
                self.expired.add(rid)

    def hold(self, rid: str, amount: int, expiry: int) -> None:
        previous = self.holds.get(rid, (0, 0))[0]
        self.holds[rid] = (amount, expiry)
        self.reserved += amount - previous
        heapq.heappush(self.expiries, (expiry, rid))
        # A settled or extended hold leaves its entry in the heap until it is due, reservation_ttl later (15
        # minutes by default: a million entries at a thousand calls a second). Rebuilt from the live holds once
        # stale entries outnumber them, the heap stays proportional to the calls in flight, at O(1) amortised.
        if len(self.expiries) > 2 * len(self.holds) + _STALE_SLACK:
            self.expiries = [(due, held) for held, (_amount, due) in self.holds.items()]
            heapq.heapify(self.expiries)


class MemoryStore:
    remote = False

    def __init__(self, rules: Rules) -> None:
        self._rules = rules
        self._lock = threading.Lock()
        self._slots: OrderedDict[Slot, _Counters] = OrderedDict()
        # The slot of the last step and its counters: a budget passes the same Slot to every call of a window (per
        # scope value), so a run of calls on one finds them without a lookup. Forgotten when the slot is dropped.
        self._last: tuple[Slot | None, _Counters | None] = (None, None)
        self._sweep_at = 0.0
        self._warned_full = False

    def describe(self) -> str:
        return "memory"

    def reserve(self, slot: Slot, rid: str, amount: int, limit: int | None) -> Outcome:
        with self._lock:
            counters, now_ms = self._counters(slot)
            if rid in counters.holds:
                return Outcome(True, counters.spent, counters.reserved)
            if limit is not None and counters.spent + counters.reserved + amount > limit:
                return Outcome(False, counters.spent, counters.reserved)
            counters.hold(rid, amount, now_ms + self._rules.hold_ms)
            return Outcome(True, counters.spent, counters.reserved, held=amount)

    def extend(self, slot: Slot, rid: str, add: int, total: int, limit: int | None) -> Outcome:
        with self._lock:
            counters, now_ms = self._counters(slot)
            live = counters.holds.get(rid)
            # A reservation that expired (or was never stored) comes back whole, if it fits.
            amount = total if live is None else live[0] + add
            delta = amount - (0 if live is None else live[0])
            if limit is not None and counters.spent + counters.reserved + delta > limit:
                return Outcome(False, counters.spent, counters.reserved, held=0 if live is None else live[0])
            counters.expired.discard(rid)
            counters.hold(rid, amount, now_ms + self._rules.hold_ms)
            return Outcome(True, counters.spent, counters.reserved, held=amount)

    def settle(self, slot: Slot, rid: str, actual: int, stored: bool) -> Outcome:
        with self._lock:
            counters, _ = self._counters(slot)
            hold = counters.holds.pop(rid, None)
            if hold is not None:
                counters.reserved -= hold[0]
            elif rid in counters.expired:
                counters.expired.discard(rid)
            elif stored:  # settled before: exactly once
                return Outcome(False, counters.spent, counters.reserved)
            counters.spent += actual
            if counters.spent < counters.next_level:
                return Outcome(True, counters.spent, counters.reserved)
            return Outcome(True, counters.spent, counters.reserved, self._fire(counters))

    def _fire(self, counters: _Counters) -> tuple[float, ...]:
        thresholds = self._rules.thresholds
        crossed = tuple(f for f, level in thresholds if counters.spent >= level and f not in counters.fired)
        counters.fired.update(crossed)
        counters.next_level = min((level for f, level in thresholds if f not in counters.fired), default=math.inf)
        return crossed

    def status(self, slot: Slot) -> Outcome:
        with self._lock:
            if slot not in self._slots:  # a read creates nothing
                return Outcome(True, 0, 0)
            counters, _ = self._counters(slot)
            return Outcome(True, counters.spent, counters.reserved)

    async def areserve(self, slot: Slot, rid: str, amount: int, limit: int | None) -> Outcome:
        return self.reserve(slot, rid, amount, limit)

    async def aextend(self, slot: Slot, rid: str, add: int, total: int, limit: int | None) -> Outcome:
        return self.extend(slot, rid, add, total, limit)

    async def asettle(self, slot: Slot, rid: str, actual: int, stored: bool) -> Outcome:
        return self.settle(slot, rid, actual, stored)

    async def astatus(self, slot: Slot) -> Outcome:
        return self.status(slot)

    def __len__(self) -> int:
        return len(self._slots)

    def _counters(self, slot: Slot) -> tuple[_Counters, int]:
        now = self._rules.clock()
        if now >= self._sweep_at:
            self._sweep(now)
        last, counters = self._last
        if slot is not last or counters is None:
            counters = self._find(slot, now)
        now_ms = int(now * 1000)
        expiries = counters.expiries
        if expiries and expiries[0][0] <= now_ms:
            counters.purge(now_ms)
        return counters, now_ms

    def _find(self, slot: Slot, now: float) -> _Counters:
        """The slot's counters, made if need be, and moved last: the most recently used (see _make_room)."""
        counters = self._slots.get(slot)
        if counters is None:
            if len(self._slots) >= self._rules.max_slots:
                self._make_room(now)
            first = min((level for _, level in self._rules.thresholds), default=math.inf)
            counters = self._slots[slot] = _Counters(slot.end, first)
        else:
            self._slots.move_to_end(slot)
        self._last = (slot, counters)
        return counters

    def _sweep(self, now: float) -> None:
        """Drop windows that ended more than ``keep`` seconds ago; runs at most once a minute."""
        keep = self._rules.keep
        for slot in [slot for slot, counters in self._slots.items() if counters.end + keep <= now]:
            del self._slots[slot]
        self._last = (None, None)
        self._sweep_at = now + min(60.0, keep)

    def _make_room(self, now: float) -> None:
        """Forget one ended window's idle counters, or fail: a current window's spend is never forgotten."""
        ended = next((s for s, counters in self._slots.items() if counters.end <= now and not counters.holds), None)
        if ended is not None:
            del self._slots[ended]
            self._last = (None, None)
            return
        limit = self._rules.max_slots
        if not self._warned_full:
            self._warned_full = True
            _log.warning(
                "costspan: budget %r keeps %d scope values in memory (max_scope_values), all in use this window: "
                "a new one is handled as a store failure (on_store_error). Raise max_scope_values or use Redis.",
                self._rules.name,
                limit,
            )
        raise StoreError(f"the memory store is full: {limit} scope values this window (max_scope_values)")
