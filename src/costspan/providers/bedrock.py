"""Amazon Bedrock through boto3's ``bedrock-runtime`` client (``aws.bedrock``): Converse, ConverseStream,
InvokeModel and InvokeModelWithResponseStream.

Every botocore client sends its operations through ``BaseClient._make_api_call(operation_name, api_params)``;
botocore builds client classes at run time, so that one method is what there is to patch, and patching it covers
clients created before ``instrument()`` too. The patch looks at the client's service and the operation first:
anything but a traced ``bedrock-runtime`` operation goes straight through, untouched. A traced one becomes one call
of the shared machinery, whose request is the operation's parameters; a streaming operation's result is a dict whose
``stream`` is the event stream costspan proxies (and puts back in the dict the user gets).

Usage: Converse's ``usage`` (``inputTokens`` without cache reads and writes, which costspan adds, as for
Anthropic), ConverseStream's in its closing ``metadata`` event. InvokeModel's body is the model's own (Anthropic,
Llama, Mistral, Nova, ...) and is the user's to read: its counts come from Bedrock's ``X-Amzn-Bedrock-*-Token-Count``
response headers, which every model has. Only when they are missing (a proxy that drops them) is the body read, and
put back unread for the user, for the counts its family carries (Anthropic's ``usage``, Nova's ``usage``, Llama's
``prompt_token_count`` and ``generation_token_count``; Mistral's body has none, so its text makes an estimate),
its text and stop reason. With content capture on, the body is read so too, for the output and the stop reason.
InvokeModelWithResponseStream's counts come from the ``amazon-bedrock-invocationMetrics`` of its last chunk, and its
text and stop reason from each chunk's body (the shapes of Anthropic, Llama, Mistral and Nova). A stream that ends
before its counts has exact nothing: input is estimated from the request, output from the text streamed.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv._incubating.attributes.aws_attributes import AWS_REQUEST_ID

from .. import _content as content
from .._call import Call
from .._endpoint import Endpoint
from .._pipeline import Pipeline
from .._wrap import Wrapper, make_wrapper
from ..usage import token_count
from ._common import count_of, detail_count, malformed, request_attributes, server_of_url
from .anthropic import message_parts

__all__ = ["PACKAGE", "REQUIREMENT", "endpoints", "helper_closes", "wrappers"]

# The botocore versions costspan instruments (1.38 on: older ones drop Converse's cache counts); pyproject's
# bedrock extra says the same.
REQUIREMENT = "botocore>=1.38,<2"
# The package whose import patches it (instrument() imports no SDK the application has not imported).
PACKAGE = "botocore"
BEDROCK = "aws.bedrock"
SERVICE = "bedrock-runtime"

_CLIENT = "botocore.client"


def _start(call: Call, instance: Any, kwargs: dict[str, Any], stream: bool) -> dict[str, Any]:
    params = kwargs["params"]
    call.provider = BEDROCK
    model = params.get("modelId")
    call.model = model if isinstance(model, str) else ""
    call.stream = stream
    call.prompt = (params.get("system"), params.get("messages"))
    config = params.get("inferenceConfig")
    config = config if isinstance(config, Mapping) else {}
    sent = {"temperature": config.get("temperature"), "top_p": config.get("topP"), "stop": config.get("stopSequences")}
    server = server_of_url(instance.meta.endpoint_url)
    attributes = request_attributes(call.operation, call.provider, call.model, server, sent)
    max_tokens = config.get("maxTokens")
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        attributes[gen_ai.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
        call.max_output_tokens = max_tokens
    attributes[gen_ai.GEN_AI_REQUEST_STREAM] = stream
    call.attributes = attributes
    return kwargs


def _start_converse(call: Call, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    _capture_input(call, kwargs["params"])
    return _start(call, instance, kwargs, stream=False)


def _start_converse_stream(call: Call, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    _capture_input(call, kwargs["params"])
    if call.content is not None:
        call.read_chunk = _read_event_keeping_text
    return _answered(call, _start(call, instance, kwargs, stream=True))


def _capture_input(call: Call, params: Mapping[str, Any]) -> None:
    """With content capture on: Converse's messages and system prompt, in the conventions' parts."""
    if not call.options.capture_content:
        return
    messages = [
        content.message(content.field(item, "role"), _parts(content.field(item, "content")))
        for item in content.items(params.get("messages"))
    ]
    call.content = content.Content(messages, _parts(params.get("system")) or None)


def _parts(blocks: Any) -> list[dict[str, Any]]:
    """Converse content blocks as the conventions' parts: text, tool uses and results; other blocks (images,
    documents, reasoning, cache points) by their kind only."""
    parts = []
    for block in content.items(blocks):
        if not isinstance(block, Mapping):
            continue
        text, use, result = block.get("text"), block.get("toolUse"), block.get("toolResult")
        if isinstance(text, str):
            parts.append(content.text_part(text))
        elif isinstance(use, Mapping):
            parts.append(content.tool_call_part(use.get("toolUseId"), use.get("name"), use.get("input")))
        elif isinstance(result, Mapping):
            parts.append(content.tool_response_part(result.get("toolUseId"), _parts(result.get("content"))))
        else:
            parts.append(content.part_of_type(next(iter(block), None)))
    return parts


def _read_event_keeping_text(call: Call, event: Any) -> bool:
    delta = event.get("contentBlockDelta")
    if delta is not None:
        call.content.stream_text(delta.get("delta", {}).get("text"))
    return _read_event(call, event)


def _answered(call: Call, kwargs: dict[str, Any]) -> dict[str, Any]:
    """A streaming operation's send also hands back the response around the stream, whose metadata (the request
    id) the stream's reader never sees."""
    return {**kwargs, "answered": lambda response: _read_metadata(call, response)}


