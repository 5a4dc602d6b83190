"""Amazon Bedrock through boto3's ``bedrock-runtime`` client (``aws.bedrock``): Converse and ConverseStream.

Every botocore client sends its operations through ``BaseClient._make_api_call(operation_name, api_params)``;
botocore builds client classes at run time, so that one method is what there is to patch, and patching it covers
clients created before ``instrument()`` too. The patch looks at the client's service and the operation first:
anything but a traced ``bedrock-runtime`` operation goes straight through, untouched. A traced one becomes one call
of the shared machinery, whose request is the operation's parameters; a streaming operation's result is a dict whose
``stream`` is the event stream costspan proxies (and puts back in the dict the user gets).

Usage: Converse's ``usage`` (``inputTokens`` without cache reads and writes, which costspan adds, as for
Anthropic), ConverseStream's in its closing ``metadata`` event. A stream that ends before it has exact nothing:
input is estimated from the request, output from the text streamed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai

from .._call import Call
from .._endpoint import Endpoint
from .._pipeline import Pipeline
from .._wrap import Wrapper, make_wrapper
from ._common import count_of, detail_count, malformed, request_attributes, server_of_url

__all__ = ["REQUIREMENT", "endpoints", "helper_closes", "wrappers"]

# The botocore versions costspan instruments (Converse is in 1.34.116 on); pyproject's bedrock extra says the same.
REQUIREMENT = "botocore>=1.35,<2"
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
    return _start(call, instance, kwargs, stream=False)


def _start_converse_stream(call: Call, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    return _start(call, instance, kwargs, stream=True)


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
    metadata = response.get("ResponseMetadata")
    request_id = metadata.get("RequestId") if isinstance(metadata, Mapping) else None
    if isinstance(request_id, str):
        call.response_id = request_id


def _read_converse(call: Call, response: Any) -> None:
    _read_metadata(call, response)
    reason = response.get("stopReason")
    if isinstance(reason, str):
        call.finish_reasons = [reason]
    _read_usage(call, response.get("usage"))
    if not call.usage_seen:
        message = (response.get("output") or {}).get("message") or {}
        call.output_parts += [
            text for block in message.get("content") or () if isinstance(text := block.get("text"), str)
        ]


def _read_event(call: Call, event: Any) -> bool:
    """Per event: the text of a delta (the running cost, and the estimate of an interrupted stream); the stop
    reason and the usage, which come once each, at the end."""
    delta = event.get("contentBlockDelta")
    if delta is not None:
        text = delta.get("delta", {}).get("text")
        if text:
            call.output_parts.append(text)
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


# operation -> the endpoint that reads it, and the key of its result that holds its event stream (None: no stream).
_OPERATIONS: dict[str, tuple[Endpoint, str | None]] = {
    "Converse": (Endpoint(_CLIENT, "Converse", "chat", _start_converse, _read_converse), None),
    "ConverseStream": (
        Endpoint(_CLIENT, "ConverseStream", "chat", _start_converse_stream, _read_converse, _read_event),
        "stream",
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

        def send(params: dict[str, Any]) -> Any:
            response.update(wrapped(operation, params))
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
