"""Anthropic (and its Bedrock and Vertex AI clients): which methods carry a billable request, where their usage
lives, and how costspan's span and the SDK's own span live together.

Patched methods, sync and async, of ``messages`` and ``beta.messages``: ``create``, ``parse`` and
``count_tokens`` post one request each. ``stream()`` posts nothing itself: its manager posts when it is
entered, so the patch hands the manager a traced request function; the span starts with that request and the
``MessageStream`` reads costspan's stream proxy, which the helper's ``close()`` closes (so no helper close is
patched). The Bedrock and Vertex beta resources copy the first-party functions at import, so they are patched
too; their non-beta resources are the first-party classes. The provider name is the one the SDK gives the
client (``anthropic``, ``aws.bedrock``, ``gcp.vertex_ai``); pricing maps platform model ids to their prices.

Usage: Anthropic's ``input_tokens`` leave out cache reads and writes; costspan's include them. A stream reports
its input and cache counts at ``message_start`` and cumulative counts at every ``message_delta``, which
overwrite (never add to) what is known; an interrupted stream keeps its exact input and estimates its output.
Thinking is part of ``output_tokens``; it is reported as reasoning only when the API breaks it out.

The SDK's own span: anthropic>=2 traces its calls itself (scope ``com.anthropic.sdk.python``) and puts
``gen_ai.usage.*`` on that span. For every call costspan instruments, costspan's span replaces the SDK's: while
costspan's call sends its request, the SDK's span factory returns costspan's span context unrecorded, which the
SDK treats like a span its sampler dropped: it records and exports nothing, and still propagates the trace
context (now naming costspan's span) if its ``propagation`` option says so. A backend summing usage or cost over
spans thus sees each call once, whatever the SDK's ``open_telemetry`` option or ``ANTHROPIC_OPEN_TELEMETRY`` says;
the SDK's other calls (files, batches, models, ...) keep their spans. Keeping both spans and stripping usage from
one would mean rewriting the SDK's span from outside; one span per call is what the semantic conventions and
costspan's ledger expect.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Generator, Mapping
from functools import partial
from typing import Any

from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai

from .. import _content as content
from .._call import Call, in_call
from .._endpoint import Endpoint
from .._pipeline import Pipeline
from .._wrap import Wrapper, make_wrapper
from ._common import count_of, detail_count, is_raw, is_record, list_of, request_attributes, server_of, text_of

__all__ = ["PACKAGE", "REQUIREMENT", "endpoints", "helper_closes", "message_parts", "wrappers"]

ANTHROPIC = "anthropic"
# The SDK versions costspan instruments (pyproject's anthropic extra says the same); see the instrumentor.
REQUIREMENT = "anthropic>=2,<3"
# The package whose import patches it (instrument() imports no SDK the application has not imported).
PACKAGE = "anthropic"

_MESSAGES = "anthropic.resources.messages.messages"
_BETA_MESSAGES = "anthropic.resources.beta.messages.messages"
_BEDROCK_BETA = "anthropic.lib.bedrock._beta_messages"
_VERTEX_BETA = "anthropic.lib.vertex._beta_messages"
# (module, has count_tokens): Bedrock does not count tokens.
_RESOURCES = ((_MESSAGES, True), (_BETA_MESSAGES, True), (_BEDROCK_BETA, False), (_VERTEX_BETA, True))
_SYNC_ASYNC = ((False, ""), (True, "Async"))

# The names the SDK's own span uses, kept so that what it recorded is not lost with it.
REQUEST_SERVICE_TIER = "anthropic.request.service_tier"
RESPONSE_SERVICE_TIER = "anthropic.response.service_tier"
COUNT_TOKENS_INPUT = "anthropic.message.count_tokens.input_tokens"

# The field of each content delta that holds generated text: text, thinking and tool input are all output.
_DELTA_TEXT = {"text_delta": "text", "thinking_delta": "thinking", "input_json_delta": "partial_json"}


def _provider(client: Any) -> str:
    # The SDK names its platform clients' gen_ai.provider.name itself (aws.bedrock, gcp.vertex_ai).
    name = getattr(client, "_gen_ai_provider_name", ANTHROPIC)
    return name if isinstance(name, str) else ANTHROPIC


def _sent(kwargs: dict[str, Any]) -> Mapping[str, Any]:
    """The request's parameters as sent: sampling parameters (temperature, top_p, top_k) are no keyword arguments
    of anthropic>=2's methods, so they come in ``extra_body``, whose values win over the keyword arguments."""
    extra = kwargs.get("extra_body")
    return {**kwargs, **extra} if isinstance(extra, Mapping) else kwargs


