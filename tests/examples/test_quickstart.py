"""examples/quickstart.py as a newcomer without an API key runs it: the local provider server in place of the
APIs, a plain call and an inline stream per provider, and each call's cost as its span and its ledger row say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from ledger_support import rows
from support import console_spans

COST_LINE = re.compile(r"^-> (\w+) ([\w.-]+)(, streamed)?: (\d+) input \+ (\d+) output tokens = \$(\d+\.\d{6})", re.M)


def test_quickstart_prints_what_each_call_cost(run_example: Any, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    result = run_example(
        "quickstart.py",
        COSTSPAN_LEDGER=str(ledger),
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )

    assert result.stderr == ""
    assert result.stdout.startswith("No API key set: calling costspan's local provider server at http://127.0.0.1:")
    printed = COST_LINE.findall(result.stdout)
    assert [(provider, model, bool(streamed)) for provider, model, streamed, *_ in printed] == [
        ("openai", "gpt-4.1-mini", False),
        ("openai", "gpt-4.1-mini", True),
        ("anthropic", "claude-haiku-4-5", False),
        ("anthropic", "claude-haiku-4-5", True),
    ]
    spans = {span["context"]["span_id"]: span["attributes"] for span in console_spans(result.stdout)}
    written = rows(ledger)
    assert len(written) == len(spans) == 4
    for row, (provider, model, streamed, input_tokens, output_tokens, cost) in zip(written, printed, strict=True):
        span = spans[f"0x{row['span_id']}"]
        assert (span["gen_ai.provider.name"], span["gen_ai.request.model"]) == (provider, model)
        assert span["gen_ai.request.stream"] is bool(streamed)
        assert (int(input_tokens), int(output_tokens)) == (row["input_tokens"], row["output_tokens"])
        assert (row["input_tokens"], row["output_tokens"]) == (
            span["gen_ai.usage.input_tokens"],
            span["gen_ai.usage.output_tokens"],
        )
        assert row["cost_usd"] == span["gen_ai.usage.cost.amount"] > 0
        assert cost == f"{row['cost_usd']:.6f}"
    assert "These calls went to the quickstart's own ledger" not in result.stdout  # it went to COSTSPAN_LEDGER's


def test_quickstart_never_writes_the_users_ledger_and_its_report_command_works(
    run_example: Any, tmp_path: Path
) -> None:
    """Without COSTSPAN_LEDGER, the local server's calls go to the quickstart's own ledger, never the user's
    default one, and the report command it suggests reads them."""
    result = run_example("quickstart.py", OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none")

    assert result.stderr == ""
    assert len(COST_LINE.findall(result.stdout)) == 4
    assert "These calls went to the quickstart's own ledger" in result.stdout
    assert not (tmp_path / "data").exists()
    command = re.search(r"^`(costspan report --ledger [^`]+)` prints today's spend", result.stdout, re.M).group(1)
    cli = Path(sys.executable).parent
    shown = subprocess.run(
        ["sh", "-c", command],
        env={**os.environ, "PATH": f"{cli}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    models = {line.split(": ")[0]: line.split(": ")[1] for line in shown.stdout.splitlines()[2:-1]}
    assert {model: counted.split(",")[0] for model, counted in models.items()} == {
        "claude-haiku-4-5": "2 requests",
        "gpt-4.1-mini": "2 requests",
    }
