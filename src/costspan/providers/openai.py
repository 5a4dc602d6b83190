"""OpenAI (and Azure OpenAI): which methods carry a billable request, and where their usage lives.

Only the methods that send the HTTP request are patched: ``chat.completions.stream`` and ``responses.stream``
call ``create`` themselves, and ``parse`` posts directly, so each request yields exactly one span.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv._incubating.attributes import openai_attributes

from .. import _content as content
from .._call import Call
from .._endpoint import ChunkReader, Endpoint
from ._common import (
    count_of,
    detail_count,
    is_raw,
    is_record,
    list_of,
    request_attributes,
    server_of,
    text_of,
)

__all__ = ["PACKAGE", "REQUIREMENT", "endpoints", "helper_closes"]

Starter = Callable[[Call, Any, dict[str, Any]], dict[str, Any]]

OPENAI = "openai"
# The SDK versions costspan instruments (pyproject's openai extra says the same); see the instrumentor.
REQUIREMENT = "openai>=2,<4"
# The package whose import patches it (instrument() imports no SDK the application has not imported).
PACKAGE = "openai"
AZURE = "azure.ai.openai"

_CHAT = "openai.resources.chat.completions.completions"
_RESPONSES = "openai.resources.responses.responses"
_EMBEDDINGS = "openai.resources.embeddings"
_COMPLETIONS = "openai.resources.completions"


def _provider(client: Any) -> str:
    # Azure clients subclass OpenAI; their deployments are priced through the user's model aliases.
    return AZURE if hasattr(client, "_azure_deployment") else OPENAI


def _start(call: Call, instance: Any, kwargs: dict[str, Any], prompt_key: str, stream_options: bool) -> dict[str, Any]:
    client = instance._client
    call.provider = _provider(client)
    model = kwargs.get("model")
    call.model = model if isinstance(model, str) else ""
    call.stream = kwargs.get("stream") is True
    call.raw = is_raw(kwargs)
    call.prompt = kwargs.get(prompt_key)
    attributes = request_attributes(call.operation, call.provider, call.model, server_of(client), kwargs)
    max_tokens = kwargs.get("max_completion_tokens", kwargs.get("max_output_tokens", kwargs.get("max_tokens")))
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        attributes[gen_ai.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
        call.max_output_tokens = max_tokens
    n = kwargs.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n != 1:
        attributes[gen_ai.GEN_AI_REQUEST_CHOICE_COUNT] = n
        call.choice_count = max(n, 1)
    tier = kwargs.get("service_tier")
    if isinstance(tier, str) and tier != "auto":
        attributes[openai_attributes.OPENAI_REQUEST_SERVICE_TIER] = tier
    if call.operation != "embeddings":
        attributes[gen_ai.GEN_AI_REQUEST_STREAM] = call.stream
    call.attributes = attributes
    if stream_options and call.stream and not call.raw and call.options.stream_usage:
        return _with_include_usage(call, kwargs)
    return kwargs


def _with_include_usage(call: Call, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Ask for the final usage chunk the user did not ask for; it is hidden from them again.

    The user's ``stream_options`` is the one the SDK sends: ``extra_body``'s when it has one (the SDK merges
    ``extra_body`` over the body, replacing the keyword's whole), else the keyword's. costspan adds
    ``include_usage`` to that one, so the request carries a single ``stream_options``, and a usage chunk the
    user asked for in either place stays theirs."""
    extra = kwargs.get("extra_body")
    if isinstance(extra, Mapping) and "stream_options" in extra:
        merged = _including_usage(call, extra["stream_options"])
        return kwargs if merged is None else {**kwargs, "extra_body": {**extra, "stream_options": merged}}
    merged = _including_usage(call, kwargs.get("stream_options"))
    return kwargs if merged is None else {**kwargs, "stream_options": merged}


def _including_usage(call: Call, options: Any) -> dict[str, Any] | None:
    """The user's stream options with ``include_usage`` added, or None when they already ask for usage."""
    if isinstance(options, Mapping) and options.get("include_usage") is True:
        return None
    call.hide_usage_chunk = True
    return {**options, "include_usage": True} if isinstance(options, Mapping) else {"include_usage": True}


