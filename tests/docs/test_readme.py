"""Every Python block in README.md runs, as its reader would run it, against the local provider server.

Each block runs on its own in a fresh interpreter, with the SDKs' standard variables (``OPENAI_BASE_URL``,
``OPENAI_API_KEY``, ``ANTHROPIC_*``) pointing at :class:`costspan.testing.ProviderServer` and spans printed by
the console exporter. A block that imports a provider SDK must give each call a span with its cost, from the
provider's own counts; costspan must log nothing. Blocks are found anew on every run, so new ones are tested
without a change here. A block that is deliberately not runnable has ``<!-- not-tested: why -->`` on the line
before its opening fence.
"""

from __future__ import annotations

import ast
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from costspan.testing import ProviderServer
from support import API_KEY, child_environment, console_spans

README = Path(__file__).parents[2] / "README.md"
NOT_TESTED = re.compile(r"<!--\s*not-tested:\s*\S.*-->")
SDKS = frozenset({"openai", "anthropic"})
LEDGER_NOTICE = re.compile(r"costspan: recording LLM calls in the ledger at (\S+) ")


@dataclass(frozen=True)
class Block:
    line: int
    code: str

    def imports_an_sdk(self) -> bool:
        for node in ast.walk(ast.parse(self.code)):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(name.partition(".")[0] in SDKS for name in names):
                return True
        return False


def python_blocks(text: str) -> list[Block]:
    """The ```python blocks of a Markdown text, but those marked not-tested."""
    lines, blocks, index = text.splitlines(), [], 0
    while index < len(lines):
        if lines[index].strip() == "```python":
            end = lines.index("```", index + 1)
            if not (index > 0 and NOT_TESTED.fullmatch(lines[index - 1].strip())):
                blocks.append(Block(index + 1, "\n".join(lines[index + 1 : end]) + "\n"))
            index = end
        index += 1
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_blocks_that_call_a_provider() -> None:
    assert sum(block.imports_an_sdk() for block in BLOCKS) >= 2


@pytest.mark.parametrize("block", BLOCKS, ids=[f"README.md:{block.line}" for block in BLOCKS])
def test_readme_block_runs(block: Block, server: ProviderServer, tmp_path: Path) -> None:
    script = tmp_path / "readme_block.py"
    script.write_text(block.code, encoding="utf-8")
    environ = child_environment(
        OPENAI_BASE_URL=server.openai_base_url,
        OPENAI_API_KEY=API_KEY,
        ANTHROPIC_BASE_URL=server.anthropic_base_url,
        ANTHROPIC_API_KEY=API_KEY,
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        XDG_DATA_HOME=str(tmp_path / "data"),  # the block's own default ledger
    )
    result = subprocess.run(
        [sys.executable, str(script)], env=environ, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if "costspan" in line]
    ledger = _ledger_announced(said)
    if block.imports_an_sdk():
        calls = [span for span in console_spans(result.stdout) if "gen_ai.usage.input_tokens" in span["attributes"]]
        assert calls, f"no span with usage from the block at README.md:{block.line}"
        for span in calls:
            assert span["attributes"]["gen_ai.usage.cost.amount"] > 0, span["name"]
            assert "costspan.usage.estimated" not in span["attributes"], span["name"]
        assert len(calls) == len(server.requests)
        if ledger is not None:  # the embedded default kept every call, at the span's cost
            with sqlite3.connect(ledger) as database:
                rows = database.execute("SELECT cost_usd FROM calls").fetchall()
            costs = sorted(span["attributes"]["gen_ai.usage.cost.amount"] for span in calls)
            assert sorted(cost for (cost,) in rows) == pytest.approx(costs, rel=1e-12)


def _ledger_announced(said: list[str]) -> Path | None:
    """The ledger's path, from the one line costspan may print (with no SDK configured, it keeps a ledger and says
    where); anything else costspan says is a failure."""
    announced = [line for line in said if LEDGER_NOTICE.search(line)]
    assert said == announced and len(announced) <= 1, said
    return Path(LEDGER_NOTICE.search(announced[0]).group(1)) if announced else None
