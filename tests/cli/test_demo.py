"""``costspan demo`` as a user runs it: every call with its cost, then the report of the ledger they were written
to, whose numbers are the spans' numbers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from ledger_support import shows

CLI = str(Path(sys.executable).with_name("costspan"))


def test_demo_reports_from_its_ledger_what_the_spans_say() -> None:
    result = subprocess.run([CLI, "demo"], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    spans, report = result.stdout.split("The same calls, as `costspan report` prints them")
    report = report.partition("\nThe demo's ledger stays at ")[0]
    per_model: dict[str, list[float | None]] = defaultdict(list)
    for name, amount in re.findall(r"^\w+ (\S+) .*?  (?:\$(\d+\.\d+)|   unpriced)  user=", spans, re.MULTILINE):
        per_model[name].append(float(amount) if amount else None)
    spans_total = float(re.search(r"Total: \$(\d+\.\d+) over 13 calls", spans).group(1))
    # The call the budget refused was never sent: a span, and no ledger row.
    (refused,) = [line for line in spans.splitlines() if "[refused by a budget: nothing sent]" in line]
    assert refused.startswith("chat gpt-4.1 ") and "user=u-intern" in refused
    assert re.search(
        r"^  refused before sending: BudgetExceededError: budget 'interns-daily' for team='interns' "
        r"refused a call needing \$0\.\d+: \$0\.004400 spent",
        spans,
        re.MULTILINE,
    )
    assert sum(len(amounts) for amounts in per_model.values()) == 12
    lines = report.split("\n\n", 1)[1].strip().splitlines()
    assert re.fullmatch(r"Daily Summary \(\d{4}-\d{2}-\d{2}\)", lines[0])
    assert lines[1] == "=" * len(lines[0])
    reported = dict(line.split(": ", 1) for line in lines[2:-1])
    assert set(reported) == set(per_model)
    for model, amounts in per_model.items():
        count, _, cost = reported[model].partition(", ")
        assert count == f"{len(amounts)} request" + ("s" if len(amounts) > 1 else "")
        priced = [amount for amount in amounts if amount is not None]
        if priced:
            assert shows(cost, sum(priced), error=len(priced) * 0.5e-6), (model, cost, priced)  # printed to 1e-6
        else:
            assert cost == "unpriced"
    total = re.fullmatch(r"Total: (\S+) \(\+1 unpriced\)", lines[-1]).group(1)
    assert shows(total, spans_total, error=0.5e-6)


def test_the_demos_next_step_is_a_report_command_that_works() -> None:
    """The demo ends with the command to run next; run as printed (a shell parses it), it reads the calls the demo
    made, from a ledger that outlives the demo."""
    demo = subprocess.run([CLI, "demo"], capture_output=True, text=True, timeout=180, check=True).stdout
    command = demo.rstrip().splitlines()[-1].strip()
    assert command.startswith("costspan report --ledger ")

    path = f"{Path(CLI).parent}{os.pathsep}{os.environ['PATH']}"  # where pip put the costspan command
    shown = subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, timeout=180, env={**os.environ, "PATH": path}
    )
    assert shown.returncode == 0, shown.stderr
    by_user = dict(line.split(": ", 1) for line in shown.stdout.splitlines()[2:])
    assert set(by_user) == {"u-bedrock", "u-claude", "u-demo", "u-gemini", "u-intern", "Total"}
    # The demo's own calls, as the demo's own report showed them (a demo starts its ledger anew).
    assert by_user["Total"] == demo.split("The same calls")[1].split("Total: ")[1].splitlines()[0]
