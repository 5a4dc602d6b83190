"""``costspan prices`` and ``costspan estimate``, and ``costspan.estimate()`` behind the latter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import costspan
from costspan import Usage
from costspan.cli import main
from costspan.pricing import default_pricing

CLI = str(Path(sys.executable).with_name("costspan"))
MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Plan the migration " * 50}]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60)


def test_prices_shows_the_entry_source_rates_and_tiers() -> None:
    result = _run("prices", "gemini-2.5-pro", "--provider", "google")
    assert result.returncode == 0, result.stderr
    price = default_pricing().resolve("google", "gemini-2.5-pro")
    lines = result.stdout.splitlines()
    assert lines[0] == f"gemini-2.5-pro on google: price entry {price.model!r}, {price.source}"
    assert lines[1] == "Prices: genai-prices (no price file: --prices FILE or COSTSPAN_PRICES adds one)"
    assert lines[2] == "USD per million tokens:"
    assert f"  input            {price.rates.input * 1e6:g}" in lines
    assert f"  cache read       {price.rates.cache_read * 1e6:g}" in lines
    ((start, tier),) = price.tiers
    assert f"Above {start:,} input tokens: input {tier.input * 1e6:g}, output {tier.output * 1e6:g}" in result.stdout


def test_prices_infers_the_provider_and_shows_service_tiers() -> None:
    result = CliRunner().invoke(main, ["prices", "gpt-4.1"])
    assert result.exit_code == 0, result.output
    batch = default_pricing().resolve("openai", "gpt-4.1", "batch")
    assert result.output.startswith("gpt-4.1 on openai: price entry 'gpt-4.1', genai-prices ")
    assert (
        f"Service tier batch: input {batch.rates.input * 1e6:g}, output {batch.rates.output * 1e6:g}," in result.output
    )


def test_prices_of_an_unknown_model_is_a_one_line_error() -> None:
    result = CliRunner().invoke(main, ["prices", "no-such-model-x"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: no price known for 'no-such-model-x' on 'unknown': its calls are reported unpriced "
        "(Prices: genai-prices (no price file: --prices FILE or COSTSPAN_PRICES adds one))\n"
    )


def test_estimate_of_a_messages_file(tmp_path: Path) -> None:
    file = tmp_path / "messages.json"
    file.write_text(json.dumps(MESSAGES))
    result = _run("estimate", "--model", "gpt-4.1", "--messages", str(file), "--max-output-tokens", "800")
    assert result.returncode == 0, result.stderr
    expected = costspan.estimate("gpt-4.1", MESSAGES, max_output_tokens=800)
    lines = result.stdout.splitlines()
    assert lines[0] == f"Model: gpt-4.1 on openai, priced as 'gpt-4.1' ({expected.price_source})"
    assert lines[1] == "Prices: genai-prices (no price file: --prices FILE or COSTSPAN_PRICES adds one)"
    assert lines[2].startswith(f"Input tokens: {expected.input_tokens:,} (estimated: ")
    assert lines[3:] == [
        "Max output tokens: 800",
        f"Input cost: ${expected.input_cost:.6f}",
        f"Worst-case cost: ${expected.worst_case_cost:.6f}",
    ]


def test_estimate_of_an_unknown_model_says_unpriced() -> None:
    result = CliRunner().invoke(main, ["estimate", "--model", "no-such-model-x", "--prompt", "hello"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "Model: no-such-model-x on unknown: no known price, so the cost is unpriced"
    assert "$" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "gpt-4.1"], "give the call's input as --prompt TEXT or --messages FILE.json (one of them)"),
        (["--model", "gpt-4.1", "--messages", "/no/such.json"], "--messages /no/such.json: No such file or directory"),
        (
            ["--model", "gpt-4.1", "--prompt", "x", "--max-output-tokens", "-1"],
            "--max-output-tokens -1: expected a non-negative number of tokens",
        ),
    ],
)
def test_estimate_bad_input(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["estimate", *args])
    assert result.exit_code == 1
    assert result.output == f"Error: {message}\n"


PRICES = """
[models."my-finetune"]
provider = "openai"
input = 3.0
output = 12.0
[discounts]
openai = 0.5
"""


@pytest.fixture
def price_file(tmp_path: Path) -> Path:
    path = tmp_path / "prices.toml"
    path.write_text(PRICES)
    return path


@pytest.mark.parametrize("given", ["--prices", "COSTSPAN_PRICES"])
def test_prices_and_estimate_use_the_applications_price_file(price_file: Path, given: str) -> None:
    """Both commands charge what the application would: the file's custom model and its discount."""
    args, env, source = (["--prices", str(price_file)], {}, f"--prices {price_file}")
    if given == "COSTSPAN_PRICES":
        args, env, source = [], {"COSTSPAN_PRICES": str(price_file)}, f"COSTSPAN_PRICES={price_file}"
    runner = CliRunner(env=env)
    custom = runner.invoke(main, ["prices", "my-finetune", *args])
    listed = runner.invoke(main, ["prices", "gpt-4.1", *args])
    estimated = runner.invoke(main, ["estimate", "--model", "gpt-4.1", "--prompt", "hi", *args])

    used = f"Prices: genai-prices with overrides from {source}"
    assert custom.exit_code == 0, custom.output
    assert custom.output.startswith("my-finetune on openai: price entry 'my-finetune', ")
    assert custom.output.splitlines()[1] == used
    assert "  input            1.5" in custom.output.splitlines()  # $3 per million, half off
    list_price = default_pricing().resolve("openai", "gpt-4.1")
    assert f"  input            {list_price.rates.input * 1e6 * 0.5:g}" in listed.output.splitlines()
    assert used in estimated.output.splitlines()
    tokens = costspan.estimate("gpt-4.1", "hi").input_tokens
    assert f"Input cost: ${tokens * list_price.rates.input * 0.5:.6f}" in estimated.output