def _read_usage(call: Call, usage: Any) -> None:
    """Converse's TokenUsage, field by field (botocore does not check a response's numbers)."""
    if usage is None:
        return
    if not isinstance(usage, Mapping):
        malformed(call, "usage", usage, "an object")
        return
    uncached = count_of(call, "inputTokens", usage.get("inputTokens"), required=True)
    output = count_of(call, "outputTokens", usage.get("outputTokens"), required=True)
    call.cache_read_tokens = detail_count(call, "cacheReadInputTokens", usage.get("cacheReadInputTokens"))
    call.cache_write_tokens = detail_count(call, "cacheWriteInputTokens", usage.get("cacheWriteInputTokens"))
    if uncached is not None:
        call.input_tokens = uncached + call.cache_read_tokens + call.cache_write_tokens
        call.input_seen = True
    if output is not None:
        call.output_tokens = output
        call.usage_seen = True


def _read_metadata(call: Call, response: Mapping[str, Any]) -> None:
    """Bedrock's request id (x-amzn-requestid) as ``aws.request_id``, the attribute the semantic conventions and
    OpenTelemetry's botocore instrumentation give it. Not ``gen_ai.response.id``: that is the completion's own id,
    which Bedrock's responses do not carry (Converse's has none; an InvokeModel body's is the model's, unread)."""
    metadata = response.get("ResponseMetadata")
    request_id = metadata.get("RequestId") if isinstance(metadata, Mapping) else None
    if isinstance(request_id, str):
        call.set_response_attribute(AWS_REQUEST_ID, request_id)


def _read_converse(call: Call, response: Any) -> None:
    _read_metadata(call, response)
    reason = response.get("stopReason")
    if isinstance(reason, str):
        call.finish_reasons = [reason]
    _read_usage(call, response.get("usage"))
    message = (response.get("output") or {}).get("message") or {}
    if not call.usage_seen:
        call.output_parts += [
            text for block in message.get("content") or () if isinstance(text := block.get("text"), str)
        ]
    if call.content is not None:
        reason = call.finish_reasons[0] if call.finish_reasons else None
        call.content.output = [content.message("assistant", _parts(message.get("content")), reason)]


def _read_event(call: Call, event: Any) -> bool:
    """Per event: the text of a delta (the running cost, and the estimate of an interrupted stream); the stop
    reason and the usage, which come once each, at the end."""
    delta = event.get("contentBlockDelta")
    if delta is not None:
        text = delta.get("delta", {}).get("text")
        if text:
            call.output_parts.append(text)
            if call.watch is not None:  # what a budget's watch compares, per chunk
                call.output_chars += len(text)
        return False
    stop = event.get("messageStop")
    if stop is not None:
        reason = stop.get("stopReason")
        if isinstance(reason, str):
            call.finish_reasons = [reason]
        return False
    metadata = event.get("metadata")
    if metadata is not None:
        _read_usage(call, metadata.get("usage"))
    return False


