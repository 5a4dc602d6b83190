"""examples/launcher: an application with no costspan in its code, run by ``opentelemetry-instrument`` with
``COSTSPAN_*`` variables against the local provider server (offline.py): every call has a span and a ledger row
with the same cost, the price file's discount applies, and the summary printed is the ledger's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from costspan import Usage, cost_of
from ledger_support import assert_report_lines, rows, shows
from support import console_spans


def test_the_launcher_example(run_example: Any, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    result = run_example(
        "launcher/offline.py",
        COSTSPAN_LEDGER=str(ledger),
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )

    assert result.stderr == ""
    spans = {span["context"]["span_id"]: span["attributes"] for span in console_spans(result.stdout)}
    written = rows(ledger)
    assert sorted((row["provider"], row["request_model"]) for row in written) == [
        ("anthropic", "claude-haiku-4-5"),
        ("openai", "gpt-4.1-mini"),
        ("openai", "gpt-4.1-mini"),
    ]
    assert len(spans) == len(written)
    for row in written:
        span = spans[f"0x{row['span_id']}"]
        assert row["cost_usd"] == span["gen_ai.usage.cost.amount"] > 0
        listed = cost_of(
            row["provider"],
            row["request_model"],
            Usage(input_tokens=row["input_tokens"], output_tokens=row["output_tokens"]),
        )
        assert listed is not None
        discount = 0.8 if row["provider"] == "openai" else 1.0  # examples/launcher/prices.toml
        assert row["cost_usd"] == pytest.approx(listed.amount * discount, rel=1e-12)
        assert ("(discount 0.8)" in span["costspan.price.source"]) is (discount != 1.0)

    summary = result.stdout[result.stdout.index("\nDaily Summary (") + 1 :].splitlines()
    assert summary[1] == "=" * len(summary[0])
    assert_report_lines(summary[2:-1], written, "request_model")
    assert shows(summary[-1].removeprefix("Total: "), sum(row["cost_usd"] for row in written))
