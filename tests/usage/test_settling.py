"""Settling keeps a call's record whatever fails: the counts and cost it could establish go on the span, flagged;
a call with no usable record is marked unusable and unpriced, never free; a malformed field is warned about once
per provider, model and field; and no cost that is not finite and non-negative reaches the span or the counter."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest
from usage.harness import TARGETS, TEXT, Exchange, Target

import costspan.settle
from costspan import _pipeline
from costspan.pricing import ResolvedPrice
from costspan.providers import openai as openai_provider
from costspan.settle import Settlement
from costspan.testing import Reply

if TYPE_CHECKING:
    pass

USAGE = {"prompt_tokens": 400, "completion_tokens": 20, "total_tokens": 420}


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("injected costspan fault")


def costspan_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() + str(r.exc_info[1]) for r in caplog.records if r.name == "costspan" and r.levelno >= 30]


def assert_no_cost(exchange: Exchange, attributes: dict[str, Any]) -> None:
    assert "gen_ai.usage.cost.amount" not in attributes
    assert attributes["costspan.cost.unpriced"] is True
    assert "costspan.cost" not in exchange.otel.metrics(), "the cost counter receives nothing"


def assert_unusable(settlement: Settlement) -> None:
    """What the budgets and the ledger receive: no cost, said so, never a free call."""
    assert settlement.unusable and settlement.unpriced and settlement.cost is None


def test_one_warning_per_provider_model_and_field(exchange: Exchange, caplog: pytest.LogCaptureFixture) -> None:
    chat = TARGETS["chat-json"]
    mini = Target("chat-mini", "openai", lambda client: client.chat.completions.create(model="gpt-4.1-mini",
                  messages=[{"role": "user", "content": "Hi"}]), False)  # fmt: skip
    for target, usage in [
        *[(chat, {"prompt_tokens": "Bearer sk-not-a-count", "completion_tokens": 5})] * 3,
        *[(chat, {"prompt_tokens": 5, "completion_tokens": -1})] * 2,
        (mini, {"prompt_tokens": None, "completion_tokens": 5}),
    ]:
        exchange.run(target, Reply(text=TEXT, usage=usage))

    warnings = costspan_warnings(caplog)
    assert len(warnings) == 3, warnings
    prompt, completion, other_model = warnings
    assert "'prompt_tokens' of openai model 'gpt-4.1'" in prompt and "a string" in prompt
    assert "'completion_tokens' of openai model 'gpt-4.1'" in completion and "negative" in completion
    assert "'prompt_tokens' of openai model 'gpt-4.1-mini'" in other_model and "missing or null" in other_model
    assert not any("sk-not-a-count" in warning for warning in warnings), "a field's value is never logged"


def test_pricing_failure_keeps_the_counts(
    exchange: Exchange, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(ResolvedPrice, "cost", _boom)

    attributes, _ = exchange.run(TARGETS["chat-json"], Reply(text=TEXT, usage=USAGE))

    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (400, 20)
    assert "costspan.usage.estimated" not in attributes and "costspan.usage.unusable" not in attributes
    assert_no_cost(exchange, attributes)
    assert [w for w in costspan_warnings(caplog) if "pricing a call" in w]


def test_stream_end_failure_keeps_the_usage_and_cost(exchange: Exchange, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, a failure reading what a stream left for its end lost the whole record."""
    monkeypatch.setattr(openai_provider, "_read_identity", _boom)

    attributes, _ = exchange.run(TARGETS["chat-stream"], Reply(text=TEXT, usage=USAGE))

    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (400, 20)
    assert attributes["gen_ai.usage.cost.amount"] > 0


def test_estimate_failure_keeps_what_was_read(
    exchange: Exchange, settlements: list[Settlement], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(costspan.settle, "estimate_prompt_tokens", _boom)

    attributes, _ = exchange.run(TARGETS["chat-json"], Reply(text=TEXT, usage={"completion_tokens": 20}))

    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (0, 20)
    assert attributes["costspan.usage.estimated"] is True
    assert attributes["costspan.usage.unusable"] is True
    assert_no_cost(exchange, attributes)
    assert_unusable(settlements[-1])


@pytest.mark.parametrize("name", ["chat-json", "messages-stream"])
def test_settling_failure_marks_the_counts_read_unusable(
    exchange: Exchange, settlements: list[Settlement], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The last resort: what was read, bounded, with no cost. Before, the span had no usage at all."""
    monkeypatch.setattr(_pipeline, "settle", _boom)
    usage = USAGE if name == "chat-json" else {"input_tokens": 400, "output_tokens": 20}

    attributes, _ = exchange.run(TARGETS[name], Reply(text=TEXT, usage=usage))

    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (400, 20)
    assert attributes["costspan.usage.unusable"] is True
    assert_no_cost(exchange, attributes)
    assert_unusable(settlements[-1])


def test_no_usable_record_is_unusable_never_free(exchange: Exchange, settlements: list[Settlement]) -> None:
    """Embedding token ids with an empty usage object: no count, and nothing to estimate one from."""
    target = Target(
        "embeddings-ids",
        "openai",
        lambda client: client.embeddings.create(model="text-embedding-3-small", input=[[101, 102, 103]]),
        False,
    )

    attributes, _ = exchange.run(target, Reply(usage={}))

    assert attributes["costspan.usage.estimated"] is True
    assert attributes["costspan.usage.unusable"] is True
    assert_no_cost(exchange, attributes)
    assert_unusable(settlements[-1])


def test_logging_names_no_value(caplog: pytest.LogCaptureFixture, exchange: Exchange) -> None:
    caplog.set_level(logging.DEBUG, logger="costspan")
    for _ in range(2):
        exchange.run(TARGETS["messages-json"], Reply(text=TEXT, usage={"input_tokens": "x-api-key: secret"}))

    logged = " ".join(r.getMessage() + str(r.exc_info[1] if r.exc_info else r.args) for r in caplog.records)
    assert "secret" not in logged
