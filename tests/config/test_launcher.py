"""Under ``opentelemetry-instrument``, configuration comes from ``COSTSPAN_*`` variables: an unusable one is logged
with what is wrong and the application's calls are still instrumented, with the defaults in its place."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from config.test_environment import READ

from costspan.testing import ProviderServer, Reply
from support import API_KEY, child_environment, console_spans

CALL = """
import openai
client = openai.OpenAI(base_url={base_url!r}, api_key={api_key!r}, max_retries=0)
client.chat.completions.create(model="gpt-4.1-mini", messages=[{{"role": "user", "content": "hi"}}])
"""
# gpt-4.1-mini at genai-prices' 0.4 / 1.6 USD per million tokens.
USAGE = {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}
DEFAULT_COST = 1000 * 0.4e-6 + 100 * 1.6e-6
DEFAULT_PRICES = "; using the default (genai-prices' prices, without overrides)"

PRICE_FILES = {
    "missing": (None, "cannot be read: No such file or directory"),
    "unparsable": (
        '[models."gpt-4.1-mini"]\ninput = 0.1\noutput 0.2\n',
        "not valid TOML: Expected '=' after a key in a key/value pair (at line 3, column 8)",
    ),
    "bad value": (
        '[models."gpt-4.1-mini"]\ninput = 0.1\noutput = "free"\n',
        "model 'gpt-4.1-mini': output = 'free': expected a number of USD per million tokens, finite and not negative",
    ),
    "deeply nested": (
        "[discounts]\nopenai = " + "[" * 100_000 + "]" * 100_000,
        "nested too deeply (a price file needs three levels: section, model, field)",
    ),
    "unknown provider": (
        '[models."gpt-4.1-mini"]\nprovider = "open-ai"\ninput = 0.1\noutput = 0.2\n',
        "model 'gpt-4.1-mini': unknown provider 'open-ai' (did you mean 'openai'?): expected a gen_ai.provider.name "
        "such as 'openai', 'azure.ai.openai', 'anthropic', 'aws.bedrock' or 'gcp.vertex_ai', or a genai-prices "
        "provider id",
    ),
}


def _launch(server: ProviderServer, cwd: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    server.push(Reply(usage=USAGE))
    launcher = Path(sys.executable).with_name("opentelemetry-instrument")
    code = CALL.format(base_url=server.openai_base_url, api_key=API_KEY)
    environ = child_environment(
        OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none", **variables
    )
    return subprocess.run(
        [str(launcher), sys.executable, "-c", code],
        env=environ,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def _cost_of_the_call(stdout: str) -> float:
    (span,) = [span for span in console_spans(stdout) if "gen_ai.usage.cost.amount" in span["attributes"]]
    assert span["name"] == "chat gpt-4.1-mini"
    assert span["attributes"]["gen_ai.usage.input_tokens"] == 1000
    return float(span["attributes"]["gen_ai.usage.cost.amount"])


@pytest.mark.parametrize("case", list(PRICE_FILES))
def test_an_unusable_price_file_is_logged_and_the_calls_are_instrumented(
    server: ProviderServer, tmp_path: Path, case: str
) -> None:
    text, problem = PRICE_FILES[case]
    path = tmp_path / "prices.toml"
    if text is not None:
        path.write_text(text, encoding="utf-8")

    result = _launch(server, tmp_path, COSTSPAN_PRICES="prices.toml")

    assert result.stderr.splitlines() == [f"costspan: COSTSPAN_PRICES: price file '{path}': {problem}{DEFAULT_PRICES}"]
    assert _cost_of_the_call(result.stdout) == pytest.approx(DEFAULT_COST)


def test_a_usable_price_file_applies(server: ProviderServer, tmp_path: Path) -> None:
    (tmp_path / "prices.toml").write_text('[models."gpt-4.1-mini"]\ninput = 1.0\noutput = 2.0\n', encoding="utf-8")

    result = _launch(server, tmp_path, COSTSPAN_PRICES="prices.toml")

    assert result.stderr == ""
    assert _cost_of_the_call(result.stdout) == pytest.approx(1000 * 1e-6 + 100 * 2e-6)


def test_unusable_and_unknown_variables_are_logged_and_the_calls_are_instrumented(
    server: ProviderServer, tmp_path: Path
) -> None:
    result = _launch(
        server,
        tmp_path,
        COSTSPAN_STREAM_USAGE="banana",
        COSTSPAN_MODEL_ALIASES="garbage",
        COSTSPAN_METRIC_ATTRIBUTE="user.id",
    )

    assert sorted(result.stderr.splitlines()) == [
        "costspan: COSTSPAN_MODEL_ALIASES: got 'garbage', expected name=model pairs separated by commas, such as "
        "prod-gpt=gpt-4.1; using the default (no aliases)",
        "costspan: COSTSPAN_STREAM_USAGE: got 'banana', expected true or false (or 1/0, yes/no, on/off); using the "
        "default (true)",
        "costspan: unknown environment variable COSTSPAN_METRIC_ATTRIBUTE (did you mean "
        f"'COSTSPAN_METRIC_ATTRIBUTES'?), ignored; costspan reads {READ}",
    ]
    assert _cost_of_the_call(result.stdout) == pytest.approx(DEFAULT_COST)
