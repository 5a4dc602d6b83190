"""What a provider adapter tells the shared machinery about one SDK method: where it lives and how to read its
request, response and stream chunks. Providers and the generic call path both import this module; neither
imports the other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._call import Call

__all__ = ["ChunkReader", "Endpoint"]

# Stores what a chunk tells about the call; returns True when the chunk must be hidden from the user (the usage
# chunk costspan asked for on the user's behalf).
ChunkReader = Callable[[Call, Any], bool]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One SDK method to patch and how to read it.

    ``start`` fills the call's request fields (provider, model, stream, attributes, prompt) from the method's
    instance and keyword arguments and returns the keyword arguments to send (a copy when it changes them); it
    may choose another chunk reader for this call (``call.read_chunk``). ``read_response`` stores a complete
    response's fields and usage on the call; ``read_chunk`` does the same for one stream chunk. ``usage_only``
    tells whether a chunk is the usage chunk costspan may have asked for, so that it stays hidden even when
    reading it failed. ``end_stream`` reads, once, what a stream's reader left for the end (the last chunk, a
    chunk count). ``lazy``: the method returns a generator that sends its request only when first iterated
    (google-genai's sync stream); the traced call reads the first chunk itself, so that a request that fails,
    fails the call as it does with the other SDKs, and is not billed as a stream that was answered.
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
    lazy: bool = False
