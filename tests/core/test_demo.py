"""``costspan demo`` runs end to end with no API key and reports what the spans say."""

from __future__ import annotations

import re

from click.testing import CliRunner

from costspan.cli import main


def test_demo_prints_every_call_with_its_cost() -> None:
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert sum(line.startswith(("chat ", "embeddings ")) for line in lines) == 9
    assert any("claude-sonnet-4-6" in line and "write  6000" in line for line in lines)
    assert any("[unpriced: no known price]" in line for line in lines)
    assert any("[estimated, stream stopped early]" in line for line in lines)
    priced = [float(amount) for amount in re.findall(r"\$(\d+\.\d+)  user=", result.output)]
    total = float(re.search(r"Total: \$(\d+\.\d+) over 9 calls", result.output).group(1))
    assert abs(sum(priced) - total) < 1e-5
