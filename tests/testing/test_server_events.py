"""Scripted stream events (`Reply.events`) as the real clients see them: dropped, repeated, reordered, cut and
added events, on every streaming wire format."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from server_streams import STREAMING_APIS, client_for, open_stream, text_deltas

from costspan.testing import ProviderServer, Reply

if TYPE_CHECKING:
    from conftest import Sdk

TEXT = "one two three"


def kinds(items: list[Any]) -> list[str]:
    """What each item a client yielded is: its event type, or for a chat or completion chunk its first text."""
    out = []
    for item in items:
        kind = getattr(item, "type", None)
        out.append(kind if isinstance(kind, str) else f"chunk:{text_deltas([item])}")
    return out


async def stream_items(sdk: Sdk, api: str) -> list[Any]:
    return await sdk.drain(await sdk.call(open_stream(client_for(sdk, api), api)))


@pytest.mark.parametrize("api", STREAMING_APIS)
async def test_identity_script_changes_nothing(sdk: Sdk, server: ProviderServer, api: str) -> None:
    seen: list[list[Any]] = []

    def keep(events: list[Any]) -> list[Any]:
        seen.append(list(events))
        return events

    server.push(Reply(text=TEXT, chunks=3))
    plain = kinds(await stream_items(sdk, api))
    server.push(Reply(text=TEXT, chunks=3, events=keep))
    scripted = kinds(await stream_items(sdk, api))

    assert scripted == plain
    assert len(seen) == 1 and seen[0], "the script sees the stream's events once"


@pytest.mark.parametrize("api", STREAMING_APIS)
async def test_reordered_and_added_events(sdk: Sdk, server: ProviderServer, api: str) -> None:
    def shuffle(events: list[Any]) -> list[Any]:
        # An event of a type no client knows, then every event but the last in reverse order, then the last.
        return [{"type": "future_event", "index": 0}, *reversed(events[:-1]), events[-1]]

    server.push(Reply(text=TEXT, chunks=3))
    plain = await stream_items(sdk, api)
    server.push(Reply(text=TEXT, chunks=3, events=shuffle))
    scripted = await stream_items(sdk, api)

    assert text_deltas(scripted) == list(reversed(text_deltas(plain)))
    assert kinds(scripted)[0] == "future_event"


@pytest.mark.parametrize("api", STREAMING_APIS)
async def test_cut_events(sdk: Sdk, server: ProviderServer, api: str) -> None:
    server.push(Reply(text=TEXT, chunks=3))
    plain = kinds(await stream_items(sdk, api))
    server.push(Reply(text=TEXT, chunks=3, events=lambda events: events[:2]))
    cut = kinds(await stream_items(sdk, api))

    assert cut == plain[: len(cut)] and len(cut) < len(plain)


async def test_openai_done_is_an_event_the_script_can_move(sdk: Sdk, server: ProviderServer) -> None:
    """Chunks after [DONE] are never read: the client stops at it."""
    server.push(Reply(text=TEXT, chunks=3, events=lambda events: [events[-1], *events[:-1]]))

    assert await stream_items(sdk, "chat") == []


@pytest.mark.parametrize("api", ["chat", "anthropic"])
async def test_drop_after_counts_the_scripted_deltas(sdk: Sdk, server: ProviderServer, api: str) -> None:
    """A delta the script repeats is a delta twice; the connection is cut after the second of them."""

    def repeat_first_delta(events: list[Any]) -> list[Any]:
        first = next(index for index, event in enumerate(events) if _is_delta(event))
        return [*events[: first + 1], *events[first:]]

    server.push(Reply(text=TEXT, chunks=3, drop_after=2, events=repeat_first_delta))
    items: list[Any] = []
    with pytest.raises(Exception):  # noqa: B017 - each SDK has its own error for a cut body
        await sdk.drain(await sdk.call(open_stream(client_for(sdk, api), api)), items)

    assert text_deltas(items) == ["one", "one"]


def _is_delta(event: Any) -> bool:
    if not isinstance(event, dict):
        return False
    if event.get("type") == "content_block_delta":
        return True
    choices = event.get("choices") or [{}]
    return bool(choices[0].get("delta", {}).get("content"))
