"""The one traced-call factory every patched provider method goes through.

A provider module describes each method it patches with an :class:`Endpoint`: where the method lives and how
to read its request, response and stream chunks. The factory turns that into a wrapt wrapper that opens the span,
calls the SDK, and ends the span when the response (or the stream) is complete. costspan's own failures are
logged and the call proceeds; the user's exceptions pass through untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from ._call import Call
from ._raw import RawResponseProxy
from ._streams import AsyncStreamProxy, ChunkReader, StreamProxy
from .telemetry import Telemetry

__all__ = ["Endpoint", "make_wrapper"]

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One SDK method to patch and how to read it.

    ``start`` fills the call's request fields (provider, model, stream, attributes, prompt) from the method's
    instance and keyword arguments and returns the keyword arguments to send (a copy when it changes them).
    ``read_response`` stores a complete response's fields and usage on the call; ``read_chunk`` does the same
    for one stream chunk. ``usage_only`` tells whether a chunk is the usage chunk costspan may have asked for,
    so that it stays hidden even when reading it failed. ``end_stream`` reads, once, what a stream's reader left
    for the end (the last chunk, a chunk count).
    """

    module: str
    name: str
    operation: str
    start: Callable[[Call, Any, dict[str, Any]], dict[str, Any]]
    read_response: Callable[[Call, Any], None]
    read_chunk: ChunkReader | None = None
    is_async: bool = False
    usage_only: Callable[[Any], bool] | None = None
    end_stream: Callable[[Call], None] | None = None


def make_wrapper(endpoint: Endpoint, telemetry: Telemetry) -> Wrapper:
    if endpoint.is_async:

        async def traced_async(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
            begun = _begin(endpoint, telemetry, instance, kwargs)
            if begun is None:
                return await wrapped(*args, **kwargs)
            call, send_kwargs = begun
            token = otel_context.attach(call.context)  # type: ignore[arg-type]
            try:
                result = await wrapped(*args, **send_kwargs)
            except BaseException as error:
                call.finish(error)
                raise
            finally:
                otel_context.detach(token)
            return _observe(endpoint, call, result)

        return traced_async

    def traced(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        begun = _begin(endpoint, telemetry, instance, kwargs)
        if begun is None:
            return wrapped(*args, **kwargs)
        call, send_kwargs = begun
        token = otel_context.attach(call.context)  # type: ignore[arg-type]
        try:
            result = wrapped(*args, **send_kwargs)
        except BaseException as error:
            call.finish(error)
            raise
        finally:
            otel_context.detach(token)
        return _observe(endpoint, call, result)

    return traced


def _begin(
    endpoint: Endpoint, telemetry: Telemetry, instance: Any, kwargs: dict[str, Any]
) -> tuple[Call, dict[str, Any]] | None:
    if not is_instrumentation_enabled():
        return None
    try:
        call = Call(telemetry, "", endpoint.operation)
        send_kwargs = endpoint.start(call, instance, kwargs)
        telemetry.start(call)
    except Exception as failure:
        telemetry.log_failure(f"starting {endpoint.name}", failure)
        return None
    return call, send_kwargs


def _observe(endpoint: Endpoint, call: Call, result: Any) -> Any:
    try:
        if call.raw:
            proxy = RawResponseProxy(result, call, lambda call, parsed: observe_parsed(endpoint, call, parsed))
            proxy.read_if_complete()
            return proxy
        return observe_parsed(endpoint, call, result)
    except Exception as failure:
        call.telemetry.log_failure(f"observing {endpoint.name}", failure)
        call.finish()
        return result


def observe_parsed(endpoint: Endpoint, call: Call, result: Any) -> Any:
    """Wrap a stream so it reports when it ends, or read a complete response and end the call now."""
    if call.stream and endpoint.read_chunk is not None:
        proxy = AsyncStreamProxy if endpoint.is_async else StreamProxy
        call.end_stream = endpoint.end_stream
        return proxy(result, call, endpoint.read_chunk, endpoint.usage_only)
    try:
        endpoint.read_response(call, result)
    except Exception as failure:
        call.telemetry.log_failure(f"reading {endpoint.name} response", failure)
    call.finish()
    return result
