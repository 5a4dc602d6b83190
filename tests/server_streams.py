"""The provider server's streaming APIs as the real clients open them, and the text each streams: shared by the
server's own tests (tests/testing), whose ``Sdk`` fixture builds the clients."""

from __future__ import annotations

from typing import Any

MESSAGES = [{"role": "user", "content": "Hi"}]
OPENAI_APIS = ["chat", "responses", "completions"]
ANTHROPIC_APIS = ["anthropic", "vertex", "bedrock"]
STREAMING_APIS = OPENAI_APIS + ANTHROPIC_APIS
ANTHROPIC_MODELS = {
    "anthropic": "claude-haiku-4-5",
    "vertex": "claude-haiku-4-5@20251001",
    "bedrock": "anthropic.claude-haiku-4-5-20251001-v1:0",
}


def client_for(sdk: Any, api: str, **options: Any) -> Any:
    """A client of ``api`` from ``sdk`` (tests/testing/conftest.py's ``Sdk``), sync or async as it is."""
    if api in OPENAI_APIS:
        return sdk.openai(**options)
    return {"anthropic": sdk.anthropic, "vertex": sdk.vertex, "bedrock": sdk.bedrock}[api](**options)


def open_stream(client: Any, api: str) -> Any:
    """The call that opens a stream of ``api`` (awaitable for an async client)."""
    if api == "chat":
        return client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    if api == "responses":
        return client.responses.create(model="gpt-4.1", input="Hi", stream=True)
    if api == "completions":
        return client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Hi", stream=True)
    return client.messages.create(model=ANTHROPIC_MODELS[api], max_tokens=8, messages=MESSAGES, stream=True)


def text_deltas(items: list[Any]) -> list[str]:
    """The text of each content delta, whichever API streamed it."""
    texts = []
    for item in items:
        kind = getattr(item, "type", None)
        if kind == "content_block_delta":
            texts.append(item.delta.text)
        elif kind == "response.output_text.delta":
            texts.append(item.delta)
        elif kind is None and item.choices:
            choice = item.choices[0]
            texts.append(choice.delta.content if hasattr(choice, "delta") else choice.text)
    return [text for text in texts if text]
