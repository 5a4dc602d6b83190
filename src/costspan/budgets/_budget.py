"""Budget: a spend limit per window (and per scope value), enforced before a call's money is spent.

This module holds the budget's own logic: its configuration, the call path (reserve, extend, settle) and the
reads. Configuration rules are in ``_checks``, what it hands out in ``_reservation``, the store's opening and
health in ``_stores``, the windows in ``_windows``, and settlements kept through an outage in ``_journal``."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from ._checks import (
    check_callable,
    check_choice,
    check_count,
    check_limit,
    check_name,
    check_positive,
    check_scope,
    check_thresholds,
    check_timezone,
    check_window,
)
from ._errors import BudgetExceededError, BudgetStoreError, usd
from ._journal import Entry, Journal
from ._memory import MAX_SLOTS
from ._reservation import Reservation, ThresholdEvent
from ._store import NANOS_PER_USD, Outcome, Rules, Slot, Store, StoreError, check_amount
from ._stores import Health, new_id, open_store
from ._windows import Window, window_at

if TYPE_CHECKING:
    import redis
    import redis.asyncio

    from ._redis_client import RedisCluster

__all__ = ["DEFAULT_RESERVATION_TTL", "Budget"]

DEFAULT_RESERVATION_TTL = 900.0
_KEEP = 3600.0  # seconds a window's counters outlive it (beyond the reservation TTL)
# Settlements a budget hands to its journal's thread before the request threads settle in line again (applying
# the backlog first): calls arriving faster than one thread applies them wait, and the journal stays bounded.
HANDOFF_BOUND = 1000
_log = logging.getLogger("costspan")


class Budget:
    """A spend limit in USD per calendar window, optionally per scope value, enforced before money is spent.

    ::

        from costspan import Budget, instrument

        instrument(budgets=[
            Budget(500.0, window="month"),                          # the whole application
            Budget(10.0, window="day", scope="user.id",             # each user, shared by every worker
                   store="redis://redis:6379/0", on_threshold=page_someone),
        ])

    Before a call is sent, its worst-case cost is reserved in every budget it falls under; if it does not fit
    (settled spend + reservations of calls in flight + this call > limit) it raises :class:`BudgetExceededError`
    and is not sent. When the call ends, its reservation is replaced by its actual cost, exactly once.

    Args:
        limit_usd: the limit per window, > 0 and at most $9,007,199 (amounts are counted exactly in integer
            nanodollars, up to 2**53 of them, in memory and in Redis alike).
        window: "hour", "day", "week" (ISO, from Monday), "month", or None for a lifetime total. Windows are
            calendar periods in ``timezone`` (an IANA name, default "UTC") and follow its daylight-saving
            changes: the day the clocks go forward is 23 hours long. A call counts in the window in which it was
            reserved, even if it ends in the next one (up to ``reservation_ttl`` + 1 hour after that window's end,
            when its counters are dropped).
        scope: None for one total, or an attribution attribute (``"user.id"``, ``"team"``) for a total per value.
            The attribution keyword ``"user_id"`` means the attribute it sets, ``"user.id"``.
        thresholds: fractions of the limit in (0, 1]. Each fires once per window and scope value, across every
            process sharing the store, when settled spend reaches it (``round(fraction * limit)`` nanodollars):
            ``on_threshold(ThresholdEvent)`` is called in the process whose settlement crossed it.
        action: "block" refuses calls that do not fit; "alert" never refuses, but counts and fires thresholds.
        name: the budget's identity: budgets of the same name on the same Redis share their numbers. The default
            is built from window, timezone, scope and limit (``"day:user.id:10usd"``), so identically configured
            processes share state; set one when two differently configured budgets must share, or not.
        store: None keeps the numbers in this process's memory (thread- and asyncio-safe; bounded to
            ``max_scope_values`` scope values: past that, a new scope value's calls get the ``on_store_error``
            policy, and no current window's spend is ever forgotten). A Redis URL
            (``redis://``, ``rediss://``, ``unix://``; ``pip install 'costspan[redis]'``) shares them between
            processes; each step is one atomic script. Sync calls use a sync client and async calls a
            ``redis.asyncio`` client (one per event loop), so a budget never blocks the event loop. Clients made
            from a URL open up to 32 connections (more calls at once wait their turn), time out after 0.25 s and
            never retry; URL parameters override that (``?socket_timeout=1``). A ``redis.Redis`` or
            ``redis.asyncio.Redis`` client is used as configured, and the other kind is made from its connection
            settings. Keys are ``costspan:budget:{name=scope value|window start}:...``, one hash tag per budget,
            scope value and window, so each step runs on one node of a Redis Cluster: give a
            ``redis+cluster://host:port`` URL (``rediss+cluster://`` for TLS; any one node) or a
            ``redis.cluster.RedisCluster`` / ``redis.asyncio.cluster.RedisCluster`` client.
        on_store_error: when the store fails or times out, "allow" lets calls through unchecked (one warning on
            the ``costspan`` logger per outage; ``store_errors`` counts them), "block" refuses them with
            :class:`BudgetStoreError`. A failed store is left alone for a second before it is tried again, so an
            outage costs at most one timeout a second, and the budget recovers by itself when the store answers.
        on_unpriced: a call to a model without a price: "allow" (reserve nothing, warn once) or "block".
        reservation_ttl: seconds a reservation lives (default 900, above the SDKs' 600 s request timeout); a
            stream renews it whenever it extends. A process that dies holding a reservation holds it no longer
            than that (by the Redis server's clock, so workers' clocks need not agree). Settling an expired
            reservation still counts the call's cost.
        max_scope_values: how many (scope value, window) counters the memory store keeps (default 10,000).
        clock: the time (epoch seconds) that places calls in windows; for tests.

    Reading: :meth:`spent` (settled USD in the current window), :meth:`reserved` (held by calls in flight),
    :meth:`remaining` (``max(limit - spent, 0)``), each with an ``a``-prefixed async twin.

    Amounts become integer nanodollars by one rule, at reserve, extend and settle alike: round to the nearest
    nanodollar, ties to even (``round(usd * 1e9)``). ``spent()`` is the exact sum of the settled amounts so rounded.
    """

    def __init__(
        self,
        limit_usd: float,
        window: str | None = "day",
        *,
        scope: str | None = None,
        thresholds: Sequence[float] = (0.5, 0.8, 1.0),
        on_threshold: Callable[[ThresholdEvent], None] | None = None,
        action: str = "block",
        name: str | None = None,
        store: str | redis.Redis | redis.asyncio.Redis | RedisCluster | None = None,
        timezone: str = "UTC",
        on_store_error: str = "allow",
        on_unpriced: str = "allow",
        reservation_ttl: float = DEFAULT_RESERVATION_TTL,
        max_scope_values: int = MAX_SLOTS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._limit = check_limit(limit_usd)
        self._window_kind = check_window(window)
        self._zone = check_timezone(timezone)
        self._scope = check_scope(scope)
        self._thresholds = check_thresholds(thresholds)
        self._on_threshold = check_callable("on_threshold", on_threshold, optional=True)
        self._action = check_choice("action", action, ("block", "alert"))
        self._on_store_error = check_choice("on_store_error", on_store_error, ("allow", "block"))
        self._on_unpriced = check_choice("on_unpriced", on_unpriced, ("allow", "block"))
        self._ttl = check_positive("reservation_ttl", reservation_ttl)
        self._max_slots = check_count("max_scope_values", max_scope_values)
        self._clock = check_callable("clock", clock)
        self._timezone = timezone
        self._name = check_name(name) if name is not None else self._default_name()
        limit_ns = self._limit_ns = round(self._limit * NANOS_PER_USD)
        self._refuse_above = limit_ns if self._action == "block" else None
        self._levels = tuple(round(fraction * limit_ns) for fraction in self._thresholds)
        rules = Rules(
            name=self._name,
            hold_ms=math.ceil(self._ttl * 1000),
            keep=self._ttl + _KEEP,
            thresholds=tuple((fraction, round(fraction * limit_ns)) for fraction in self._thresholds),
            clock=self._clock,
            max_slots=self._max_slots,
        )
        self._store: Store = open_store(store, rules)
        self._remote = self._store.remote
        self._lock = threading.Lock()
        self._window = window_at(self._window_kind, self._zone, self._clock())
        self._global = Slot(None, self._window.id, self._window.end)
        # The current window's slot per scope value reserved for: what scope_values() lists (insertion-ordered).
        self._seen: dict[str, Slot] = {}
        self._health = Health(self._name, self._store, self._on_store_error)
        store_ = self._store
        self._journal = Journal(self._name, lambda entry: store_.settle(*entry), self._replayed)

    # -- read-only configuration --------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The budget's name: its identity in the store and in metrics."""
        return self._name

    @property
    def limit_usd(self) -> float:
        """The limit in USD per window."""
        return self._limit

    @property
    def window(self) -> str | None:
        """The calendar window: "hour", "day", "week", "month", or None for a lifetime total."""
        return self._window_kind

    @property
    def timezone(self) -> str:
        """The IANA time zone of the calendar windows."""
        return self._timezone

    @property
    def scope(self) -> str | None:
        """The attribution attribute the budget is kept per value of, or None for one total."""
        return self._scope

    @property
    def thresholds(self) -> tuple[float, ...]:
        """The threshold fractions, ascending."""
        return self._thresholds

    @property
    def action(self) -> str:
        """What a call that does not fit gets: "block" (refused) or "alert" (let through, counted)."""
        return self._action

    @property
    def on_store_error(self) -> str:
        """What a call gets while the store fails: "allow" (let through unchecked) or "block" (refused)."""
        return self._on_store_error

    @property
    def on_unpriced(self) -> str:
        """What the instrumentation does with a call to a model without a price: "allow" or "block"."""
        return self._on_unpriced

    @property
    def reservation_ttl(self) -> float:
        """Seconds a reservation lives without extend()."""
        return self._ttl

    @property
    def store_errors(self) -> int:
        """How many budget operations could not use the store (failed, timed out, or skipped while it was down)."""
        return self._health.errors

    @property
    def unchecked(self) -> int:
        """How many calls went through unchecked (``on_store_error="allow"``: the store failed, or costspan
        failed to check them). Their cost is still counted, once the store answers."""
        return self._health.unchecked

    @property
    def journaled(self) -> int:
        """Settlements not yet applied: kept until the store answers (at most ``JOURNAL_BOUND``), or handed to the
        journal's thread (see costspan.budgets._journal)."""
        return len(self._journal)

    def count_unchecked(self) -> None:
        """Count a call let through without a reservation (costspan could not check it)."""
        self._health.let_through()

    def __repr__(self) -> str:
        return f"<Budget {self._name!r} {usd(self._limit)} {self._action} store={self._store.describe()}>"

    # -- reads --------------------------------------------------------------------------------------------------
    def spent(self, scope_value: str | None = None) -> float:
        """Settled USD in the current window (for ``scope_value`` of a scoped budget)."""
        return self._status(scope_value).spent / NANOS_PER_USD

    def reserved(self, scope_value: str | None = None) -> float:
        """USD held by live reservations (calls in flight) in the current window."""
        return self._status(scope_value).reserved / NANOS_PER_USD

    def remaining(self, scope_value: str | None = None) -> float:
        """``max(limit - spent, 0)``: what is left of the current window's limit after settled spend (calls in
        flight are not subtracted; :meth:`reserved` tells them)."""
        return max(self._limit_ns - self._status(scope_value).spent, 0) / NANOS_PER_USD

    async def aspent(self, scope_value: str | None = None) -> float:
        return (await self._astatus(scope_value)).spent / NANOS_PER_USD

    async def areserved(self, scope_value: str | None = None) -> float:
        return (await self._astatus(scope_value)).reserved / NANOS_PER_USD

    async def aremaining(self, scope_value: str | None = None) -> float:
        return max(self._limit_ns - (await self._astatus(scope_value)).spent, 0) / NANOS_PER_USD

    def scope_values(self) -> list[str]:
        """Scope values this process has reserved for in the current window, in first-seen order (at most the
        10,000 latest): the values to report per-scope figures for."""
        self._current()
        with self._lock:
            return list(self._seen)

    # -- the call path ------------------------------------------------------------------------------------------
    def reserve(self, scope_value: str | None, amount_usd: float) -> Reservation:
        """Hold ``amount_usd`` (a call's worst case) for one call; raises :class:`BudgetExceededError` when it
        does not fit (action "block")."""
        slot, rid, nanos = self._prepare(scope_value, amount_usd)
        applied = self._journal.applied
        try:
            outcome = self._store.reserve(slot, rid, nanos, self._refuse_above)
            if not outcome.ok and self._pending_since(applied):  # this process's ended calls held it: again
                self._journal.flush()
                outcome = self._store.reserve(slot, rid, nanos, self._refuse_above)
        except StoreError as error:
            return self._unstored(slot, rid, nanos, error)
        return self._reserved(slot, rid, nanos, outcome)

    async def areserve(self, scope_value: str | None, amount_usd: float) -> Reservation:
        slot, rid, nanos = self._prepare(scope_value, amount_usd)
        applied = self._journal.applied
        try:
            outcome = await self._store.areserve(slot, rid, nanos, self._refuse_above)
            if not outcome.ok and self._pending_since(applied):
                await self._apply_pending()
                outcome = await self._store.areserve(slot, rid, nanos, self._refuse_above)
        except StoreError as error:
            return self._unstored(slot, rid, nanos, error)
        except BaseException:
            # Cancelled while the store had the request: it may hold it. Release it, whenever the store answers.
            self._journal.add(Entry(slot, rid, 0, True))
            raise
        return self._reserved(slot, rid, nanos, outcome)

    def extend(self, reservation: Reservation, amount_usd: float) -> bool:
        """Grow a live reservation by ``amount_usd`` (a stream running past it) and refresh its expiry. False when
        it no longer fits (action "block"); ``reservation.refusal`` then holds the error to raise."""
        add = self._prepare_extend(reservation, amount_usd)
        if add is None:
            return False
        total = reservation._nanos + add
        try:
            outcome = self._store.extend(reservation._slot, reservation.id, add, total, self._refuse_above)
        except StoreError as error:
            return self._extend_failed(reservation, add, error)
        return self._extended(reservation, add, outcome)

    async def aextend(self, reservation: Reservation, amount_usd: float) -> bool:
        add = self._prepare_extend(reservation, amount_usd)
        if add is None:
            return False
        total = reservation._nanos + add
        try:
            outcome = await self._store.aextend(reservation._slot, reservation.id, add, total, self._refuse_above)
        except StoreError as error:
            return self._extend_failed(reservation, add, error)
        return self._extended(reservation, add, outcome)

    def settle(self, reservation: Reservation, actual_usd: float) -> tuple[float, ...]:
        """Replace the reservation by the call's actual cost, exactly once (later calls do nothing). Returns the
        thresholds this settlement crossed first in its window, after calling ``on_threshold`` for each. Never
        raises for a store failure: the money is spent; the settlement is kept in the budget's journal and applied
        once the store answers (see :attr:`journaled`). A Redis budget's settlement within its reservation that
        cannot cross a threshold is handed to the journal's thread, applied at once off the calling thread (see
        costspan.budgets._journal), and returns (); should it cross one after all (calls reserved after it, in
        another process or thread, settled first), ``on_threshold`` is called from that thread."""
        actual = self._prepare_settle(reservation, actual_usd)
        if actual is None:
            return ()
        slot, rid, stored = reservation._slot, reservation.id, reservation.stored
        if reservation._quiet and self._hands_off(reservation, actual):
            self._journal.add(Entry(slot, rid, actual, stored))  # applied at once by the journal's thread
            return ()
        if self._journal.entries:
            self._journal.flush()  # this process's earlier settlements first, in the order the calls ended
        try:
            outcome = self._store.settle(slot, rid, actual, stored)
        except StoreError as error:
            self._health.failed(error)
            self._journal.add(Entry(slot, rid, actual, stored))
            return ()
        if outcome.crossed or self._health.down:
            return self._settled(slot, outcome)
        return ()

    async def asettle(self, reservation: Reservation, actual_usd: float) -> tuple[float, ...]:
        actual = self._prepare_settle(reservation, actual_usd)
        if actual is None:
            return ()
        entry = Entry(reservation._slot, reservation.id, actual, reservation.stored)
        if reservation._quiet and self._hands_off(reservation, actual):
            self._journal.add(entry)  # no I/O and no await: a cancellation cannot come between
            return ()
        try:
            if self._journal.entries:
                await self._apply_pending()
            outcome = await self._store.asettle(*entry)
        except StoreError as error:
            self._health.failed(error)
            self._journal.add(entry)
            return ()
        except BaseException:  # cancelled while the store had it: applied once, from the journal if need be
            self._journal.add(entry)
            raise
        return self._settled(reservation._slot, outcome)

    # -- internals ------------------------------------------------------------------------------------------------
    def _current(self) -> Window:
        window = self._window
        now = self._clock()
        return window if window.start <= now < window.end else self._roll(now)

    def _roll(self, now: float) -> Window:
        """A new window: its slots are made once, here and at the first reservation of each scope value."""
        window = window_at(self._window_kind, self._zone, now)
        with self._lock:
            self._window, self._seen = window, {}
            self._global = Slot(None, window.id, window.end)
        return window

    def _slot(self, scope_value: str | None) -> Slot:
        window = self._window
        now = self._clock()
        if not window.start <= now < window.end:
            window = self._roll(now)
        if self._scope is None:
            return self._global
        if scope_value is None:
            raise ValueError(f"budget {self._name!r} is kept per {self._scope}: pass the call's {self._scope} value")
        return self._seen.get(scope_value) or Slot(str(scope_value), window.id, window.end)

    def _prepare(self, scope_value: str | None, amount_usd: float) -> tuple[Slot, str, int]:
        nanos = check_amount(amount_usd)
        slot = self._slot(scope_value)
        if slot.scope_value is not None and slot.scope_value not in self._seen:
            self._saw(slot)
        return slot, new_id(), nanos

    def _saw(self, slot: Slot) -> None:
        with self._lock:
            seen = self._seen
            if slot.window == self._window.id:
                seen[slot.scope_value] = slot  # type: ignore[index]
                if len(seen) > self._max_slots:
                    del seen[next(iter(seen))]

    def _reserved(self, slot: Slot, rid: str, nanos: int, outcome: Outcome) -> Reservation:
        if self._health.down:
            self._health.answered()
        if not outcome.ok:
            raise self._exceeded(slot.scope_value, outcome, nanos, "refused a call needing {}")
        reservation = Reservation(self._name, slot, rid, nanos, stored=True)
        reservation._quiet = self._remote and self._quiet(outcome)
        return reservation

    async def _apply_pending(self) -> None:
        """This process's pending settlements, applied through the async client (never a thread of the loop's
        executor, which the application's own work needs). The journal's thread may apply them too: the store
        counts each once."""
        for entry in self._journal.pending():
            outcome = await self._store.asettle(*entry)
            self._journal.took(entry)
            self._settled(entry.slot, outcome)

    def _pending_since(self, applied: int) -> bool:
        """Whether the journal holds settlements, or applied some after ``applied`` (the count when a reserve
        began: its refusal may have seen their reservations still held)."""
        return bool(self._journal) or self._journal.applied != applied

    def _hands_off(self, reservation: Reservation, actual: int) -> bool:
        return actual <= reservation._nanos and len(self._journal) < HANDOFF_BOUND

    def _quiet(self, outcome: Outcome) -> bool:
        """Whether no threshold lies in (spent, spent + reserved] of a remote store's answer."""
        spent, ceiling = outcome.spent, outcome.spent + outcome.reserved
        return not any(spent < level <= ceiling for level in self._levels)

    def _unstored(self, slot: Slot, rid: str, nanos: int, error: StoreError) -> Reservation:
        self._health.failed(error)
        if self._on_store_error == "block":
            raise self._store_error(slot.scope_value, error, "refused a call needing {}", nanos / NANOS_PER_USD)
        self._health.let_through()
        return Reservation(self._name, slot, rid, nanos, stored=False)

    def _prepare_extend(self, reservation: Reservation, amount_usd: float) -> int | None:
        self.check_own(reservation)
        add = check_amount(amount_usd)
        return None if reservation.settled else add

    def _extended(self, reservation: Reservation, add: int, outcome: Outcome) -> bool:
        self._health.answered()
        if not outcome.ok:
            refusal = self._exceeded(reservation.scope_value, outcome, add, "stopped a call needing {} more")
            reservation.refusal = refusal
            return False
        reservation._nanos = outcome.held
        reservation.stored = True
        reservation._quiet = self._remote and self._quiet(outcome)
        return True

    def _extend_failed(self, reservation: Reservation, add: int, error: StoreError) -> bool:
        self._health.failed(error)
        reservation._quiet = False
        if self._on_store_error == "block":
            what, more = "stopped a call needing {} more", add / NANOS_PER_USD
            reservation.refusal = self._store_error(reservation.scope_value, error, what, more)
            return False
        reservation._nanos += add
        return True

    def _prepare_settle(self, reservation: Reservation, actual_usd: float) -> int | None:
        if reservation.budget != self._name:
            self.check_own(reservation)  # raises
        actual = check_amount(actual_usd)
        try:
            reservation._pending.pop()
        except IndexError:
            return None
        return actual

    def _settled(self, slot: Slot, outcome: Outcome) -> tuple[float, ...]:
        self._health.answered()
        if outcome.crossed and self._on_threshold is not None:
            for threshold in outcome.crossed:
                self._fire(slot, threshold, outcome.spent)
        return outcome.crossed

    def _replayed(self, entry: Entry, outcome: Outcome) -> None:
        self._settled(entry.slot, outcome)

    def _fire(self, slot: Slot, threshold: float, spent: int) -> None:
        start = None if slot.window is None else datetime.fromtimestamp(slot.window, self._zone)
        event = ThresholdEvent(
            self._name, self._scope, slot.scope_value, threshold, spent / NANOS_PER_USD, self._limit, start
        )
        try:
            self._on_threshold(event)
        except Exception:
            # The user's callback must not break the call whose settlement crossed the threshold.
            _log.warning("costspan: on_threshold of budget %r raised", self._name, exc_info=True)

    def _status(self, scope_value: str | None) -> Outcome:
        slot = self._slot(scope_value)
        if self._journal:
            self._journal.flush()  # this process's settlements not yet applied: a read sees every call ended
        try:
            outcome = self._store.status(slot)
        except StoreError as error:
            raise self._unreadable(slot, error) from error
        self._health.answered()
        return outcome

    async def _astatus(self, scope_value: str | None) -> Outcome:
        slot = self._slot(scope_value)
        try:
            if self._journal:
                await self._apply_pending()
            outcome = await self._store.astatus(slot)
        except StoreError as error:
            raise self._unreadable(slot, error) from error
        self._health.answered()
        return outcome

    def _unreadable(self, slot: Slot, error: StoreError) -> BudgetStoreError:
        self._health.failed(error)
        return self._store_error(slot.scope_value, error, "could not read its spend" + (self._period() or " total"))

    def check_own(self, reservation: Reservation) -> None:
        if reservation.budget != self._name:
            raise ValueError(f"reservation of budget {reservation.budget!r} given to budget {self._name!r}")

    def _who(self, scope_value: str | None) -> str:
        return f"budget {self._name!r}" + ("" if self._scope is None else f" for {self._scope}={scope_value!r}")

    def _exceeded(self, scope_value: str | None, outcome: Outcome, nanos: int, verb: str) -> BudgetExceededError:
        """``verb`` says what happened to the call, with ``{}`` where the amount goes."""
        spent, reserved, estimate = (n / NANOS_PER_USD for n in (outcome.spent, outcome.reserved, nanos))
        message = (
            f"{self._who(scope_value)} {verb.format(usd(estimate))}: {usd(spent)} spent and {usd(reserved)} "
            f"reserved of its {usd(self._limit)} limit{self._period()}"
        )
        return BudgetExceededError(
            message,
            budget=self._name,
            scope_value=scope_value,
            spent=spent,
            reserved=reserved,
            limit=self._limit,
            estimate=estimate,
        )

    def _store_error(
        self, scope_value: str | None, error: StoreError, what: str, estimate: float = math.nan
    ) -> BudgetStoreError:
        """``what`` says what happened, with ``{}`` where the amount of a refused call goes."""
        message = f"{self._who(scope_value)} {what.format(usd(estimate))}: its store {self._store.describe()} failed"
        message += f" ({error})"
        if not math.isnan(estimate):
            message += "; on_store_error='block' refuses calls while it is down"
        return BudgetStoreError(
            message,
            budget=self._name,
            scope_value=scope_value,
            spent=math.nan,
            reserved=math.nan,
            limit=self._limit,
            estimate=estimate,
        )

    def _period(self) -> str:
        if self._window_kind is None:
            return ""
        zone = "" if self._timezone == "UTC" else f" ({self._timezone})"
        return f" this {self._window_kind}{zone}"

    def _default_name(self) -> str:
        window = self._window_kind or "lifetime"
        if self._window_kind is not None and self._timezone != "UTC":
            window += "@" + self._timezone
        limit = repr(self._limit).removesuffix(".0")
        return f"{window}:{self._scope or 'global'}:{limit}usd"
