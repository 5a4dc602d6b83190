"""Property: whatever happens to a stream's events (dropped, repeated, reordered, cut short, or joined by events
of types no SDK knows), every streaming endpoint's call gives the user what it gives without costspan and ends
exactly one span, with counts within bounds and a finite, non-negative cost; the usage is exact (never added up
from repeated cumulative counts) when the events carrying it arrived, and estimated exactly when they did not."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from usage.harness import STREAM_TARGETS, TEXT

from costspan.testing import Reply
from costspan.testing.reply import DEFAULT_INPUT_TOKENS, output_tokens

if TYPE_CHECKING:
    from usage.harness import Exchange

SETTINGS = settings(
    max_examples=75,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
UNKNOWN_EVENTS = st.sampled_from(
    [
        {"type": "future_event"},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "future_delta", "future": "text"}},
        {"type": "response.future_part.delta", "delta": "text", "output_index": 0},
    ]
)
_INDEX = st.integers(0, 63)
EDITS = st.lists(
    st.one_of(
        st.tuples(st.just("drop"), _INDEX),
        st.tuples(st.just("repeat"), _INDEX),
        st.tuples(st.just("swap"), _INDEX, _INDEX),
        st.tuples(st.just("cut"), _INDEX),
        st.tuples(st.just("add"), _INDEX, UNKNOWN_EVENTS),
    ),
    max_size=5,
)
# The events each stream's usage arrives in (OpenAI's chat and completions: the usage chunk, read only before
# [DONE]; the Responses API: its final event; Anthropic: message_delta, which repeats the input counts).
FINAL_RESPONSE_EVENTS = {"response.completed", "response.incomplete", "response.failed"}


def edited(edits: list[tuple[Any, ...]], events: list[Any]) -> list[Any]:
    """The events after the edits; each index is taken modulo the events' count at that point."""
    events = list(events)
    for kind, at, *rest in edits:
        if kind == "add":
            events.insert(at % (len(events) + 1), dict(rest[0]))
        elif events:
            index = at % len(events)
            if kind == "drop":
                del events[index]
            elif kind == "repeat":
                events.insert(index, events[index])
            elif kind == "swap":
                other = rest[0] % len(events)
                events[index], events[other] = events[other], events[index]
            else:
                events = events[:index]
    return events


def carries_usage(name: str, events: list[Any]) -> bool:
    """Whether the events the SDK reads include those its provider reports the final usage in."""
    if name in ("chat-stream", "completions-stream"):
        read = events[: events.index("[DONE]")] if "[DONE]" in events else events
        return any(isinstance(event, dict) and event.get("usage") for event in read)
    types = {event.get("type") for event in events if isinstance(event, dict)}
    if name == "responses-stream":
        return bool(types & FINAL_RESPONSE_EVENTS)
    return "message_delta" in types


@pytest.mark.parametrize("name", list(STREAM_TARGETS))
@SETTINGS
@given(edits=EDITS)
def test_any_event_sequence(exchange: Exchange, name: str, edits: list[tuple[Any, ...]]) -> None:
    sent: list[list[Any]] = []

    def script(events: list[Any]) -> list[Any]:
        sent.append(edited(edits, events))
        return sent[-1]

    options = {"stream_options": {"include_usage": True}} if name in ("chat-stream", "completions-stream") else {}

    attributes, _ = exchange.run(STREAM_TARGETS[name], Reply(text=TEXT, events=script), **options)

    exact = carries_usage(name, sent[-1])
    assert attributes.get("costspan.usage.estimated", False) is not exact, (sent[-1], attributes)
    assert attributes.get("costspan.stream.completed") is True
    if exact:
        assert attributes["gen_ai.usage.input_tokens"] == DEFAULT_INPUT_TOKENS
        assert attributes["gen_ai.usage.output_tokens"] == output_tokens(Reply(text=TEXT))
    else:
        assert attributes["gen_ai.usage.input_tokens"] >= 1, "input is estimated from the request"
    assert attributes["gen_ai.usage.cost.amount"] > 0
