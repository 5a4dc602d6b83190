"""A prices file given in code that cannot be used fails at ``instrument()``, naming the file, the line where the
parser gives one, the section, the model and the field."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import costspan
from costspan.pricing import MAX_PRICE_FILE_BYTES, Pricing
from costspan.usage import Usage

GOOD_ENTRY = "input = 3.0\noutput = 12.0\n"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        pytest.param("prices.toml", None, "cannot be read: No such file or directory", id="missing"),
        pytest.param(
            "prices.toml",
            '[models."my-finetune"]\ninput = 3.0\noutput 12.0\n',
            "not valid TOML: Expected '=' after a key in a key/value pair (at line 3, column 8)",
            id="TOML syntax",
        ),
        pytest.param(
            "prices.json",
            '{"models": {\n  "my-finetune": {"input": 3.0 "output": 12.0}\n}}',
            "not valid JSON: Expecting ',' delimiter: line 2 column 32 (char 44)",
            id="JSON syntax",
        ),
        pytest.param(
            "prices.toml",
            '[models."my-finetune"]\ninput = "cheap"\noutput = 12.0\n',
            "model 'my-finetune': input = 'cheap': expected a number of USD per million tokens, finite and not "
            "negative",
            id="bad value",
        ),
        pytest.param(
            "prices.toml",
            '[models."my-finetune"]\noutput = 12.0\nper_request = -0.01\ninput = 1.0\n',
            "model 'my-finetune': per_request = -0.01: expected a number of USD per call, finite and not negative",
            id="negative fee",
        ),
        pytest.param(
            "prices.toml",
            '[models."my-finetune"]\ninput = 3.0\nouptut = 12.0\n',
            "model 'my-finetune': unknown field 'ouptut' (did you mean 'output'?); the fields are provider, input, "
            "output, cache_read, cache_write, cache_write_1h, per_request",
            id="unknown field",
        ),
        pytest.param(
            "prices.toml",
            '[models."my-finetune"]\ninput = 3.0\n',
            "model 'my-finetune': missing output: input and output prices are required",
            id="missing field",
        ),
        pytest.param(
            "prices.toml",
            f'[model."my-finetune"]\n{GOOD_ENTRY}',
            "unknown section 'model' (did you mean 'models'?); the sections are aliases, models, discounts",
            id="unknown section",
        ),
        pytest.param(
            "prices.toml",
            f'[models."my-finetune"]\nprovider = "opnai"\n{GOOD_ENTRY}',
            "model 'my-finetune': unknown provider 'opnai' (did you mean 'openai'?): expected a gen_ai.provider.name "
            "such as 'openai', 'azure.ai.openai', 'anthropic', 'aws.bedrock' or 'gcp.vertex_ai', or a genai-prices "
            "provider id",
            id="unknown provider",
        ),
        pytest.param(
            "prices.toml",
            '[aliases]\n"prod-gpt" = 4.1\n',
            "alias 'prod-gpt' = 4.1: expected the name of the model it is priced as",
            id="alias",
        ),
        pytest.param(
            "prices.toml",
            '[discounts]\nopenai = "10%"\n',
            "discount 'openai' = '10%': expected a multiplier such as 0.9, finite and not negative",
            id="discount",
        ),
        pytest.param(
            "prices.json",
            '{"models": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "nested too deeply (a price file needs three levels: section, model, field)",
            id="deeply nested JSON",
        ),
        pytest.param(
            "prices.toml",
            "[discounts]\nopenai = " + "[" * 100_000 + "]" * 100_000,
            "nested too deeply (a price file needs three levels: section, model, field)",
            id="deeply nested TOML",
        ),
        pytest.param(
            "prices.json",
            '{"models": {"my-finetune": ' + "[" * 500 + "]" * 500 + "}}",
            "model 'my-finetune': expected a table with input and output prices, got [[[[[[[...]]]]]]]",
            id="nested value",
        ),
        pytest.param(
            "prices.toml",
            "#" * (MAX_PRICE_FILE_BYTES + 1),
            "larger than 4 MiB: not a price file",
            id="too large",
        ),
        pytest.param(
            "prices.json",
            '["gpt-4.1"]',
            "expected a table with the sections aliases, models, discounts, got ['gpt-4.1']",
            id="not a table",
        ),
    ],
)
def test_a_bad_price_file_fails_at_instrument(
    instrument: Callable[..., None], tmp_path: Path, name: str, text: str | None, message: str
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text, encoding="utf-8")

    with pytest.raises(ValueError) as raised:
        instrument(prices=str(path))

    assert str(raised.value) == f"costspan: option prices: price file '{path}': {message}"
    assert not costspan.CostspanInstrumentor().is_instrumented_by_opentelemetry


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_price_path_that_is_not_a_regular_file_fails_at_once(
    instrument: Callable[..., None], tmp_path: Path, kind: str
) -> None:
    """Defect 3 of issue 18: a FIFO at the prices path hung startup (waiting for a writer that never comes)."""
    path = tmp_path / "prices.toml"
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    raised: list[BaseException] = []

    def start() -> None:
        try:
            instrument(prices=str(path))
        except BaseException as error:
            raised.append(error)

    starter = threading.Thread(target=start, daemon=True)
    starter.start()
    starter.join(30)
    if starter.is_alive() and kind == "fifo":
        with path.open("w"):  # a writer, so that the stuck open returns
            pass
    assert not starter.is_alive(), "instrument() hung on the prices path"
    assert [str(error) for error in raised] == [f"costspan: option prices: price file '{path}': not a regular file"]


def test_a_relative_path_is_named_in_full(
    instrument: Callable[..., None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    with pytest.raises(ValueError, match=f"price file '{tmp_path / 'prices.toml'}': cannot be read"):
        instrument(prices="prices.toml")


def test_set_price_names_an_unknown_provider() -> None:
    with pytest.raises(ValueError) as raised:
        Pricing().set_price("my-finetune", input=3.0, output=12.0, provider="antropic")

    assert str(raised.value).startswith("model 'my-finetune': unknown provider 'antropic' (did you mean 'anthropic'?)")


@pytest.mark.parametrize("provider", ["openai", "azure.ai.openai", "aws.bedrock", "gcp.vertex_ai", "azure", "mistral"])
def test_known_providers_are_accepted(provider: str) -> None:
    """Names a call's span carries, and genai-prices provider ids (the ledger prices other instrumentations'
    spans too)."""
    pricing = Pricing({"models": {"my-finetune": {"provider": provider, "input": 3.0, "output": 12.0}}})

    cost = pricing.cost(provider, "my-finetune", Usage(input_tokens=1_000_000, output_tokens=0))
    assert cost is not None
    assert cost.amount == pytest.approx(3.0)
