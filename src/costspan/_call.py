"""The state of one instrumented provider call, from request to final usage.

Provider adapters write the request, response and usage fields; the settlement reads them once, when the call
ends. The fields are plain ints and strings so that reading a chunk costs a few attribute stores. A call knows
the pipeline that ends it only through the small :class:`Ender` protocol, so this module imports none of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry.context import Context, create_key, get_value, set_value

from .usage import Usage

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from .config import Options

__all__ = ["Call", "Ender", "Watch", "in_call", "marked_in_call"]

# Marks the context a call's SDK request runs in, so that code the SDK runs meanwhile can tell. A flag, not the
# call itself: the call holds its context, and a cycle would leave every call to the garbage collector.
_IN_CALL = create_key("costspan-in-call")


class Ender(Protocol):
    """What ends a call: settles it once and hands the result to every consumer."""

    def end(self, call: Call, error: BaseException | None, completed: bool | None) -> None: ...

    async def aend(self, call: Call, error: BaseException | None, completed: bool | None) -> None: ...

    def log_failure(self, step: str, failure: BaseException) -> None: ...


class Watch(Protocol):
    """What looks at a stream's usage so far, whenever its text has grown enough: returns the ``output_chars`` at
    which to look again, or closes ``stream`` and raises (a budget stopping the stream)."""

    def check(self, call: Call, stream: Any) -> int: ...

    async def acheck(self, call: Call, stream: Any) -> int: ...


class Call:
    __slots__ = (
        "attributes",
        "billed",
        "cache_read_tokens",
        "cache_write_1h_tokens",
        "cache_write_tokens",
        "choice_count",
        "content",
        "context",
        "end_stream",
        "ender",
        "finish_reasons",
        "finished",
        "first_chunk_ns",
        "hide_usage_chunk",
        "hold",
        "input_audio_tokens",
        "input_seen",
        "input_tokens",
        "is_async",
        "last_chunk",
        "malformed",
        "max_output_tokens",
        "model",
        "operation",
        "options",
        "output_audio_tokens",
        "output_chars",
        "output_parts",
        "output_tokens",
        "prompt",
        "provider",
        "raw",
        "read_chunk",
        "reasoning_tokens",
        "response_attributes",
        "response_id",
        "response_model",
        "runs",
        "service_tier",
        "span",
        "start_ns",
        "state",
        "stream",
        "usage_seen",
        "watch",
        "web_search_requests",
    )

    def __init__(self, ender: Ender, options: Options, operation: str, is_async: bool) -> None:
        self.ender = ender
        self.options = options
        self.provider = ""
        self.operation = operation
        self.is_async = is_async
        self.model = ""
        self.stream = False
        self.raw = False
        # False for requests the provider does not bill (token counting): no usage, cost or token metrics.
        self.billed = True
        # costspan asked for the stream's usage chunk itself, so the user must not see it.
        self.hide_usage_chunk = False
        # Span attributes known before the request is sent (request parameters, server, attribution).
        self.attributes: dict[str, Any] = {}
        # The request's content (messages, input), kept only to estimate tokens if the provider reports none.
        self.prompt: Any = None
        # The request's output bound (max_tokens and the like) and choice count, for budget reservations.
        self.max_output_tokens: int | None = None
        self.choice_count = 1
        self.span: Span | None = None
        self.context: Context | None = None
        self.start_ns = 0
        self.first_chunk_ns = 0
        self.finished = False
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.finish_reasons: list[str] | None = None
        self.service_tier: str | None = None
        # Provider-specific attributes learnt from the response (e.g. openai.response.service_tier).
        self.response_attributes: dict[str, Any] | None = None
        self.input_tokens = 0
        self.output_tokens = 0
        self.cache_read_tokens = 0
        self.cache_write_tokens = 0
        self.cache_write_1h_tokens = 0
        self.reasoning_tokens = 0
        self.input_audio_tokens = 0
        self.output_audio_tokens = 0
        self.web_search_requests = 0
        # usage_seen: the provider's final counts arrived, with a usable output count. input_seen: usable input
        # counts did (Anthropic sends them at message_start, so an interrupted stream still has exact input).
        self.usage_seen = False
        self.input_seen = False
        # A count the provider sent was unusable (null, negative, fractional, a string, too large): the usage
        # is estimated even where the provider's other counts are exact.
        self.malformed = False
        # Streamed text, kept by reference only, to estimate output tokens of an interrupted stream, and, while a
        # budget watches the stream, its length so far: what the watch compares (one addition per chunk) to know
        # when to look again. Readers count it only then: an unwatched stream does not pay for it.
        self.output_parts: list[str] = []
        self.output_chars = 0
        # For readers that keep per-chunk work to a reference and the text, and read the rest when the stream
        # ends (end_stream, called once before the call is settled).
        self.last_chunk: Any = None
        self.read_chunk: Callable[[Call, Any], bool] | None = None
        self.end_stream: Callable[[Call], None] | None = None
        # Whatever else a provider adapter keeps for itself during the call.
        self.state: Any = None
        # The call's budget reservations (costspan._guard.Hold), and what watches its stream's running cost.
        self.hold: Any = None
        self.watch: Watch | None = None
        # The runs (costspan._request.Run: the request, costspan.track blocks) the call counts in.
        self.runs: tuple[Any, ...] = ()
        # Message content for the span (costspan._content.Content), only when content capture is on.
        self.content: Any = None

    def set_response_attribute(self, key: str, value: Any) -> None:
        if self.response_attributes is None:
            self.response_attributes = {key: value}
        else:
            self.response_attributes[key] = value

    def usage(self) -> Usage:
        # Positional, in Usage's field order: a dataclass built from keywords costs twice as much, once per call.
        return Usage(
            self.input_tokens,
            self.output_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
            self.cache_write_1h_tokens,
            self.reasoning_tokens,
            self.input_audio_tokens,
            self.output_audio_tokens,
            self.web_search_requests,
            not self.usage_seen,
        )

    def finish(self, error: BaseException | None = None, completed: bool | None = None) -> None:
        """End the call exactly once; never raises."""
        if not self.finished:
            self.finished = True
            self.ender.end(self, error, completed)

    async def afinish(self, error: BaseException | None = None, completed: bool | None = None) -> None:
        """End the call exactly once from async code, where settling may await its store; never raises."""
        if not self.finished:
            self.finished = True
            await self.ender.aend(self, error, completed)

    def log_failure(self, step: str, failure: BaseException) -> None:
        self.ender.log_failure(step, failure)


def marked_in_call(context: Context) -> Context:
    return set_value(_IN_CALL, True, context)


def in_call() -> bool:
    """Whether the current context is that of an instrumented call's SDK request."""
    return get_value(_IN_CALL) is True
