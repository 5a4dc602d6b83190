"""Issue 11's findings, one test each: a malformed usage record from a provider or a compatible server never
costs a call its record, and never puts an absurd count or cost on the span or the cost counter."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pytest
from providers import ANTHROPIC_INPUT, ANTHROPIC_STREAM_USAGE
from usage.harness import MESSAGES, TARGETS, TEXT, Target

from costspan.settle import Settlement
from costspan.testing import Reply

if TYPE_CHECKING:
    from usage.harness import Exchange


def assert_counted(attributes: dict[str, Any], settlement: Settlement) -> None:
    """The call has counts and a cost, marked estimated: never free, never unpriced."""
    assert attributes["gen_ai.usage.input_tokens"] > 0
    assert attributes["gen_ai.usage.output_tokens"] > 0
    assert attributes["costspan.usage.estimated"] is True
    assert attributes["gen_ai.usage.cost.amount"] > 0
    assert "costspan.cost.unpriced" not in attributes
    assert settlement.amount == attributes["gen_ai.usage.cost.amount"]
    assert not settlement.unpriced and settlement.usage is not None and settlement.usage.estimated


OPENAI_CASES = {
    "null fields": {"prompt_tokens": None, "completion_tokens": None, "total_tokens": None},
    "empty usage": {},
    "string fields": {"prompt_tokens": "12", "completion_tokens": "ten", "total_tokens": "22"},
}
ANTHROPIC_CASES = {
    "null fields": {"input_tokens": None, "output_tokens": None},
    "empty usage": {},
    "string fields": {"input_tokens": "12", "output_tokens": "ten"},
}


@pytest.mark.parametrize("case", list(OPENAI_CASES))
@pytest.mark.parametrize("name", ["chat-json", "chat-stream", "messages-json", "messages-stream"])
def test_null_empty_or_string_usage_is_estimated_and_costed(
    exchange: Exchange, settlements: list[Settlement], name: str, case: str
) -> None:
    """Before: no token counts, no cost, neither estimated nor unpriced; a budget would have counted it free."""
    usage = (OPENAI_CASES if name.startswith("chat") else ANTHROPIC_CASES)[case]

    attributes, _ = exchange.run(TARGETS[name], Reply(text=TEXT, usage=usage))

    assert_counted(attributes, settlements[-1])


def _stream_helper(client: Any) -> Any:
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES) as stream:
        return [*stream, stream.get_final_message()]


@pytest.mark.parametrize(
    "target",
    [TARGETS["messages-stream"], Target("messages-helper", "anthropic", _stream_helper, True)],
    ids=lambda target: target.name,
)
def test_message_delta_without_output_keeps_exact_input(
    exchange: Exchange, settlements: list[Settlement], target: Target
) -> None:
    """Before: the whole stream's record was lost (pricing raised on None - int), though message_start had given
    exact input counts."""
    usage = {**ANTHROPIC_STREAM_USAGE, "output_tokens": None}

    attributes, _ = exchange.run(target, Reply(text=TEXT, usage=usage))

    assert_counted(attributes, settlements[-1])
    assert attributes["gen_ai.usage.input_tokens"] == ANTHROPIC_INPUT
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 1000
    assert attributes["gen_ai.usage.cache_write.input_tokens"] == 300


BAD_COUNTS = {"negative": -5, "fractional": 10.5, "huge": 10**30}
FIELDS = {"chat-json": ("prompt_tokens", "completion_tokens"), "messages-json": ("input_tokens", "output_tokens")}


@pytest.mark.parametrize("side", [0, 1], ids=["input", "output"])
@pytest.mark.parametrize("bad", list(BAD_COUNTS))
@pytest.mark.parametrize("name", list(FIELDS))
def test_negative_fractional_or_huge_count_never_reaches_span_or_counter(
    exchange: Exchange, settlements: list[Settlement], name: str, bad: str, side: int
) -> None:
    """Before: -5 and 10.5 went on the span as they came, and 10**30 tokens became $10**25 on the span and in the
    costspan.cost counter."""
    fields = FIELDS[name]
    usage = {fields[0]: 400, fields[1]: 20} | {fields[side]: BAD_COUNTS[bad]}

    attributes, _ = exchange.run(TARGETS[name], Reply(text=TEXT, usage=usage))

    assert_counted(attributes, settlements[-1])
    kept, estimated = ("gen_ai.usage.output_tokens", 20), ("gen_ai.usage.input_tokens", 400)
    if side == 1:
        kept, estimated = estimated, kept
    assert attributes[kept[0]] == kept[1], "the other count keeps its exact value"
    assert type(attributes[estimated[0]]) is int and attributes[estimated[0]] < 100
    counted = sum(point.value for point in exchange.otel.metrics()["costspan.cost"])
    assert math.isclose(counted, attributes["gen_ai.usage.cost.amount"]) and counted < 0.01