def _start_chat(call: Call, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    sent = _start(call, instance, kwargs, "messages", stream_options=True)
    if call.stream and call.choice_count > 1:
        # Each chunk carries one choice: every choice's finish reason is in its own last chunk.
        call.read_chunk = _read_chat_choices_chunk
        call.state = {}
    if call.options.capture_content:
        call.content = content.Content([_chat_message(item) for item in content.items(kwargs.get("messages"))])
        _capture_stream(call, _chat_chunk_text)
    return sent


def _start_completion(call: Call, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    sent = _start(call, instance, kwargs, "prompt", stream_options=True)
    if call.options.capture_content:
        prompt = kwargs.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else content.items(prompt)
        parts = [content.text_part(text) for text in prompts if isinstance(text, str)]
        call.content = content.Content([content.message("user", parts)])
        _capture_stream(call, _chat_chunk_text)
    return sent


def _start_responses(call: Call, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    sent = _start(call, instance, kwargs, "input", stream_options=False)
    instructions = kwargs.get("instructions")
    if isinstance(instructions, str):
        call.prompt = [instructions, call.prompt]
    if call.options.capture_content:
        given = kwargs.get("input")
        inputs = [{"role": "user", "content": given}] if isinstance(given, str) else content.items(given)
        system = [content.text_part(instructions)] if isinstance(instructions, str) else None
        call.content = content.Content([_response_item(item) for item in inputs], system)
        _capture_stream(call, _response_event_text)
    return sent


def _capture_stream(call: Call, text_of: Callable[[Any], Any]) -> None:
    """With content capture on, a stream's reader also keeps the output text (``text_of`` a chunk)."""
    reader = call.read_chunk
    if call.stream and reader is not None:
        call.read_chunk = _text_keeping(reader, text_of)


def _text_keeping(reader: ChunkReader, text_of: Callable[[Any], Any]) -> ChunkReader:
    def read(call: Call, chunk: Any) -> bool:
        call.content.stream_text(text_of(chunk))
        return reader(call, chunk)

    return read


def _chat_chunk_text(chunk: Any) -> Any:
    """The first choice's text in a chat or legacy completion chunk."""
    choices = chunk.choices
    if not choices or choices[0].index != 0:
        return None
    choice = choices[0]
    delta = getattr(choice, "delta", None)
    return getattr(delta, "content", None) if delta is not None else getattr(choice, "text", None)


def _response_event_text(event: Any) -> Any:
    return event.delta if event.type == "response.output_text.delta" else None


def _chat_message(item: Any) -> dict[str, Any]:
    """A chat message the user sent, in the semantic conventions' parts."""
    role, given = content.field(item, "role"), content.field(item, "content")
    if role == "tool":
        return content.message(role, [content.tool_response_part(content.field(item, "tool_call_id"), given)])
    parts = _content_parts(given)
    for tool in content.items(content.field(item, "tool_calls")):
        function = content.field(tool, "function")
        name, arguments = content.field(function, "name"), content.field(function, "arguments")
        parts.append(content.tool_call_part(content.field(tool, "id"), name, arguments))
    return content.message(role, parts)


def _content_parts(given: Any) -> list[dict[str, Any]]:
    """A message's content, a string or a list of parts: text kept, other parts (images, audio, files) by type."""
    if isinstance(given, str):
        return [content.text_part(given)]
    parts = []
    for part in content.items(given):
        text = content.field(part, "text")
        kind = content.field(part, "type")
        parts.append(content.text_part(text) if isinstance(text, str) else content.part_of_type(kind))
    return parts


def _response_item(item: Any) -> dict[str, Any]:
    """A Responses API input item: a message, a function call or its output."""
    kind = content.field(item, "type")
    if kind == "function_call_output":
        return content.message(
            "tool", [content.tool_response_part(content.field(item, "call_id"), content.field(item, "output"))]
        )
    if kind == "function_call":
        part = content.tool_call_part(
            content.field(item, "call_id"), content.field(item, "name"), content.field(item, "arguments")
        )
        return content.message("assistant", [part])
    return content.message(content.field(item, "role"), _content_parts(content.field(item, "content")))


def _capture_chat_output(call: Call, response: Any) -> None:
    """Each choice of a complete chat or legacy completion, as an output message."""
    messages = []
    for choice in content.items(response.choices):
        reply = getattr(choice, "message", None)
        if reply is None:
            parts = _content_parts(getattr(choice, "text", None))
        else:
            parts = _content_parts(reply.content) + _content_parts(getattr(reply, "refusal", None))
            for tool in reply.tool_calls or ():
                function = getattr(tool, "function", None)
                parts.append(
                    content.tool_call_part(
                        tool.id, getattr(function, "name", None), getattr(function, "arguments", None)
                    )
                )
        messages.append(content.message("assistant", parts, choice.finish_reason or ""))
    call.content.output = messages


def _capture_response_output(call: Call, response: Any) -> None:
    """A complete Responses API response's messages and function calls, as one output message."""
    parts: list[dict[str, Any]] = []
    for item in content.items(response.output):
        if item.type == "function_call":
            parts.append(content.tool_call_part(item.call_id, item.name, item.arguments))
        for part in content.items(getattr(item, "content", None)):
            text = getattr(part, "text", None) or getattr(part, "refusal", None)
            parts.append(content.text_part(text) if isinstance(text, str) else content.part_of_type(part.type))
    reason = call.finish_reasons[0] if call.finish_reasons else None
    call.content.output = [content.message("assistant", parts, reason)]


def _start_embeddings(call: Call, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    return _start(call, instance, kwargs, "input", stream_options=False)


def _read_chat_usage(call: Call, usage: Any) -> None:
    """CompletionUsage (chat and legacy completions), field by field: a total that is missing or unusable is left
    for the settlement to estimate (input from the request, output from the text), a detail that is unusable
    counts 0; either marks the call's usage estimated. What a later usage object repeats overwrites."""
    if not is_record(call, "usage", usage):
        return
    input_tokens = count_of(call, "prompt_tokens", usage.prompt_tokens, required=True)
    output_tokens = count_of(call, "completion_tokens", usage.completion_tokens, required=True)
    details = usage.prompt_tokens_details
    if is_record(call, "prompt_tokens_details", details):
        call.cache_read_tokens = detail_count(call, "prompt_tokens_details.cached_tokens", details.cached_tokens)
        call.cache_write_tokens = detail_count(
            call, "prompt_tokens_details.cache_write_tokens", getattr(details, "cache_write_tokens", None)
        )
        call.input_audio_tokens = detail_count(call, "prompt_tokens_details.audio_tokens", details.audio_tokens)
    details = usage.completion_tokens_details
    if is_record(call, "completion_tokens_details", details):
        call.reasoning_tokens = detail_count(
            call, "completion_tokens_details.reasoning_tokens", details.reasoning_tokens
        )
        call.output_audio_tokens = detail_count(call, "completion_tokens_details.audio_tokens", details.audio_tokens)
    _read_totals(call, input_tokens, output_tokens)


def _read_totals(call: Call, input_tokens: int | None, output_tokens: int | None) -> None:
    """The totals that are usable, last: a reader that failed half-way leaves the call estimated, not exact."""
    if input_tokens is not None:
        call.input_tokens = input_tokens
        call.input_seen = True
    if output_tokens is not None:
        call.output_tokens = output_tokens
        call.usage_seen = True


def _read_identity(call: Call, response: Any) -> None:
    call.response_id = text_of(getattr(response, "id", None))
    call.response_model = text_of(getattr(response, "model", None))
    tier = text_of(getattr(response, "service_tier", None))
    if tier:
        call.service_tier = tier
        call.set_response_attribute(openai_attributes.OPENAI_RESPONSE_SERVICE_TIER, tier)


def _read_chat_response(call: Call, response: Any) -> None:
    _read_identity(call, response)
    choices = list_of(getattr(response, "choices", None))
    call.finish_reasons = [text_of(getattr(choice, "finish_reason", None)) or "" for choice in choices]
    _read_chat_usage(call, getattr(response, "usage", None))
    if not call.usage_seen:
        call.output_parts += [text for choice in choices for text in _choice_texts(choice)]
    if call.content is not None:
        _capture_chat_output(call, response)


def _choice_texts(choice: Any) -> list[str]:
    """The generated text of a chat or legacy completion choice, to estimate output the usage did not count."""
    message = getattr(choice, "message", None)
    if message is None:
        texts = [getattr(choice, "text", None)]
    else:
        calls = list_of(getattr(message, "tool_calls", None))
        functions = [getattr(tool, "function", None) for tool in calls]
        texts = [getattr(message, "content", None), getattr(message, "refusal", None)]
        texts += [getattr(function, "arguments", None) for function in functions]
    return [text for text in texts if isinstance(text, str)]


def _read_chat_chunk(call: Call, chunk: Any) -> bool:
    """Per chunk, only what cannot wait: the text (however many tokens a chunk carries: gateways batch them) and
    the usage chunk. The rest is read from the last chunk at the end. A chunk carries one choice but for the
    first (Azure's filter results) and the usage chunk: unpacking it costs a fraction of a loop."""
    try:
        (choice,) = chunk.choices
    except (TypeError, ValueError):
        _read_chat_deltas(call, chunk.choices)
    else:  # _read_chat_delta, inlined: a function call per chunk costs what the reading does
        delta = choice.delta
        text = delta.content
        if text:
            call.output_parts.append(text)
            if call.watch is not None:  # what a budget's watch compares, per chunk
                call.output_chars += len(text)
        elif delta.tool_calls:
            _read_tool_call_text(call, delta.tool_calls)
    usage = chunk.usage
    if usage is None:  # every chunk but the usage chunk: checked here, a function call less per chunk
        call.last_chunk = chunk
        return False
    return _read_usage_chunk(call, chunk, usage)


def _read_chat_deltas(call: Call, choices: Any) -> None:
    """A chat chunk with no choice, or several (a gateway merging chunks)."""
    for choice in choices:
        _read_chat_delta(call, choice.delta)


def _read_chat_delta(call: Call, delta: Any) -> None:
    text = delta.content
    if text:
        call.output_parts.append(text)
        if call.watch is not None:
            call.output_chars += len(text)
    elif delta.tool_calls:
        _read_tool_call_text(call, delta.tool_calls)


def _read_completion_chunk(call: Call, chunk: Any) -> bool:
    for choice in chunk.choices:
        text = choice.text
        if text:
            call.output_parts.append(text)
            if call.watch is not None:
                call.output_chars += len(text)
    usage = chunk.usage
    if usage is None:
        call.last_chunk = chunk
        return False
    return _read_usage_chunk(call, chunk, usage)


def _read_usage_chunk(call: Call, chunk: Any, usage: Any) -> bool:
    _read_chat_usage(call, usage)
    if chunk.choices:
        call.last_chunk = chunk
        return False
    return call.hide_usage_chunk


def _read_tool_call_text(call: Call, tool_calls: Any) -> None:
    for tool in tool_calls:
        function = tool.function
        text = None if function is None else function.arguments
        if text:
            call.output_parts.append(text)
            if call.watch is not None:
                call.output_chars += len(text)


def _read_chat_choices_chunk(call: Call, chunk: Any) -> bool:
    """For n > 1 choices: also each choice's finish reason, by index."""
    for choice in chunk.choices:
        if choice.finish_reason:
            call.state[choice.index] = choice.finish_reason
    return _read_chat_chunk(call, chunk)


def _end_chat_stream(call: Call) -> None:
    """Identity and finish reasons from the last content chunk (with n > 1 choices, each choice's by index). An
    interrupted stream's output is estimated from its text when it is settled."""
    last = call.last_chunk
    if last is None:
        return
    _read_identity(call, last)
    if call.state:
        reasons = [call.state[index] for index in sorted(call.state)]
    else:  # the last chunk may be one no chat stream sends (an event of a type the SDK does not know)
        choices = last.choices if isinstance(last.choices, list) else ()
        reasons = [choice.finish_reason for choice in choices if choice.finish_reason]
    if reasons:
        call.finish_reasons = reasons


def _read_responses_usage(call: Call, usage: Any) -> None:
    """The Responses API's usage, field by field, as :func:`_read_chat_usage` reads chat's."""
    if not is_record(call, "usage", usage):
        return
    input_tokens = count_of(call, "input_tokens", usage.input_tokens, required=True)
    output_tokens = count_of(call, "output_tokens", usage.output_tokens, required=True)
    details = usage.input_tokens_details
    if is_record(call, "input_tokens_details", details):
        call.cache_read_tokens = detail_count(call, "input_tokens_details.cached_tokens", details.cached_tokens)
        call.cache_write_tokens = detail_count(
            call, "input_tokens_details.cache_write_tokens", getattr(details, "cache_write_tokens", None)
        )
    details = usage.output_tokens_details
    if is_record(call, "output_tokens_details", details):
        call.reasoning_tokens = detail_count(call, "output_tokens_details.reasoning_tokens", details.reasoning_tokens)
    _read_totals(call, input_tokens, output_tokens)


def _read_responses_response(call: Call, response: Any) -> None:
    _read_identity(call, response)
    reason = text_of(getattr(getattr(response, "incomplete_details", None), "reason", None))
    reason = reason or text_of(getattr(response, "status", None))
    if reason:
        call.finish_reasons = [reason]
    _read_responses_usage(call, getattr(response, "usage", None))
    if not call.usage_seen and not call.stream:  # a stream's text is in its deltas
        call.output_parts += _response_texts(response)
    if call.content is not None:
        _capture_response_output(call, response)


def _response_texts(response: Any) -> list[str]:
    """The text of a response's messages, to estimate output the usage did not count."""
    items = list_of(getattr(response, "output", None))
    parts = [part for item in items for part in getattr(item, "content", None) or ()]
    return [text for part in parts if isinstance(text := getattr(part, "text", None), str)]


_FINAL_RESPONSE_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


def _read_responses_event(call: Call, event: Any) -> bool:
    kind = event.type
    if kind == "response.output_text.delta":
        call.output_parts.append(event.delta)
        if call.watch is not None:
            call.output_chars += len(event.delta)
    elif kind == "response.created":
        _read_identity(call, event.response)
    elif kind in _FINAL_RESPONSE_EVENTS:
        _read_responses_response(call, event.response)
    return False


def _is_usage_only(chunk: Any) -> bool:
    return not chunk.choices and chunk.usage is not None


def _read_embeddings_response(call: Call, response: Any) -> None:
    call.response_model = text_of(getattr(response, "model", None))
    usage: Any = getattr(response, "usage", None)
    if is_record(call, "usage", usage):
        input_tokens = count_of(call, "prompt_tokens", usage.prompt_tokens, required=True)
        # Embeddings generate no output: a usage object is all the provider has to say.
        _read_totals(call, input_tokens, 0)


def _chunked(
    module: str, name: str, operation: str, start: Starter, read_chunk: ChunkReader, is_async: bool
) -> Endpoint:
    # Chat and legacy completion chunks share their shape: choices, then an optional usage-only chunk.
    return Endpoint(
        module,
        name,
        operation,
        start,
        _read_chat_response,
        read_chunk,
        is_async,
        _is_usage_only,
        _end_chat_stream,
    )


def endpoints() -> list[Endpoint]:
    out: list[Endpoint] = []
    for is_async, prefix in ((False, ""), (True, "Async")):
        out += [
            _chunked(_CHAT, f"{prefix}Completions.create", "chat", _start_chat, _read_chat_chunk, is_async),
            Endpoint(_CHAT, f"{prefix}Completions.parse", "chat", _start_chat, _read_chat_response,
                     is_async=is_async),
            Endpoint(_RESPONSES, f"{prefix}Responses.create", "chat", _start_responses, _read_responses_response,
                     _read_responses_event, is_async),
            Endpoint(_RESPONSES, f"{prefix}Responses.parse", "chat", _start_responses, _read_responses_response,
                     is_async=is_async),
            Endpoint(_EMBEDDINGS, f"{prefix}Embeddings.create", "embeddings", _start_embeddings,
                     _read_embeddings_response, is_async=is_async),
            _chunked(_COMPLETIONS, f"{prefix}Completions.create", "text_completion", _start_completion,
                     _read_completion_chunk, is_async),
        ]  # fmt: skip
    return out


def helper_closes() -> list[tuple[str, str, str, bool]]:
    """(module, method, attribute holding the raw stream, is_async) for the SDK's stream helpers, whose
    ``close()`` closes the HTTP response directly rather than the stream costspan proxies."""
    chat = "openai.lib.streaming.chat._completions"
    responses = "openai.lib.streaming.responses._responses"
    return [
        (chat, "ChatCompletionStream.close", "_raw_stream", False),
        (chat, "AsyncChatCompletionStream.close", "_raw_stream", True),
        (responses, "ResponseStream.close", "_raw_stream", False),
        (responses, "AsyncResponseStream.close", "_raw_stream", True),
    ]
