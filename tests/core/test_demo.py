"""``costspan demo`` runs end to end with no API key and reports what the spans say."""

from __future__ import annotations

import re

from click.testing import CliRunner

from costspan.cli import main


def test_demo_prints_every_call_with_its_cost() -> None:
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert sum(line.startswith(("chat ", "embeddings ")) for line in lines) == 13
    # A Gemini stream (thinking counted as output, cached content read) and a Bedrock Converse call.
    assert any(
        re.match(r"chat gemini-2\.5-flash +in +3000 \(cache read +2048.*out +1600 \(reasoning +1200\)", line)
        for line in lines
    )
    assert any(line.startswith("chat us.anthropic.claude-haiku-4-5") and "user=u-bedrock" in line for line in lines)
    assert any("claude-sonnet-4-6" in line and "write  6000" in line for line in lines)
    assert any("[unpriced: no known price]" in line for line in lines)
    assert [line.split()[1] for line in lines if "[estimated, stream stopped early]" in line] == ["gpt-4o-mini"]
    # The streams it reads to the end (an inline for over create(stream=True), a Claude stream helper) report
    # the provider's exact usage.
    assert any(re.match(r"chat gpt-4\.1 +in +1850 \(cache read +1536.*out +240 .*\$0\.003316", line) for line in lines)
    assert sum(bool(re.match(r"chat claude-sonnet-4-6 .*out +350 .*", line)) for line in lines) == 2
    # What makes up a cost beyond tokens at list rates is said on its line: Claude's 3 web searches at $10 per
    # thousand, o4-mini at the flex tier's prices.
    (haiku,) = [line for line in lines if line.startswith("chat claude-haiku-4-5 ")]
    assert "$0.035400" in haiku and "[incl. $0.030000 web search and other request fees]" in haiku
    (o4,) = [line for line in lines if line.startswith("chat o4-mini ")]
    assert o4.endswith("[flex tier prices]")
    priced = [float(amount) for amount in re.findall(r"\$(\d+\.\d+)  user=", result.output)]
    total = float(re.search(r"Total: \$(\d+\.\d+) over 13 calls", result.output).group(1))
    assert abs(sum(priced) - total) < 1e-5
