"""Stream proxies: the SDK's own stream object, seen through, whose call ends exactly once.

The proxy pulls chunks straight from the wrapped stream's ``__next__``/``__anext__`` and hands each to the
provider's chunk reader, which stores what it needs on the call. The call ends when the stream is exhausted,
raises, is closed (directly or through its context manager), is cancelled, or is garbage-collected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import wrapt

from ._call import Call

__all__ = ["AsyncStreamProxy", "ChunkReader", "StreamProxy", "make_helper_close"]

# Stores what a chunk tells about the call; returns True when the chunk must be hidden from the user (the usage
# chunk costspan asked for on the user's behalf).
ChunkReader = Callable[[Call, Any], bool]


class _StreamProxyBase(wrapt.BaseObjectProxy[Any]):
    def __init__(
        self,
        stream: Any,
        call: Call,
        read_chunk: ChunkReader,
        usage_only: Callable[[Any], bool] | None = None,
    ) -> None:
        super().__init__(stream)
        self._self_call = call
        self._self_read_chunk = read_chunk
        self._self_usage_only = usage_only

    def _self_read_failed(self, chunk: Any, failure: Exception) -> bool:
        """Whether to hide a chunk whose reading failed: only the usage chunk costspan asked for."""
        call = self._self_call
        call.telemetry.log_failure("reading a stream chunk", failure)
        usage_only = self._self_usage_only
        return call.hide_usage_chunk and usage_only is not None and usage_only(chunk)

    def __del__(self) -> None:
        call = self._self_call
        if not call.finished:
            call.finish(completed=False)


# __next__ and __anext__ run once per chunk: they inline the chunk reading and keep to local names.
class StreamProxy(_StreamProxyBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._self_next = self.__wrapped__.__next__

    def __iter__(self) -> StreamProxy:
        return self

    def __next__(self) -> Any:
        call = self._self_call
        while True:
            try:
                chunk = self._self_next()
            except StopIteration:
                call.finish(completed=True)
                raise
            except BaseException as error:
                call.finish(error, completed=False)
                raise
            if not call.first_chunk_ns:
                call.first_chunk_ns = time.perf_counter_ns()
            try:
                if not self._self_read_chunk(call, chunk):
                    return chunk
            except Exception as failure:
                if not self._self_read_failed(chunk, failure):
                    return chunk

    def __enter__(self) -> StreamProxy:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        call = self._self_call
        if not call.finished:
            call.finish(completed=False)
        self.__wrapped__.close()


class AsyncStreamProxy(_StreamProxyBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._self_next = self.__wrapped__.__anext__

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        call = self._self_call
        while True:
            try:
                chunk = await self._self_next()
            except StopAsyncIteration:
                call.finish(completed=True)
                raise
            except BaseException as error:
                call.finish(error, completed=False)
                raise
            if not call.first_chunk_ns:
                call.first_chunk_ns = time.perf_counter_ns()
            try:
                if not self._self_read_chunk(call, chunk):
                    return chunk
            except Exception as failure:
                if not self._self_read_failed(chunk, failure):
                    return chunk

    async def __aenter__(self) -> AsyncStreamProxy:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        call = self._self_call
        if not call.finished:
            call.finish(completed=False)
        await self.__wrapped__.close()


def make_helper_close(attribute: str, is_async: bool) -> Callable[..., Any]:
    """A wrapper for an SDK stream helper's ``close()`` that closes the response behind costspan's proxy: the
    helper's stream (held in ``attribute``) ends with it, so its call ends now, not when it is collected."""

    def end(helper: Any) -> None:
        stream = getattr(helper, attribute, None)
        if isinstance(stream, _StreamProxyBase) and not stream._self_call.finished:
            stream._self_call.finish(completed=False)

    if is_async:

        async def close_async(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
            end(instance)
            return await wrapped(*args, **kwargs)

        return close_async

    def close(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        end(instance)
        return wrapped(*args, **kwargs)

    return close
