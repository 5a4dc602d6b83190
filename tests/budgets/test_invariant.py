"""The budget invariant, as a state machine: calls reserve, extend, settle and are cancelled while the store
stalls (SIGSTOP), dies (SIGTERM), recovers, and the clock passes a window's edge. After every step in which the
store answers, spent + reserved <= limit + the cost of the calls let through unchecked; after every recovery,
once the journal is applied, spent is exactly the sum of the settled costs of the window, each counted once.

One budget on the memory store (no store faults there) and one on a real redis-server with an append-only file
(a restart keeps what it held, as a production Redis does)."""

from __future__ import annotations

import os
import signal
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest
from budgets.helpers import Clock, RedisServer
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from costspan.budgets import Budget, BudgetExceededError, BudgetStoreError, Reservation

NANOS = 1_000_000_000
LIMIT = 1.0
AMOUNTS = st.sampled_from([0.05, 0.1, 0.2, 0.35, 0.5])
START = datetime.fromisoformat("2026-03-08T10:30:00+00:00").timestamp()


class Calls(RuleBasedStateMachine):
    server: RedisServer | None = None  # set per test: None for the memory store

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock(START)
        url = None if self.server is None else self.server.url
        self.budget = Budget(LIMIT, "hour", store=url, name=f"machine-{time.time_ns()}", clock=self.clock)
        self.live: list[tuple[Reservation, int, float]] = []  # reservation, window, USD held
        self.settled: defaultdict[int, int] = defaultdict(int)  # window -> nanodollars settled
        self.unchecked: defaultdict[int, int] = defaultdict(int)  # window -> nanodollars of unchecked calls
        self.store = "up"

    @property
    def window(self) -> int:
        return int(self.clock.now // 3600)

    @rule(amount=AMOUNTS)
    def reserve(self, amount: float) -> None:
        try:
            reservation = self.budget.reserve(None, amount)
        except BudgetExceededError:
            assert self.store == "up", "refused as over budget by a store that did not answer"
            return
        self.live.append((reservation, self.window, amount))

    @precondition(lambda self: self.live)
    @rule(data=st.data(), amount=AMOUNTS)
    def extend(self, data: st.DataObject, amount: float) -> None:
        index = data.draw(st.integers(0, 99)) % len(self.live)  # drawn alike however many calls the store let in
        reservation, window, held = self.live[index]
        if self.budget.extend(reservation, amount):
            self.live[index] = (reservation, window, held + amount)

    @precondition(lambda self: self.live)
    @rule(data=st.data(), fraction=st.sampled_from([0.0, 0.3, 1.0]))
    def settle(self, data: st.DataObject, fraction: float) -> None:
        """A call ends: it cost up to what it held (0: cancelled before it was sent, its hold given back)."""
        reservation, window, held = self.live.pop(data.draw(st.integers(0, 99)) % len(self.live))
        actual = round(held * fraction, 6)
        self.budget.settle(reservation, actual)
        self.settled[window] += round(actual * NANOS)
        if not reservation.stored:
            self.unchecked[window] += round(actual * NANOS)

    @rule()
    def next_window(self) -> None:
        self.clock.now += 3600

    @precondition(lambda self: self.server is not None and self.store == "up")
    @rule()
    def stall(self) -> None:
        assert self.server is not None and self.server.process is not None
        os.kill(self.server.process.pid, signal.SIGSTOP)
        self.store = "stalled"

    @precondition(lambda self: self.server is not None and self.store == "up")
    @rule()
    def die(self) -> None:
        assert self.server is not None
        self.server.stop()
        self.store = "down"

    @precondition(lambda self: self.store != "up")
    @rule()
    def recover(self) -> None:
        assert self.server is not None
        if self.store == "stalled":
            assert self.server.process is not None
            os.kill(self.server.process.pid, signal.SIGCONT)
        else:
            self.server.start()
        self.store = "up"
        deadline = time.monotonic() + 10
        while self.budget.journaled:
            assert time.monotonic() < deadline, "the journal was never applied"
            time.sleep(0.02)
        self._assert_spent_is_what_was_settled()

    def _assert_spent_is_what_was_settled(self) -> None:
        """Once the store answers again (it is left alone for a second after failing; a stalled Redis answers
        the first reads late), spent is what was settled."""
        deadline = time.monotonic() + 5
        while True:
            try:
                spent = round(self.budget.spent() * NANOS)
            except BudgetStoreError:
                spent = None
            if spent == self.settled[self.window] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert spent == self.settled[self.window]

    @invariant()
    def spent_and_reserved_within_the_limit(self) -> None:
        if self.store != "up" or self.budget.journaled:
            return
        try:
            spent, reserved = self.budget.spent(), self.budget.reserved()
        except BudgetStoreError:  # a reserve or settle failed on a store that answers late: nothing to read yet
            return
        allowance = self.unchecked[self.window]
        assert round((spent + reserved) * NANOS) <= round(LIMIT * NANOS) + allowance
        assert round(spent * NANOS) == self.settled[self.window]

    def teardown(self) -> None:
        if self.server is not None and self.store == "stalled" and self.server.process is not None:
            os.kill(self.server.process.pid, signal.SIGCONT)
        elif self.server is not None and self.store == "down":
            self.server.start()


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_the_invariant_holds_through_faults(kind: str, tmp_path: Path) -> None:
    server = None
    if kind == "redis":
        server = RedisServer(tmp_path, persistent=True)
        server.start()
    machine = type("Machine", (Calls,), {"server": server})
    examples = 30 if kind == "memory" else 10
    try:
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=examples,
                stateful_step_count=15,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
            ),
        )
    finally:
        if server is not None:
            server.stop()