def test_an_unusable_price_file_is_a_one_line_error_naming_its_source(tmp_path: Path) -> None:
    bad = tmp_path / "prices.toml"
    bad.write_text("[models.x]\nprovider = 'openai'\ninput = 'cheap'\n")
    by_flag = CliRunner().invoke(main, ["prices", "gpt-4.1", "--prices", str(bad)])
    by_env = CliRunner(env={"COSTSPAN_PRICES": str(bad)}).invoke(main, ["estimate", "--model", "x", "--prompt", "y"])
    assert by_flag.exit_code == by_env.exit_code == 1
    assert by_flag.output.startswith(f"Error: --prices {bad}: price file ")
    assert by_env.output.startswith(f"Error: COSTSPAN_PRICES={bad}: price file ")
    assert "Traceback" not in by_flag.output + by_env.output


def test_estimate_api_prices_input_and_the_worst_case() -> None:
    result = costspan.estimate("claude-sonnet-4-6", MESSAGES, max_output_tokens=1000)
    price = default_pricing().resolve("anthropic", "claude-sonnet-4-6")
    assert (result.provider, result.priced, result.price_model) == ("anthropic", True, "claude-sonnet-4-6")
    assert result.input_tokens > 100
    assert result.input_cost == price.cost(Usage(input_tokens=result.input_tokens)).amount
    assert result.worst_case_cost == pytest.approx(result.input_cost + 1000 * price.rates.output)
    assert costspan.estimate("gpt-4.1", "hi").worst_case_cost is None  # no output limit, no worst case


def test_estimate_api_of_an_unknown_model_is_unpriced_never_zero() -> None:
    result = costspan.estimate("no-such-model-x", "hi", max_output_tokens=10)
    assert (result.priced, result.input_cost, result.worst_case_cost, result.price_model) == (False, None, None, None)


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("gpt-4.1-mini", "openai"),
        ("o4-mini", "openai"),
        ("claude-haiku-4-5", "anthropic"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "aws.bedrock"),
        ("claude-sonnet-4-5@20250929", "gcp.vertex_ai"),
    ],
)
def test_estimate_api_infers_the_provider(model: str, provider: str) -> None:
    result = costspan.estimate(model, "hi", max_output_tokens=10)
    assert (result.provider, result.priced) == (provider, True)
