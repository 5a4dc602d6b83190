"""The one traced-call factory every patched provider method goes through.

A provider module describes each method it patches with an :class:`~costspan._endpoint.Endpoint`; the factory
turns that into a wrapt wrapper that begins the call (its span), calls the SDK, and ends the call when the
response (or the stream) is complete. costspan's own failures are logged and the call proceeds; the user's
exceptions pass through untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from ._call import Call
from ._endpoint import Endpoint
from ._pipeline import Pipeline
from ._raw import RawResponseProxy
from ._streams import proxy_stream

__all__ = ["Wrapper", "make_wrapper"]

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def make_wrapper(endpoint: Endpoint, pipeline: Pipeline) -> Wrapper:
    if endpoint.is_async:

        async def traced_async(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
            begun = pipeline.begin(endpoint, instance, kwargs) if is_instrumentation_enabled() else None
            if begun is None:
                return await wrapped(*args, **kwargs)
            call, send_kwargs = begun
            await pipeline.areserve(call)
            token = otel_context.attach(call.context)  # type: ignore[arg-type]
            try:
                result = await wrapped(*args, **send_kwargs)
            except Exception as error:
                await call.afinish(error)
                raise
            except BaseException as error:  # cancelled: end without awaiting anything more
                call.finish(error)
                raise
            finally:
                otel_context.detach(token)
            observed, done = _observe(endpoint, call, result)
            if done:
                await call.afinish()
            return observed

        return traced_async

    def traced(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        begun = pipeline.begin(endpoint, instance, kwargs) if is_instrumentation_enabled() else None
        if begun is None:
            return wrapped(*args, **kwargs)
        call, send_kwargs = begun
        pipeline.reserve(call)
        token = otel_context.attach(call.context)  # type: ignore[arg-type]
        try:
            result = wrapped(*args, **send_kwargs)
            if endpoint.lazy:
                result = _opened(result)
        except BaseException as error:
            call.finish(error)
            raise
        finally:
            otel_context.detach(token)
        observed, done = _observe(endpoint, call, result)
        if done:
            call.finish()
        return observed

    return traced


def _opened(stream: Iterator[Any]) -> Iterator[Any]:
    """A lazy stream whose request has been sent: its first chunk read (the request's failure raises here), then
    given back first. A generator, so that closing it closes the SDK's."""
    try:
        first = next(stream)
    except StopIteration:
        return _empty()
    return _replayed(first, stream)


def _replayed(first: Any, stream: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from stream


def _empty() -> Iterator[Any]:
    yield from ()


def _observe(endpoint: Endpoint, call: Call, result: Any) -> tuple[Any, bool]:
    """What the user gets (``result``, or a proxy of it that ends the call later), and whether the call is done:
    a complete response was read, and the caller ends the call (awaiting its end, if it is async)."""
    try:
        if call.raw:
            proxy = RawResponseProxy(result, call, partial(observe_parsed, endpoint))
            proxy.read_if_complete()
            return proxy, False
        return observe_parsed(endpoint, call, result)
    except Exception as failure:
        call.log_failure(f"observing {endpoint.name}", failure)
        return result, True


def observe_parsed(endpoint: Endpoint, call: Call, result: Any) -> tuple[Any, bool]:
    """Wrap a stream so that its iteration ends the call, or read a complete response (then the call is done)."""
    if call.stream and call.read_chunk is not None:
        call.end_stream = endpoint.end_stream
        return proxy_stream(result, call, call.read_chunk, endpoint.usage_only), False
    try:
        endpoint.read_response(call, result)
    except Exception as failure:
        call.log_failure(f"reading {endpoint.name} response", failure)
    return result, True
