"""The async clients read malformed usage the same way: one case per endpoint, suppressed and instrumented."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anthropic
import openai
import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation
from usage.harness import TARGETS, TEXT, anthropic_client, check_counter, check_record, openai_client

from costspan.testing import ProviderServer, Reply
from support import scrub

if TYPE_CHECKING:
    from conftest import Otel

# Totals that are no counts, with a detail that is: the totals are estimated, the detail kept.
USAGES = {
    "chat": {"prompt_tokens": "400", "completion_tokens": -3, "prompt_tokens_details": {"cached_tokens": 100}},
    "completions": {"prompt_tokens": 4.5, "completion_tokens": None, "prompt_tokens_details": {"cached_tokens": 100}},
    "responses": {"input_tokens": True, "output_tokens": 10**30, "input_tokens_details": {"cached_tokens": 100}},
    "embeddings": {"prompt_tokens": [1]},
    "messages": {"input_tokens": None, "cache_read_input_tokens": 100, "output_tokens": "7"},
}


@pytest.mark.parametrize("name", list(TARGETS))
async def test_async_client(otel: Otel, instrument: Callable[..., None], server: ProviderServer, name: str) -> None:
    instrument()
    target = TARGETS[name]
    client = (openai_client if target.sdk == "openai" else anthropic_client)(
        server, openai.AsyncOpenAI if target.sdk == "openai" else anthropic.AsyncAnthropic
    )
    reply = Reply(text=TEXT, usage=USAGES[name.split("-")[0]])
    server.push(reply, reply)

    with suppress_instrumentation():
        plain = scrub(await target.acall(client))
    traced = scrub(await target.acall(client))
    await client.close()

    assert traced == plain
    (span,) = otel.spans()
    otel.lifecycle.assert_each_ended_once()
    attributes: dict[str, Any] = dict(span.attributes or {})
    check_record(attributes)
    check_counter(otel, [span])
    assert attributes["costspan.usage.estimated"] is True
    assert attributes["gen_ai.usage.cost.amount"] > 0
    if name == "embeddings-json":
        assert attributes["gen_ai.usage.input_tokens"] > 0
    else:
        assert attributes["gen_ai.usage.cache_read.input_tokens"] == 100, "an exact detail keeps its value"
        assert attributes["gen_ai.usage.input_tokens"] >= 100, "an estimated total is never below its parts"
        assert attributes["gen_ai.usage.output_tokens"] > 0
