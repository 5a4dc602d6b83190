"""examples/daily_summary.py: the calls it logs are in the ledger at the prices costspan charges, and the summary,
the summary by team, the budget lines and the alert line it prints say what the ledger holds."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

from costspan import Usage, cost_of
from examples.daily_summary import CALLS, DAILY_BUDGET_USD
from ledger_support import assert_report_lines, rows, shows


def test_daily_summary_prints_the_ledgers_numbers(run_example: Any, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    result = run_example("daily_summary.py", COSTSPAN_LEDGER=str(ledger), OTEL_TRACES_EXPORTER="none")

    assert result.stderr == ""
    written = rows(ledger)
    assert [(row["user_id"], json.loads(row["attributes"]), row["request_model"]) for row in written] == [
        (user, {"team": team}, model) for user, team, model, *_ in CALLS
    ]
    for row, (*_, model, input_tokens, output_tokens) in zip(written, CALLS, strict=True):
        price = cost_of("openai", model, Usage(input_tokens=input_tokens, output_tokens=output_tokens))
        assert price is not None and row["cost_usd"] == price.amount

    title = f"Daily Summary ({date.today().isoformat()})"
    total = sum(row["cost_usd"] for row in written)
    share = total / DAILY_BUDGET_USD
    by_model, by_team, alert = result.stdout.split("\n\n")
    *models, total_line, budget_line, warning = by_model.splitlines()
    assert models[:2] == [title, "=" * len(title)]
    assert_report_lines(models[2:], written, "request_model")
    assert shows(total_line.removeprefix("Total: "), total)
    budget = re.fullmatch(r"Budget: (\S+) of \$0\.05 \((\d+)%\)", budget_line)
    assert budget and shows(budget[1], total) and int(budget[2]) == round(share * 100)
    assert warning == f"Warning: {share:.0%} of the $0.05 budget spent"

    *teams, total_line = by_team.splitlines()
    team_title = f"Daily Summary by team ({date.today().isoformat()})"
    assert teams[:2] == [team_title, "=" * len(team_title)]
    assert_report_lines(teams[2:], [dict(row, team=json.loads(row["attributes"])["team"]) for row in written], "team")
    assert shows(total_line.removeprefix("Total: "), total)

    assert share >= 0.8, "the example logs enough to raise its alert"
    assert alert == f"ALERT: {share:.0%} of today's $0.05 LLM budget spent by {len(CALLS)} calls\n"
