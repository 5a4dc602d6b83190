"""Property: whatever a gateway does to a complete response's top-level fields (drops them, nulls them, gives them
the wrong type), every non-streamed endpoint's call returns what it returns without costspan, ends one span that
passes every call's checks, and costspan reads what is there without failing: a response of the wrong shape is
malformed input, never costspan's own failure."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from usage.harness import TARGETS, TEXT

from costspan.testing import Reply

if TYPE_CHECKING:
    from usage.harness import Exchange

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSON_TARGETS = [name for name, target in TARGETS.items() if not target.stream]
_DROP, _KEEP = object(), object()
# What a field becomes: left out, null, or a value of another JSON type than the field's.
CHANGES = st.sampled_from([_KEEP, _KEEP, _KEEP, _DROP, None, "x", 7, -1.5, True, [], [None], {}, {"x": 1}])


def _rewrite(changes: list[Any]) -> Any:
    """The body with its i-th top-level field (in the server's order) changed by ``changes[i]``, if any; the same
    for both calls of an exchange."""

    def rewrite(body: Any) -> Any:
        changed = {}
        for index, (key, value) in enumerate(body.items()):
            change = changes[index] if index < len(changes) else _KEEP
            if change is _KEEP:
                changed[key] = value
            elif change is not _DROP:
                changed[key] = change
        return changed

    return rewrite


@pytest.mark.parametrize("name", JSON_TARGETS)
@SETTINGS
@given(changes=st.lists(CHANGES, max_size=16))
def test_any_response_shape(
    exchange: Exchange, name: str, changes: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="costspan"):
        attributes, _ = exchange.run(TARGETS[name], Reply(text=TEXT, body=_rewrite(changes)))
    assert [message for message in _messages(caplog) if not message.startswith(EXPECTED)] == []
    assert attributes["gen_ai.operation.name"]


# What a response of the wrong shape may make costspan say: that a usage field is unusable (the malformed-usage
# warning, once per field), or that the model the response names has no price.
EXPECTED = ("costspan: reading usage field ", "costspan: genai-prices has no price for ")


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


# openai's embeddings.create raises ValueError("No embedding data received") for `{}`, with costspan as without.
@pytest.mark.parametrize("name", [name for name in JSON_TARGETS if name != "embeddings-json"])
def test_an_empty_response_is_estimated(exchange: Exchange, name: str, caplog: pytest.LogCaptureFixture) -> None:
    """`{}` from a gateway (the openai SDK's own tests send it): the call's usage is estimated from the request,
    and said to be, and costspan logs no failure of its own."""
    with caplog.at_level(logging.WARNING, logger="costspan"):
        attributes, _ = exchange.run(TARGETS[name], Reply(text=TEXT, body=lambda body: {}))
    assert _messages(caplog) == []
    assert attributes["costspan.usage.estimated"] is True
    assert attributes["gen_ai.usage.input_tokens"] > 0
