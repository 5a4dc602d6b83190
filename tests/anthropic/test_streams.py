"""What only Anthropic's Messages streams do, raw (``create(stream=True)``) or through the ``messages.stream()``
helper: cumulative usage counted once, message_start's exact input kept when a stream stops early, a helper
never entered sending nothing. How every stream ends (exhausted, closed, broken off, failed, cancelled,
abandoned) is tested for every provider in tests/core/test_stream_endings.py."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable

import pytest
from providers import ANTHROPIC, ANTHROPIC_INPUT, Opened, open_stream

from costspan.testing import ProviderServer, Reply
from support import Driver

MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "Count to twenty, please."}]
TEXT = " ".join(str(n) for n in range(1, 21))
USAGE = ANTHROPIC.streams.usage
INPUT = ANTHROPIC_INPUT


@pytest.fixture(params=ANTHROPIC.streams.ways, ids=lambda way: way.name)
def opener(request: pytest.FixtureRequest, ant: Driver) -> Callable[[], Opened]:
    return lambda: open_stream(ant, request.param, MESSAGES)


def test_repeated_cumulative_usage_is_counted_once(opener, ant: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(text=TEXT, chunks=5, usage=USAGE, usage_updates=3))
    opened = opener()
    deltas = [event for event in ant.collect(opened.stream) if event.type == "message_delta"]
    assert len(deltas) == 3 and all(delta.usage.output_tokens == 20 for delta in deltas)
    attributes = otel.span().attributes
    assert attributes["gen_ai.usage.input_tokens"] == INPUT
    assert attributes["gen_ai.usage.output_tokens"] == 20
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 1000
    opened.exit()


def test_stopped_after_first_text_delta_keeps_exact_input(opener, ant: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(text=TEXT, chunks=20, usage=USAGE))
    opened = opener()
    # message_start, content_block_start, then the first text delta
    assert ant.collect(opened.stream, limit=3)[-1].type == "content_block_delta"
    ant.close(opened.stream)
    attributes = otel.span().attributes
    assert attributes["costspan.stream.completed"] is False
    assert attributes["costspan.usage.estimated"] is True
    assert attributes["gen_ai.usage.input_tokens"] == INPUT, "message_start's exact input counts are kept"
    assert attributes["gen_ai.usage.cache_write.input_tokens"] == 300
    assert 1 <= attributes["gen_ai.usage.output_tokens"] < 20
    assert attributes["gen_ai.usage.cost.amount"] > 0
    opened.exit()
    otel.lifecycle.assert_each_ended_once()


def test_helper_never_entered_sends_nothing(ant: Driver, server: ProviderServer, otel) -> None:
    manager = ant.client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del manager
        gc.collect()
    assert server.requests == []
    assert otel.spans() == []
    never_awaited = [w for w in caught if "was never awaited" in str(w.message)]
    assert len(never_awaited) == (1 if ant.is_async else 0), "only the SDK's own request coroutine, as without costspan"
