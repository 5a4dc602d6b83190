"""Test helpers shared across capabilities: sync/async drivers for the real SDK clients, and the environment and
console output of child processes."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pydantic

API_KEY = "sk-costspan-test-DISTINCTIVE-7f3a9c"


@dataclass
class Driver:
    """Runs the same test against a sync or an async SDK client."""

    is_async: bool
    client: Any
    loop: asyncio.AbstractEventLoop | None = field(default=None)

    def run(self, value: Any) -> Any:
        if self.is_async and isinstance(value, Awaitable):
            assert self.loop is not None
            return self.loop.run_until_complete(_await(value))
        return value

    def call(self, method: Callable[..., Any], **kwargs: Any) -> Any:
        return self.run(method(**kwargs))

    def collect(self, stream: Any, limit: int | None = None) -> list[Any]:
        """Iterate a stream (all of it, or ``limit`` items and stop)."""
        if not self.is_async:
            items = []
            for item in stream:
                items.append(item)
                if limit is not None and len(items) >= limit:
                    break
            return items

        async def consume() -> list[Any]:
            items = []
            async for item in stream:
                items.append(item)
                if limit is not None and len(items) >= limit:
                    break
            return items

        return self.run(consume())

    def close(self, obj: Any) -> None:
        self.run(obj.close())

    def enter(self, manager: Any) -> Any:
        """What ``with manager as x`` (or ``async with``) gives."""
        return self.run(manager.__aenter__()) if self.is_async else manager.__enter__()

    def exit(self, manager: Any) -> None:
        """Leave a ``with manager`` (or ``async with``) block without an error."""
        if self.is_async:
            self.run(manager.__aexit__(None, None, None))
        else:
            manager.__exit__(None, None, None)


# Ids and timestamps differ between two runs of the same scripted exchange (google-genai's chunks carry their
# response id and the HTTP response's Date header).
VOLATILE = frozenset(
    {"id", "created", "created_at", "completed_at", "sequence_number", "item_id", "response_id", "date"}
)


def scrub(value: Any) -> Any:
    """What a user got (a chunk, an event, a message, a list of them), as plain data without the ids and
    timestamps that differ between two runs."""
    if isinstance(value, pydantic.BaseModel):
        value = value.model_dump(warnings=False)  # the SDKs' parsed unions warn when dumped
    if isinstance(value, dict):
        return {key: scrub(item) for key, item in value.items() if key not in VOLATILE}
    if isinstance(value, (list, tuple)):
        return [scrub(item) for item in value]
    return value


async def _await(value: Awaitable[Any]) -> Any:
    return await value


def make_driver(mode: str, sync_factory: Callable[[], Any], async_factory: Callable[[], Any]) -> Iterator[Driver]:
    if mode == "sync":
        client = sync_factory()
        yield Driver(False, client)
        client.close()
        return
    loop = asyncio.new_event_loop()
    client = async_factory()
    yield Driver(True, client, loop)
    # google-genai's async client closes with aclose(); the others' with an async close().
    loop.run_until_complete(client.aclose() if hasattr(client, "aclose") else client.close())
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
    gc.collect()


def console_spans(text: str) -> list[dict[str, Any]]:
    """What the console span exporter printed (one JSON object per span) among whatever else the program did."""
    decoder, spans, index = json.JSONDecoder(), [], 0
    while (index := text.find("{", index)) != -1:
        try:
            found, index = decoder.raw_decode(text, index)
        except json.JSONDecodeError:
            index += 1
            continue
        if isinstance(found, dict) and {"name", "context", "attributes"} <= found.keys():
            spans.append(found)
    return spans


def child_environment(**variables: str) -> dict[str, str]:
    """The environment for a child Python process: this one's without ``COSTSPAN_*`` variables, with costspan
    the only instrumentation the launcher loads (the benchmark's peers, installed here, would trace the same
    calls), and ``variables`` on top."""
    others = [ep.name for ep in entry_points(group="opentelemetry_instrumentor") if ep.name != "costspan"]
    environ = {name: value for name, value in os.environ.items() if not name.startswith("COSTSPAN_")}
    return {**environ, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": ",".join(others), **variables}


def wait_for_hangup(server: Any, seconds: float = 5) -> None:
    """Until the provider server has seen the client close a stream's connection (a stream closed upstream)."""
    deadline = time.monotonic() + seconds
    while not server.hangups:
        assert time.monotonic() < deadline, "the upstream connection was never closed"
        time.sleep(0.02)