# An InvokeModel body's output bound, by model family: Anthropic and Mistral, Llama; Nova's is in inferenceConfig,
# as maxTokens (or max_new_tokens, in AWS's first Nova examples); so are its topP and top_p.
_MAX_TOKENS_KEYS = ("max_tokens", "max_gen_len", "maxTokens", "max_new_tokens")
_HEADER = "x-amzn-bedrock-{}-token-count"


def _invoke_body(params: Mapping[str, Any]) -> dict[str, Any]:
    """The request body InvokeModel sends (bytes or a string of JSON), parsed once per call; {} if it is not."""
    body = params.get("body")
    try:
        parsed = json.loads(body) if isinstance(body, (bytes, str)) else None
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _start_invoke(call: Call, instance: Any, kwargs: dict[str, Any], stream: bool) -> dict[str, Any]:
    body = _invoke_body(kwargs["params"])
    nova = body.get("inferenceConfig")
    config = nova if isinstance(nova, dict) else body
    bound = next((config[key] for key in _MAX_TOKENS_KEYS if key in config), None)
    request = {"messages": body.get("messages", body.get("prompt")), "system": body.get("system")}
    sent = {
        "modelId": kwargs["params"].get("modelId"),
        **request,
        "inferenceConfig": {
            "maxTokens": bound,
            "temperature": config.get("temperature"),
            "topP": config.get("topP", config.get("top_p")),
        },
    }
    _start(call, instance, {"params": sent}, stream)
    _capture_invoke_input(call, body)
    return kwargs


def _capture_invoke_input(call: Call, body: Mapping[str, Any]) -> None:
    """With content capture on: an InvokeModel body's messages and system prompt (Anthropic's Messages shape, or
    Nova's, which is Converse's), or its prompt string (Llama, Mistral) as one user message."""
    if not call.options.capture_content:
        return
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        call.content = content.Content([content.message("user", [content.text_part(prompt)])])
    else:
        parts = message_parts if "anthropic_version" in body else _parts
        messages = [
            content.message(content.field(item, "role"), parts(content.field(item, "content")))
            for item in content.items(body.get("messages"))
        ]
        call.content = content.Content(messages, parts(body.get("system")) or None)
    if call.stream:
        call.read_chunk = _read_invoke_chunk_keeping_text


