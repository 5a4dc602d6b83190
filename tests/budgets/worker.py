"""A worker process for the cross-process budget tests: ``python worker.py MODE JSON``.

It builds its Budget as every worker of a deployment would (same configuration, same Redis URL), prints
``ready``, waits for ``go`` on stdin so that all workers start together, does its part, and prints one JSON line.

Modes:
  race        ``calls`` reserve / (sometimes extend) / settle of amounts drawn from ``seed``; reports what was
              accepted, settled and refused.
  thresholds  settles ``calls`` amounts on an alert budget; ``on_threshold`` appends one line per event to
              ``events`` (O_APPEND: lines from several processes never interleave).
  hold        reserves ``amount`` and holds it until killed.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from typing import Any

from costspan.budgets import Budget, BudgetExceededError, ThresholdEvent


def race(budget: Budget, options: dict[str, Any]) -> dict[str, Any]:
    rng = random.Random(options["seed"])
    settled: list[float] = []
    refusals: list[dict[str, float]] = []
    largest = 0.0
    for _ in range(options["calls"]):
        worst = round(rng.uniform(0.001, 0.03), 9)
        try:
            reservation = budget.reserve(None, worst)
        except BudgetExceededError as error:
            refusals.append({k: getattr(error, k) for k in ("spent", "reserved", "limit", "estimate")})
            continue
        largest = max(largest, worst)
        if rng.random() < 0.3:  # a stream that runs past its reservation
            extra = round(rng.uniform(0.0001, 0.005), 9)
            if budget.extend(reservation, extra):
                worst += extra
                largest = max(largest, worst)
        time.sleep(rng.uniform(0, 0.002))
        actual = rng.uniform(0.3, 1.0) * worst  # many digits: the rounding rule is exercised
        budget.settle(reservation, actual)
        settled.append(actual)
    return {"settled": settled, "refusals": refusals, "largest": largest}


def thresholds(budget: Budget, options: dict[str, Any]) -> dict[str, Any]:
    crossed: list[float] = []
    for _ in range(options["calls"]):
        crossed += budget.settle(budget.reserve(None, options["amount"]), options["amount"])
    return {"crossed": crossed}


def main() -> None:
    mode, options = sys.argv[1], json.loads(sys.argv[2])
    events = options.pop("events", None)
    budget = Budget(**options.pop("budget"), on_threshold=_appender(events) if events else None)
    if mode == "hold":
        budget.reserve(None, options["amount"])
        print("held", flush=True)
        time.sleep(600)
        return
    print("ready", flush=True)
    sys.stdin.readline()
    result = race(budget, options) if mode == "race" else thresholds(budget, options)
    print(json.dumps(result), flush=True)


def _appender(path: str) -> Any:
    def append(event: ThresholdEvent) -> None:
        line = json.dumps({"threshold": event.threshold, "spent": event.spent, "pid": os.getpid()}) + "\n"
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, line.encode())
        finally:
            os.close(descriptor)

    return append


if __name__ == "__main__":
    main()
