"""Options from ``COSTSPAN_*`` variables: an unusable value, or an unknown variable, is logged once with the
variable, the value and what is accepted, and the default applies."""

from __future__ import annotations

import logging
from dataclasses import fields
from pathlib import Path

import pytest

from costspan.config import Options

DEFAULTS = Options()
# Every variable costspan reads, as its warning lists them.
READ = ", ".join(sorted(f"COSTSPAN_{f.name.upper()}" for f in fields(Options) if f.metadata["costspan"].parse))


def _records(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(record.levelno, record.getMessage()) for record in caplog.records if record.name == "costspan"]


def test_every_variable_is_read() -> None:
    options = Options.load(
        {},
        {
            "COSTSPAN_METRIC_ATTRIBUTES": "user.id, team",
            "COSTSPAN_MODEL_ALIASES": "prod-gpt=gpt-4.1, other = gpt-4.1-mini",
            "COSTSPAN_STREAM_USAGE": "Off",
            "COSTSPAN_DEFAULT_MAX_OUTPUT_TOKENS": "8192",
        },
    )

    assert options.metric_attributes == ("user.id", "team")
    assert options.model_aliases == {"prod-gpt": "gpt-4.1", "other": "gpt-4.1-mini"}
    assert options.stream_usage is False
    assert options.default_max_output_tokens == 8192


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "COSTSPAN_STREAM_USAGE",
            "banana",
            "costspan: COSTSPAN_STREAM_USAGE: got 'banana', expected true or false (or 1/0, yes/no, on/off); "
            "using the default (true)",
        ),
        (
            "COSTSPAN_MODEL_ALIASES",
            "garbage",
            "costspan: COSTSPAN_MODEL_ALIASES: got 'garbage', expected name=model pairs separated by commas, such as "
            "prod-gpt=gpt-4.1; using the default (no aliases)",
        ),
        (
            "COSTSPAN_MODEL_ALIASES",
            "prod-gpt=gpt-4.1,=gpt-4.1-mini",
            "costspan: COSTSPAN_MODEL_ALIASES: got 'prod-gpt=gpt-4.1,=gpt-4.1-mini', expected name=model pairs "
            "separated by commas, such as prod-gpt=gpt-4.1 ('=gpt-4.1-mini' is not one); using the default "
            "(no aliases)",
        ),
        (
            "COSTSPAN_DEFAULT_MAX_OUTPUT_TOKENS",
            "lots",
            "costspan: COSTSPAN_DEFAULT_MAX_OUTPUT_TOKENS: got 'lots', expected a positive whole number of tokens; "
            "using the default (4096)",
        ),
    ],
    ids=["stream_usage", "model_aliases", "model_aliases half", "default_max_output_tokens"],
)
def test_an_unusable_value_is_warned_once_and_the_default_applies(
    caplog: pytest.LogCaptureFixture, variable: str, value: str, message: str
) -> None:
    options = Options.load({}, {variable: value})

    assert _records(caplog) == [(logging.WARNING, message)]
    assert options == DEFAULTS


def test_an_unknown_variable_is_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    options = Options.load({}, {"COSTSPAN_STREAM_USAGES": "false"})

    assert _records(caplog) == [
        (
            logging.WARNING,
            "costspan: unknown environment variable COSTSPAN_STREAM_USAGES (did you mean 'COSTSPAN_STREAM_USAGE'?), "
            f"ignored; costspan reads {READ}",
        )
    ]
    assert options.stream_usage is True


def test_an_empty_variable_is_unset(caplog: pytest.LogCaptureFixture) -> None:
    options = Options.load({}, {"COSTSPAN_STREAM_USAGE": "", "COSTSPAN_PRICES": " "})

    assert _records(caplog) == []
    assert options == DEFAULTS


def test_an_unusable_price_file_is_one_error(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    """The price file cases themselves are in test_price_files.py; here: from the environment, one error, the
    default prices."""
    path = tmp_path / "prices.toml"
    path.write_text('[models."my-finetune"]\ninput = 3.0\noutput 12.0\n', encoding="utf-8")

    options = Options.load({}, {"COSTSPAN_PRICES": str(path)})

    assert _records(caplog) == [
        (
            logging.ERROR,
            f"costspan: COSTSPAN_PRICES: price file '{path}': not valid TOML: Expected '=' after a key in a "
            "key/value pair (at line 3, column 8); using the default (genai-prices' prices, without overrides)",
        )
    ]
    assert options.prices is None


@pytest.mark.parametrize("value", ["off", "OFF", "none", "false", "0", "no"])
def test_the_ledgers_off_switch_in_its_spellings(caplog: pytest.LogCaptureFixture, value: str) -> None:
    assert Options.load({}, {"COSTSPAN_LEDGER": value}).ledger is False
    assert _records(caplog) == []


@pytest.mark.parametrize("value", ["of", "disable", "disabled", "ledger"])
def test_a_misspelt_ledger_switch_is_an_error_naming_the_valid_values(
    caplog: pytest.LogCaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """A bare word is no file path anyone means: it is a switch spelt wrong, never a file of that name."""
    monkeypatch.chdir(tmp_path)
    options = Options.load({}, {"COSTSPAN_LEDGER": value})

    ((level, message),) = _records(caplog)
    assert level == logging.ERROR
    assert message.startswith(f"costspan: COSTSPAN_LEDGER: got {value!r}, which is neither a switch nor a file path")
    assert "0, false, no, none, off (no ledger)" in message
    assert f"such as ./{value}.db" in message
    assert options.ledger is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["of", "off", "none", "false", "0", "disable"])
def test_a_switch_word_given_as_ledger_in_code_is_an_error_naming_the_python_values(value: str) -> None:
    with pytest.raises(ValueError, match=r"expected True \(the default path\) or False \(no ledger\)") as raised:
        Options.load({"ledger": value}, {})
    assert str(raised.value).startswith(f"costspan: option ledger: got {value!r}")
    assert "COSTSPAN_" not in str(raised.value) and "--" not in str(raised.value)