def _start_invoke_plain(call: Call, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    return _start_invoke(call, instance, kwargs, stream=False)


def _start_invoke_stream(call: Call, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    return _answered(call, _start_invoke(call, instance, kwargs, stream=True))


def _header_count(call: Call, headers: Mapping[str, Any], kind: str, required: bool) -> int | None:
    value = headers.get(_HEADER.format(kind))
    if value is None:
        return count_of(call, _HEADER.format(kind), None, required)
    count = token_count(int(value)) if isinstance(value, str) and value.isdigit() else None
    return count if count is not None else count_of(call, _HEADER.format(kind), value, required)


def _read_invoke(call: Call, response: Any) -> None:
    """InvokeModel: the counts Bedrock puts in the response headers; the body stays unread for the user unless
    they are missing or content is captured."""
    _read_metadata(call, response)
    headers = (response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
    if _HEADER.format("input") not in headers and _HEADER.format("output") not in headers:
        _read_invoke_body(call, response, counts=True)
        return
    usage = {
        "inputTokens": _header_count(call, headers, "input", required=True),
        "outputTokens": _header_count(call, headers, "output", required=True),
        "cacheReadInputTokens": _header_count(call, headers, "cache-read-input", required=False),
        "cacheWriteInputTokens": _header_count(call, headers, "cache-write-input", required=False),
    }
    _read_usage(call, usage)
    if call.content is not None:
        _read_invoke_body(call, response, counts=False)


def _read_invoke_body(call: Call, response: dict[str, Any], counts: bool) -> None:
    """The body, read whole and put back as an unread StreamingBody of the same bytes (a read that fails raises
    here, is logged, and leaves the body as it is): its stop reason, its counts (``counts``), and its output when
    content is captured."""
    from botocore.response import StreamingBody

    data = response["body"].read()
    response["body"] = StreamingBody(io.BytesIO(data), len(data))
    try:
        decoded = json.loads(data)
    except ValueError:
        decoded = None
    decoded = decoded if isinstance(decoded, dict) else {}
    reason = _chunk_stop_reason(decoded)
    if isinstance(reason, str):
        call.finish_reasons = [reason]
    if counts:
        _read_usage(call, _body_usage(decoded))
    text = _body_text(decoded)
    if not call.usage_seen and isinstance(text, str):
        call.output_parts.append(text)
    if call.content is not None:
        call.content.output = [content.message("assistant", _body_parts(decoded, text), reason)]


def _body_parts(body: Mapping[str, Any], text: Any) -> list[dict[str, Any]]:
    """A complete InvokeModel body's output, in the conventions' parts: Anthropic's content blocks, Nova's
    message, or the one text of Llama's and Mistral's."""
    blocks = body.get("content")
    if isinstance(blocks, list):
        return message_parts(blocks)
    message = (body.get("output") or {}).get("message")
    if isinstance(message, Mapping):
        return _parts(message.get("content"))
    return [content.text_part(text)] if isinstance(text, str) else []


def _body_usage(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """A complete InvokeModel body's counts, in Converse's shape: Anthropic's or Nova's ``usage``, Llama's
    top-level counts; {} for a body that has none (Mistral's)."""
    usage = body.get("usage")
    if isinstance(usage, Mapping) and "input_tokens" in usage:
        return {
            "inputTokens": usage.get("input_tokens"),
            "outputTokens": usage.get("output_tokens"),
            "cacheReadInputTokens": usage.get("cache_read_input_tokens"),
            "cacheWriteInputTokens": usage.get("cache_creation_input_tokens"),
        }
    if isinstance(usage, Mapping):
        return {
            "inputTokens": usage.get("inputTokens"),
            "outputTokens": usage.get("outputTokens"),
            "cacheReadInputTokens": usage.get("cacheReadInputTokenCount"),
            "cacheWriteInputTokens": usage.get("cacheWriteInputTokenCount"),
        }
    return {"inputTokens": body.get("prompt_token_count"), "outputTokens": body.get("generation_token_count")}


def _body_text(body: Mapping[str, Any]) -> Any:
    """A complete InvokeModel body's text: Anthropic's and Nova's first content block, Mistral's first output,
    Llama's generation."""
    content = body.get("content") or ((body.get("output") or {}).get("message") or {}).get("content")
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return content[0].get("text")
    return _chunk_text(body)


_METRICS = "amazon-bedrock-invocationMetrics"


def _chunk_text(event: Mapping[str, Any]) -> Any:
    """The generated text of one model's stream chunk: Anthropic, Nova, Llama, Mistral."""
    delta = event.get("delta") or (event.get("contentBlockDelta") or {}).get("delta")
    if isinstance(delta, dict):
        return delta.get("text") or delta.get("thinking") or delta.get("partial_json")
    outputs = event.get("outputs")
    if isinstance(outputs, list) and outputs and isinstance(outputs[0], dict):
        return outputs[0].get("text")
    return event.get("generation")


def _read_invoke_chunk(call: Call, event: Any) -> bool:
    """Per chunk: its JSON (the user decodes it too), its text, and on the last one Bedrock's invocation metrics."""
    data = (event.get("chunk") or {}).get("bytes")
    if not data:
        return False
    decoded = json.loads(data)
    text = _chunk_text(decoded)
    if isinstance(text, str) and text:
        call.output_parts.append(text)
        if call.watch is not None:
            call.output_chars += len(text)
    reason = _chunk_stop_reason(decoded)
    if isinstance(reason, str):
        call.finish_reasons = [reason]
    metrics = decoded.get(_METRICS)
    if metrics is not None:
        _read_invocation_metrics(call, metrics)
    return False


def _read_invoke_chunk_keeping_text(call: Call, event: Any) -> bool:
    parts = call.output_parts
    seen = len(parts)
    read = _read_invoke_chunk(call, event)
    if len(parts) > seen:
        call.content.stream_text(parts[-1])
    return read


def _chunk_stop_reason(event: Mapping[str, Any]) -> Any:
    """The stop reason one model's chunk (or complete body) carries, if any: Llama's and Anthropic's, Mistral's
    output's, Nova's (messageStop's in a stream), Anthropic's message_delta's."""
    reason = event.get("stop_reason", event.get("stopReason"))
    if reason is not None:
        return reason
    outputs = event.get("outputs")
    if isinstance(outputs, list) and outputs and isinstance(outputs[0], dict):
        return outputs[0].get("stop_reason")
    stop = event.get("messageStop")
    delta = stop if isinstance(stop, dict) else event.get("delta")
    return delta.get("stopReason", delta.get("stop_reason")) if isinstance(delta, dict) else None


def _read_invocation_metrics(call: Call, metrics: Any) -> None:
    if not isinstance(metrics, Mapping):
        malformed(call, _METRICS, metrics, "an object")
        return
    usage = {
        "inputTokens": metrics.get("inputTokenCount"),
        "outputTokens": metrics.get("outputTokenCount"),
        "cacheReadInputTokens": metrics.get("cacheReadInputTokenCount"),
        "cacheWriteInputTokens": metrics.get("cacheWriteInputTokenCount"),
    }
    _read_usage(call, usage)


# operation -> the endpoint that reads it, and the key of its result that holds its event stream (None: no stream).
_OPERATIONS: dict[str, tuple[Endpoint, str | None]] = {
    "Converse": (Endpoint(_CLIENT, "Converse", "chat", _start_converse, _read_converse), None),
    "ConverseStream": (
        Endpoint(_CLIENT, "ConverseStream", "chat", _start_converse_stream, _read_converse, _read_event),
        "stream",
    ),
    "InvokeModel": (Endpoint(_CLIENT, "InvokeModel", "chat", _start_invoke_plain, _read_invoke), None),
    "InvokeModelWithResponseStream": (
        Endpoint(
            _CLIENT, "InvokeModelWithResponseStream", "chat", _start_invoke_stream, _read_invoke, _read_invoke_chunk
        ),
        "body",
    ),
}


def endpoints() -> list[Endpoint]:
    """None patched one by one: every operation goes through one method (see :func:`wrappers`)."""
    return []


def helper_closes() -> list[tuple[str, str, str, bool]]:
    return []


def wrappers(pipeline: Pipeline) -> list[tuple[str, str, Wrapper]]:
    traced = {name: (make_wrapper(endpoint, pipeline), key) for name, (endpoint, key) in _OPERATIONS.items()}
    return [(_CLIENT, "BaseClient._make_api_call", _make_api_call(traced))]


def _make_api_call(traced: dict[str, tuple[Wrapper, str | None]]) -> Wrapper:
    def make_api_call(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        found = _traced_operation(traced, instance, args, kwargs)
        if found is None:
            return wrapped(*args, **kwargs)
        (tracer, stream_key), operation, params = found
        if stream_key is None:
            return tracer(lambda params: wrapped(operation, params), instance, (), {"params": params})
        response: dict[str, Any] = {}

        def send(params: dict[str, Any], answered: Callable[[dict[str, Any]], None] | None = None) -> Any:
            response.update(wrapped(operation, params))
            if answered is not None:  # None: costspan could not begin the call, and sends it untraced
                answered(response)
            return response[stream_key]

        response[stream_key] = tracer(send, instance, (), {"params": params})
        return response

    return make_api_call


def _traced_operation(
    traced: dict[str, tuple[Wrapper, str | None]], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Wrapper, str | None], str, Any] | None:
    """The traced operation a call is, with its name and parameters; None for any other (most botocore calls)."""
    operation = args[0] if args else kwargs.get("operation_name")
    if not isinstance(operation, str):
        return None
    found = traced.get(operation)
    if found is None or getattr(instance, "_service_model", None) is None:
        return None
    if instance._service_model.service_name != SERVICE:
        return None
    params = args[1] if len(args) > 1 else kwargs.get("api_params")
    return (found, operation, params) if isinstance(params, dict) else None
