"""Stream proxies: the SDK's own stream object, seen through, whose call ends exactly once.

Iterating the proxy iterates a generator over the wrapped stream that hands each chunk to the provider's chunk
reader, which stores what it needs on the call. The call ends when the stream is exhausted,
raises, is closed (directly or through its context manager), is cancelled, or is garbage-collected.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
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
        self._self_chunks: Any = None

    def __del__(self) -> None:
        call = self._self_call
        if not call.finished:
            call.finish(completed=False)


def _hide_unread(call: Call, usage_only: Callable[[Any], bool] | None, chunk: Any, failure: Exception) -> bool:
    """Whether to hide a chunk whose reading failed: only the usage chunk costspan asked for."""
    call.telemetry.log_failure("reading a stream chunk", failure)
    return call.hide_usage_chunk and usage_only is not None and usage_only(chunk)


# The chunk loops run once per chunk: a generator resumes for a fraction of a method call's cost, so iteration
# goes through one, which holds no reference to the proxy (a cycle would leave a dropped stream to the collector).
def _chunks(source: Iterator[Any], call: Call, read: ChunkReader, usage_only: Callable[[Any], bool] | None) -> Any:
    try:
        for chunk in source:
            if not call.first_chunk_ns:
                call.first_chunk_ns = time.perf_counter_ns()
            try:
                if read(call, chunk):
                    continue
            except Exception as failure:
                if _hide_unread(call, usage_only, chunk, failure):
                    continue
            yield chunk
    except GeneratorExit:
        if not call.finished:
            call.finish(completed=False)
        raise
    except BaseException as error:
        call.finish(error, completed=False)
        raise
    call.finish(completed=True)


async def _achunks(
    source: AsyncIterator[Any], call: Call, read: ChunkReader, usage_only: Callable[[Any], bool] | None
) -> Any:
    try:
        async for chunk in source:
            if not call.first_chunk_ns:
                call.first_chunk_ns = time.perf_counter_ns()
            try:
                if read(call, chunk):
                    continue
            except Exception as failure:
                if _hide_unread(call, usage_only, chunk, failure):
                    continue
            yield chunk
    except GeneratorExit:
        if not call.finished:
            call.finish(completed=False)
        raise
    except BaseException as error:
        call.finish(error, completed=False)
        raise
    call.finish(completed=True)


class StreamProxy(_StreamProxyBase):
    def __iter__(self) -> Iterator[Any]:
        chunks = self._self_chunks
        if chunks is None:
            source = iter(self.__wrapped__)
            chunks = _chunks(source, self._self_call, self._self_read_chunk, self._self_usage_only)
            self._self_chunks = chunks
        return chunks  # type: ignore[no-any-return]

    def __next__(self) -> Any:
        return next(self.__iter__())

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
    def __aiter__(self) -> AsyncIterator[Any]:
        chunks = self._self_chunks
        if chunks is None:
            source = aiter(self.__wrapped__)
            chunks = _achunks(source, self._self_call, self._self_read_chunk, self._self_usage_only)
            self._self_chunks = chunks
        return chunks  # type: ignore[no-any-return]

    async def __anext__(self) -> Any:
        return await anext(self.__aiter__())

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
