"""Stream usage the user asks for is the user's, wherever the SDK accepts the request for it: the
``stream_options`` keyword or ``extra_body`` (whose ``stream_options`` replaces the keyword's in the request the
SDK sends). costspan then neither hides the usage chunk nor sends stream options of its own; when the user did
not ask, costspan adds ``include_usage`` to the stream options that are sent, and hides the chunk again.

The OpenAI client has no default request body (``with_options`` and ``copy`` set headers, query, timeout and
retries), so a derived client's calls are the same two cases; one such call is tested as a user would make it.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest
from providers import OPENAI

from costspan.testing import ProviderServer, Reply
from support import API_KEY, Driver

MESSAGES = [{"role": "user", "content": "Count to twenty, please."}]
USAGE = OPENAI.streams.usage
USER_ASKS = {"include_usage": True}
OTHER = {"include_obfuscation": False}

# (what the user passes, the stream_options the request must carry, whether the user asked for the usage chunk)
CASES = {
    "keyword": ({"stream_options": USER_ASKS}, USER_ASKS, True),
    "extra_body": ({"extra_body": {"stream_options": USER_ASKS}}, USER_ASKS, True),
    "extra_body over keyword": (
        {"stream_options": OTHER, "extra_body": {"stream_options": USER_ASKS}},
        USER_ASKS,
        True,
    ),
    "keyword, not asking": ({"stream_options": OTHER}, {**OTHER, "include_usage": True}, False),
    "extra_body, not asking": (
        {"extra_body": {"stream_options": OTHER, "metadata": {"k": "v"}}},
        {**OTHER, "include_usage": True},
        False,
    ),
    "extra_body asking no": ({"extra_body": {"stream_options": {"include_usage": False}}}, USER_ASKS, False),
    "nothing": ({}, USER_ASKS, False),
}


def _chat(client: Any, options: dict[str, Any]) -> Any:
    return client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, stream=True, **options)


def _completion(client: Any, options: dict[str, Any]) -> Any:
    return client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Count.", stream=True, **options)


@pytest.mark.parametrize("create", [_chat, _completion], ids=["chat", "completions"])
@pytest.mark.parametrize(("options", "sent", "user_asked"), CASES.values(), ids=CASES.keys())
def test_stream_usage_the_user_asks_for_is_theirs(
    oai: Driver, server: ProviderServer, otel, create: Any, options: dict[str, Any], sent: Any, user_asked: bool
) -> None:
    server.push(Reply(chunks=5, usage=USAGE))
    chunks = oai.collect(oai.run(create(oai.client, options)))
    body = server.requests[-1].body
    assert body["stream_options"] == sent
    if "metadata" in options.get("extra_body", {}):
        assert body["metadata"] == {"k": "v"}, "the rest of extra_body goes as the user gave it"
    usage_chunks = [chunk for chunk in chunks if not chunk.choices]
    if user_asked:
        assert len(usage_chunks) == 1 and chunks[-1] is usage_chunks[0], "the usage chunk the user asked for"
        assert chunks[-1].usage.completion_tokens == USAGE["completion_tokens"]
    else:
        assert usage_chunks == [], "the usage chunk costspan asked for reached the user"
    assert sum(1 for chunk in chunks if chunk.choices) >= 5
    span = otel.span()
    assert span.attributes["gen_ai.usage.output_tokens"] == USAGE["completion_tokens"]
    assert span.attributes["costspan.stream.completed"] is True
    assert "costspan.usage.estimated" not in span.attributes


def test_user_options_are_not_changed(oai: Driver, server: ProviderServer, otel) -> None:
    """costspan sends a copy: the dictionaries the user passes (and may reuse) are left as they were."""
    extra_body = {"stream_options": {"include_obfuscation": False}}
    oai.collect(oai.run(_chat(oai.client, {"extra_body": extra_body})))
    assert extra_body == {"stream_options": {"include_obfuscation": False}}
    assert server.requests[-1].body["stream_options"] == {"include_obfuscation": False, "include_usage": True}


def test_derived_client_extra_body(oai: Driver, server: ProviderServer, otel) -> None:
    server.push(Reply(chunks=3, usage=USAGE))
    client = oai.client.with_options(timeout=30, max_retries=0)
    chunks = oai.collect(oai.run(_chat(client, {"extra_body": {"stream_options": USER_ASKS}})))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == USAGE["completion_tokens"]
    assert server.requests[-1].body["stream_options"] == USER_ASKS
    assert otel.span().attributes["gen_ai.usage.output_tokens"] == USAGE["completion_tokens"]


def test_stream_usage_off_sends_only_the_users_options(instrument, server: ProviderServer, otel) -> None:
    """With ``stream_usage=False`` costspan asks for nothing: the request carries what the user gave."""
    instrument(stream_usage=False)
    with openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0) as client:
        list(_chat(client, {"extra_body": {"stream_options": OTHER}}))
    assert server.requests[-1].body["stream_options"] == OTHER
