"""Raw-response proxies (``with_raw_response`` / ``with_streaming_response``): the SDK's response object, seen
through, whose ``parse()`` result completes the call and whose ``close()`` ends it if nothing else did."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from ._call import Call
from ._streams import ObjectProxy

__all__ = ["RawResponseProxy"]

# Turns the parsed body into what the user gets (a complete response, read; or a stream, wrapped) and tells
# whether the call is done.
ParsedObserver = Callable[[Call, Any], tuple[Any, bool]]


class RawResponseProxy(ObjectProxy):
    def __init__(self, response: Any, call: Call, observe: ParsedObserver) -> None:
        super().__init__(response)
        self._self_call = call
        self._self_observe = observe
        self._self_parsed: Any = None

    def read_if_complete(self) -> None:
        """End the call now if the SDK already read the whole body (``with_raw_response`` on a non-stream call):
        the exchange is over, whenever the user gets to ``parse()``. The SDK caches what parse() returns. An
        async ``parse()`` cannot run here; that call ends when the user awaits it (or closes the response)."""
        wrapped = self.__wrapped__
        http_response = getattr(wrapped, "http_response", None)
        if (
            not self._self_call.stream
            and getattr(http_response, "is_closed", False) is True
            and not inspect.iscoroutinefunction(wrapped.parse)
        ):
            self.parse()

    def parse(self, **kwargs: Any) -> Any:
        parsed = self.__wrapped__.parse(**kwargs)
        if kwargs.get("to") is not None:
            return parsed
        if inspect.isawaitable(parsed):
            return self._self_parse_async(parsed)
        if self._self_seen(parsed):
            self._self_call.finish()
        return self._self_parsed

    async def _self_parse_async(self, parsed: Awaitable[Any]) -> Any:
        if self._self_seen(await parsed):
            await self._self_call.afinish()
        return self._self_parsed

    def _self_seen(self, parsed: Any) -> bool:
        """Observe the first parse; whether the call is done. The SDK caches parse() per type, so the user must
        get the same (proxied) object every time."""
        if self._self_parsed is not None:
            return False
        self._self_parsed, done = self._self_observe(self._self_call, parsed)
        return done

    def close(self) -> Any:
        call = self._self_call
        if not call.finished:
            call.finish(completed=False if call.stream else None)
        return self.__wrapped__.close()

    def __del__(self) -> None:
        # Once parsed into a stream, the stream proxy (which may outlive this response) ends the call.
        call = self._self_call
        if not call.finished and self._self_parsed is None:
            call.finish(completed=False if call.stream else None)