def _begin(call: Call, instance: Any, kwargs: dict[str, Any]) -> Mapping[str, Any]:
    """Fill what every call shares; return the parameters as sent."""
    client = instance._client
    sent = _sent(kwargs)
    call.provider = _provider(client)
    model = sent.get("model")
    call.model = model if isinstance(model, str) else ""
    call.raw = is_raw(kwargs)
    call.prompt = (sent.get("system"), sent.get("messages"))
    attributes = request_attributes(call.operation, call.provider, call.model, server_of(client), sent)
    # The SDK's span would have carried the client's conversation id; costspan's replaces it.
    conversation = getattr(getattr(client, "_otel", None), "conversation_id", None)
    if isinstance(conversation, str):
        attributes[gen_ai.GEN_AI_CONVERSATION_ID] = conversation
    call.attributes = attributes
    return sent


def _begin_message(call: Call, instance: Any, kwargs: dict[str, Any], stream: bool | None) -> None:
    sent = _begin(call, instance, kwargs)
    call.stream = sent.get("stream") is True if stream is None else stream
    attributes = call.attributes
    max_tokens = sent.get("max_tokens")
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        attributes[gen_ai.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
        call.max_output_tokens = max_tokens
    tier = sent.get("service_tier")
    if isinstance(tier, str):
        attributes[REQUEST_SERVICE_TIER] = tier
    attributes[gen_ai.GEN_AI_REQUEST_STREAM] = call.stream
    if call.options.capture_content:
        _capture_input(call, sent)


def _capture_input(call: Call, sent: Mapping[str, Any]) -> None:
    """The request's messages and system prompt; a stream's reader then also keeps the output text."""
    system = sent.get("system")
    instructions = [content.text_part(system)] if isinstance(system, str) else message_parts(system) or None
    messages = [
        content.message(content.field(item, "role"), message_parts(content.field(item, "content")))
        for item in content.items(sent.get("messages"))
    ]
    call.content = content.Content(messages, instructions)
    if call.stream:
        call.read_chunk = _read_event_keeping_text


def message_parts(blocks: Any) -> list[dict[str, Any]]:
    """Anthropic's content blocks (or a string), also those of InvokeModel bodies on Bedrock, in the semantic
    conventions' parts: text, tool calls and tool results; other blocks (images, documents, thinking) by type only."""
    if isinstance(blocks, str):
        return [content.text_part(blocks)]
    parts = []
    for block in content.items(blocks):
        kind, text = content.field(block, "type"), content.field(block, "text")
        if isinstance(text, str):
            parts.append(content.text_part(text))
        elif kind in ("tool_use", "server_tool_use"):
            name, arguments = content.field(block, "name"), content.field(block, "input")
            parts.append(content.tool_call_part(content.field(block, "id"), name, arguments))
        elif kind == "tool_result":
            given = content.field(block, "content")
            result = given if isinstance(given, str) else message_parts(given)
            parts.append(content.tool_response_part(content.field(block, "tool_use_id"), result))
        else:
            parts.append(content.part_of_type(kind))
    return parts


def _read_event_keeping_text(call: Call, event: Any) -> bool:
    if event.type == "content_block_delta" and event.delta.type == "text_delta":
        call.content.stream_text(event.delta.text)
    return _read_event(call, event)


def _start_message(call: Call, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    _begin_message(call, instance, kwargs, stream=None)
    return kwargs


def _start_stream_helper(call: Call, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    _begin_message(call, instance, kwargs, stream=True)  # stream() always streams; its arguments do not say so
    return kwargs


def _start_count(call: Call, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    call.billed = False  # token counting is free
    _begin(call, instance, kwargs)
    return kwargs


def _read_input(call: Call, usage: Any, first: bool) -> None:
    """Input and cache counts. The first report (a message's usage, message_start's) must give ``input_tokens``;
    message_delta may repeat any of them, and one that is absent or null keeps what is known. A count that is
    unusable keeps what is known too and marks the call's usage estimated; until each part is known, the total
    is only a floor, which the settlement completes with an estimate from the request."""
    read, write, given = call.cache_read_tokens, call.cache_write_tokens, usage.input_tokens
    uncached = _input_part(call, "input_tokens", given, call.input_tokens - read - write, first)
    read = _input_part(call, "cache_read_input_tokens", usage.cache_read_input_tokens, read, False)
    write = _input_part(call, "cache_creation_input_tokens", usage.cache_creation_input_tokens, write, False)
    call.cache_read_tokens, call.cache_write_tokens = read, write
    call.input_tokens = uncached + read + write
    # Exact once input_tokens has been given (a message_delta before any message_start may not give it) and no
    # part is still unknown.
    call.input_seen = (call.input_seen or given is not None) and not call.state


def _input_part(call: Call, field: str, value: Any, known: int, required: bool) -> int:
    """One part of the input: what ``value`` reports, else what is ``known``. The parts still unknown (given
    unusable, or required and not given) are kept in ``call.state``, which only a malformed usage ever sets."""
    if value is None and not required:
        return known
    count = count_of(call, field, value, required)
    unknown: frozenset[str] = call.state or frozenset()
    if count is None:
        call.state = unknown | {field}
        return known
    if field in unknown:
        call.state = unknown - {field}
    return count


def _read_cache_ttl_and_tier(call: Call, usage: Any) -> None:
    """What only a full Usage (a response's or message_start's) carries: the one-hour cache writes and the tier."""
    creation = usage.cache_creation
    if is_record(call, "cache_creation", creation):
        call.cache_write_1h_tokens = detail_count(
            call, "cache_creation.ephemeral_1h_input_tokens", creation.ephemeral_1h_input_tokens
        )
    tier = usage.service_tier
    if tier and isinstance(tier, str):
        call.service_tier = tier
        call.set_response_attribute(RESPONSE_SERVICE_TIER, tier)
    if getattr(usage, "speed", None) == "fast":
        call.service_tier = "fast"  # how pricing names fast mode's prices


def _read_output(call: Call, usage: Any) -> None:
    """Final, cumulative counts: output (thinking included), its thinking part if reported, web searches. An
    unusable output count keeps what an earlier message_delta gave; with none, the settlement estimates it."""
    output_tokens = count_of(call, "output_tokens", usage.output_tokens, required=True)
    details: Any = getattr(usage, "output_tokens_details", None)
    if is_record(call, "output_tokens_details", details):
        call.reasoning_tokens = detail_count(call, "output_tokens_details.thinking_tokens", details.thinking_tokens)
    tools = usage.server_tool_use
    if is_record(call, "server_tool_use", tools):
        call.web_search_requests = detail_count(call, "server_tool_use.web_search_requests", tools.web_search_requests)
    if output_tokens is not None:
        call.output_tokens = output_tokens
        call.usage_seen = True


def _read_identity(call: Call, message: Any) -> None:
    call.response_id = text_of(getattr(message, "id", None))
    call.response_model = text_of(getattr(message, "model", None))


def _read_message(call: Call, message: Any) -> None:
    _read_identity(call, message)
    reason = text_of(getattr(message, "stop_reason", None))
    if reason:
        call.finish_reasons = [reason]
    usage = getattr(message, "usage", None)
    if is_record(call, "usage", usage):
        _read_input(call, usage, first=True)
        _read_cache_ttl_and_tier(call, usage)
        _read_output(call, usage)
    if not call.usage_seen:
        call.output_parts += _content_texts(message)
    if call.content is not None:
        call.content.output = [content.message("assistant", message_parts(getattr(message, "content", None)), reason)]


def _content_texts(message: Any) -> list[str]:
    """A message's generated text (text, thinking, tool input), to estimate output the usage did not count."""
    texts = []
    for block in list_of(getattr(message, "content", None)):
        text = getattr(block, "text", None) or getattr(block, "thinking", None)
        tool_input = getattr(block, "input", None)
        if isinstance(text, str):
            texts.append(text)
        elif tool_input is not None:
            texts.append(json.dumps(tool_input, default=str))
    return texts


def _read_event(call: Call, event: Any) -> bool:
    kind = event.type
    if kind == "content_block_delta":
        delta = event.delta
        field = _DELTA_TEXT.get(delta.type)
        if field is not None:
            text = getattr(delta, field)
            call.output_parts.append(text)
            if call.watch is not None:  # what a budget's watch compares, per chunk
                call.output_chars += len(text)
    elif kind == "message_start":
        message = event.message
        _read_identity(call, message)
        # Its output count is a placeholder: output is final only from message_delta on.
        if is_record(call, "message_start.usage", message.usage):
            _read_input(call, message.usage, first=True)
            _read_cache_ttl_and_tier(call, message.usage)
    elif kind == "message_delta":
        reason = event.delta.stop_reason
        if reason:
            call.finish_reasons = [reason]
        if is_record(call, "message_delta.usage", event.usage):
            _read_input(call, event.usage, first=False)
            _read_output(call, event.usage)
    return False


def _read_count(call: Call, counted: Any) -> None:
    tokens = counted.input_tokens
    if isinstance(tokens, int):
        call.set_response_attribute(COUNT_TOKENS_INPUT, tokens)


def endpoints() -> list[Endpoint]:
    out: list[Endpoint] = []
    for module, counts_tokens in _RESOURCES:
        for is_async, prefix in _SYNC_ASYNC:
            for method in ("create", "parse"):
                name = f"{prefix}Messages.{method}"
                out.append(Endpoint(module, name, "chat", _start_message, _read_message, _read_event, is_async))
            if counts_tokens:
                name = f"{prefix}Messages.count_tokens"
                out.append(Endpoint(module, name, "count_tokens", _start_count, _read_count, None, is_async))
    return out


def helper_closes() -> list[tuple[str, str, str, bool]]:
    """None: a MessageStream's ``close()`` closes its raw stream, which is costspan's proxy."""
    return []


def wrappers(pipeline: Pipeline) -> list[tuple[str, str, Wrapper]]:
    """The stream helpers, whose request is sent when their manager is entered, and the SDK's span factory."""
    out: list[tuple[str, str, Wrapper]] = [("anthropic._base_client", "start_api_call_span", _without_sdk_span)]
    for module, _ in _RESOURCES:
        for is_async, prefix in _SYNC_ASYNC:
            name = f"{prefix}Messages.stream"
            request = Endpoint(module, name, "chat", _start_stream_helper, _read_message, _read_event, is_async)
            out.append((module, name, _stream_helper(make_wrapper(request, pipeline), is_async, pipeline)))
    return out


def _without_sdk_span(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    """The SDK's span for a call costspan traces: costspan's span context, unrecorded, as if the SDK's span had
    been sampled out. The SDK records and exports nothing on it, and still sends its trace context (now naming
    costspan's span) when its ``propagation`` option says so."""
    if in_call():
        return trace.NonRecordingSpan(trace.get_current_span().get_span_context())
    return wrapped(*args, **kwargs)


def _stream_helper(traced: Wrapper, is_async: bool, pipeline: Pipeline) -> Wrapper:
    def stream(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        manager = wrapped(*args, **kwargs)
        try:
            _trace_request(manager, traced, instance, kwargs, is_async)
        except Exception as failure:
            pipeline.log_failure("tracing a stream helper", failure)
        return manager

    return stream


def _trace_request(manager: Any, traced: Wrapper, instance: Any, kwargs: dict[str, Any], is_async: bool) -> None:
    """Replace the manager's request (a function, or a coroutine for the async manager) by the traced request."""
    state = vars(manager)
    # The manager keeps it in a name-mangled attribute: _MessageStreamManager__api_request and the like.
    name = next((key for key in state if key.endswith("__api_request")), None)
    if name is None:
        raise LookupError(f"{type(manager).__name__} keeps no __api_request")
    request = state[name]
    # traced() reads the call from stream()'s arguments and passes them on; the manager's request takes none.
    send = (lambda *_, **__: request) if is_async else (lambda *_, **__: request())
    traced_request = partial(traced, send, instance, (), kwargs)
    state[name] = _Deferred(traced_request, request) if is_async else traced_request


class _Deferred:
    """What the async manager awaits: the traced request, started only when awaited, so that a manager never
    entered leaves nothing behind but the SDK's own never-awaited coroutine. Once awaited, that coroutine is
    closed if the traced request never awaited it (a budget refused the call), so it does not warn either."""

    __slots__ = ("_request", "_send")

    def __init__(self, send: Callable[[], Any], request: Coroutine[Any, Any, Any]) -> None:
        self._send = send
        self._request = request

    def __await__(self) -> Generator[Any, None, Any]:
        return self._run().__await__()

    async def _run(self) -> Any:
        try:
            return await self._send()
        finally:
            self._request.close()  # a no-op once it has run
