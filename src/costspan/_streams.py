"""Stream proxies: the SDK's own stream object, seen through, whose call ends exactly once.

The end of a stream belongs to its iteration. A proxy hands out one generator over the wrapped stream; the
generator passes each chunk to the provider's chunk reader and ends the call when the stream is exhausted, raises,
or is closed. The generator is started (primed to a first, empty step) before the user sees the proxy, so that
Python closes it when it is collected, even if it was never iterated: collection is the one route for a stream
nobody closed, whoever held on to it last. The generator holds the call and never the proxy, so the common idiom
``for chunk in client.chat.completions.create(..., stream=True)``, which keeps only the generator, keeps the call
alive to the end, and a dropped stream leaves no cycle for the garbage collector.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

import wrapt

from ._call import Call, Watch
from ._endpoint import ChunkReader
from .budgets import BudgetError as _Refusal

__all__ = ["AsyncStreamProxy", "ObjectProxy", "StreamProxy", "make_helper_close", "proxy_stream"]

# wrapt's proxy is generic to type checkers only: subscripting it at run time needs wrapt >= 2.2.
if TYPE_CHECKING:
    ObjectProxy = wrapt.BaseObjectProxy[Any]
else:
    ObjectProxy = wrapt.BaseObjectProxy


def proxy_stream(stream: Any, call: Call, read: ChunkReader, usage_only: Callable[[Any], bool] | None) -> Any:
    """The user's view of an SDK stream whose iteration ends ``call``."""
    if call.is_async:
        achunks = _achunks(stream, call, read, usage_only)
        _prime_async(achunks)
        return AsyncStreamProxy(stream, achunks)
    chunks = _chunks(stream, call, read, usage_only)
    next(chunks)
    return StreamProxy(stream, chunks)


def _hide_unread(call: Call, usage_only: Callable[[Any], bool] | None, chunk: Any, failure: Exception) -> bool:
    """Whether to hide a chunk whose reading failed: only the usage chunk costspan asked for."""
    call.log_failure("reading a stream chunk", failure)
    return call.hide_usage_chunk and usage_only is not None and usage_only(chunk)


# The chunk loops run once per chunk: a generator resumes for a fraction of a method call's cost. A watched
# stream (a budget's running cost) costs an addition (the chunk reader adds its text's length to
# ``call.output_chars``, which it leaves alone on an unwatched stream) and a comparison per chunk; the watch
# itself runs only when the text reaches the length it asked to look again at (the first chunk, text or not, is
# always looked at: it may carry the input count).
_NEVER = 1 << 62


def _look(watch: Watch | None, call: Call, stream: Any) -> int:
    """Where to look next; a budget's refusal passes, any other failure of the watch stops it."""
    assert watch is not None
    try:
        return watch.check(call, stream)
    except _Refusal:
        raise
    except Exception as failure:
        call.log_failure("watching a stream's cost", failure)
        return _NEVER


async def _alook(watch: Watch | None, call: Call, stream: Any) -> int:
    assert watch is not None
    try:
        return await watch.acheck(call, stream)
    except _Refusal:
        raise
    except Exception as failure:
        call.log_failure("watching a stream's cost", failure)
        return _NEVER


def _chunks(
    stream: Any, call: Call, read: ChunkReader, usage_only: Callable[[Any], bool] | None
) -> Generator[Any, None, None]:
    watch = call.watch
    look_at = 0 if watch is not None else _NEVER
    timed = False  # a local: cheaper per chunk than the call's attribute
    try:
        yield None  # primed: from here on, closing or collecting the generator ends the call
        for chunk in stream:
            if not timed:
                timed = True
                call.first_chunk_ns = time.perf_counter_ns()
            try:
                if read(call, chunk):
                    continue
            except Exception as failure:
                if _hide_unread(call, usage_only, chunk, failure):
                    continue
            if call.output_chars >= look_at:
                look_at = _look(watch, call, stream)
            yield chunk
    except GeneratorExit:
        call.finish(completed=False)
        raise
    except BaseException as error:
        call.finish(error, completed=False)
        raise
    call.finish(completed=True)


async def _achunks(
    stream: Any, call: Call, read: ChunkReader, usage_only: Callable[[Any], bool] | None
) -> AsyncGenerator[Any, None]:
    watch = call.watch
    look_at = 0 if watch is not None else _NEVER
    timed = False  # a local: cheaper per chunk than the call's attribute
    try:
        yield None  # primed, as in _chunks
        async for chunk in stream:
            if not timed:
                timed = True
                call.first_chunk_ns = time.perf_counter_ns()
            try:
                if read(call, chunk):
                    continue
            except Exception as failure:
                if _hide_unread(call, usage_only, chunk, failure):
                    continue
            if call.output_chars >= look_at:
                look_at = await _alook(watch, call, stream)
            yield chunk
    # Closing (aclose, or the event loop finalizing a dropped generator) may await: the call's end awaits its
    # budget store's async client.
    except GeneratorExit:
        await call.afinish(completed=False)
        raise
    except BaseException as error:
        await call.afinish(error, completed=False)
        raise
    await call.afinish(completed=True)


def _prime_async(achunks: AsyncGenerator[Any, None]) -> None:
    """Run an async generator to its first ``yield`` from sync code. That step awaits nothing, so the awaitable
    ``asend`` returns completes on its first send, raising StopIteration (PEP 525); the event loop's asyncgen hooks
    now know the generator and close it when it is collected or the loop shuts down."""
    step = achunks.asend(None)
    try:
        step.send(None)
    except StopIteration:
        return
    raise RuntimeError("a stream's first step awaited")  # pragma: no cover - _achunks' first step never awaits


class StreamProxy(ObjectProxy):
    def __init__(self, stream: Any, chunks: Generator[Any, None, None]) -> None:
        super().__init__(stream)
        self._self_chunks = chunks

    def __iter__(self) -> Iterator[Any]:
        return self._self_chunks

    def __next__(self) -> Any:
        return next(self._self_chunks)

    def __enter__(self) -> StreamProxy:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._self_chunks.close()
        self.__wrapped__.close()


class AsyncStreamProxy(ObjectProxy):
    def __init__(self, stream: Any, chunks: AsyncGenerator[Any, None]) -> None:
        super().__init__(stream)
        self._self_chunks = chunks

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._self_chunks

    async def __anext__(self) -> Any:
        return await self._self_chunks.__anext__()

    async def __aenter__(self) -> AsyncStreamProxy:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._self_chunks.aclose()
        await self.__wrapped__.close()


def make_helper_close(attribute: str, is_async: bool) -> Callable[..., Any]:
    """A wrapper for an SDK stream helper's ``close()``, which closes the HTTP response behind costspan's proxy
    (held in ``attribute``) rather than the proxy: the proxy's iteration is closed first, so its call ends now."""
    if is_async:

        async def close_async(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
            stream = getattr(instance, attribute, None)
            if isinstance(stream, AsyncStreamProxy):
                await stream._self_chunks.aclose()
            return await wrapped(*args, **kwargs)

        return close_async

    def close(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        stream = getattr(instance, attribute, None)
        if isinstance(stream, StreamProxy):
            stream._self_chunks.close()
        return wrapped(*args, **kwargs)

    return close
