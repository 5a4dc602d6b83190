"""Google Gen AI (``google-genai``): Gemini on the Gemini API (``gcp.gemini``) and on Vertex AI (``gcp.vertex_ai``).

Patched, sync and async: ``Models._generate_content`` and ``Models._generate_content_stream``, which send one
request each, and ``embed_content``. The public ``generate_content`` (and ``_stream``) may send several requests for
one call (automatic function calling, automatic continuation), each billed: patching the methods that send them
gives each its own span, cost and budget check. The sync stream is a generator that sends its request when first
iterated (see ``Endpoint.lazy``); the async one has sent it when awaited.

Usage: ``usage_metadata``. ``prompt_token_count`` counts every input token, cached ones included
(``cached_content_token_count`` is its cached part); ``tool_use_prompt_token_count`` is input too, billed as
such. Output is ``candidates_token_count`` plus ``thoughts_token_count``: thinking is billed as output, and is its
reasoning part. In a stream, every chunk carries the prompt's counts and the last one (the one with a finish
reason) the final, cumulative usage: the reader keeps a reference to the last chunk's usage and reads it once, at
the end; a stream that stopped earlier has exact input and output estimated from its text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai

from .. import _content as content
from .._call import Call
from .._endpoint import Endpoint
from ._common import count_of, detail_count, is_record, request_attributes, server_of_url, text_of

__all__ = ["PACKAGE", "REQUIREMENT", "endpoints", "helper_closes"]

# The SDK versions costspan instruments (pyproject's google extra says the same); see the instrumentor.
REQUIREMENT = "google-genai>=1.50,<4"
# The package whose import patches it (instrument() imports no SDK the application has not imported).
PACKAGE = "google.genai"
GEMINI = "gcp.gemini"
VERTEX_AI = "gcp.vertex_ai"

_MODELS = "google.genai.models"
# Sampling parameters of a GenerateContentConfig, by the keyword request_attributes reads them as.
_CONFIG_PARAMS = ("temperature", "top_p", "top_k", "frequency_penalty", "presence_penalty", "seed", "stop_sequences")


def _config_value(config: Any, name: str) -> Any:
    """A field of the request's config: a GenerateContentConfig, or a dict (in snake_case, as the SDK reads it)."""
    if config is None:
        return None
    if isinstance(config, Mapping):
        return config.get(name)
    return getattr(config, name, None)


def _begin(call: Call, instance: Any, kwargs: dict[str, Any]) -> Any:
    """Fill what every call shares; return the request's config."""
    api_client = instance._api_client
    call.provider = VERTEX_AI if api_client.vertexai else GEMINI
    model = kwargs.get("model")
    # "models/gemini-2.5-flash", "publishers/google/models/gemini-2.5-flash": the model is the last segment.
    call.model = model.rsplit("/", 1)[-1] if isinstance(model, str) else ""
    config = kwargs.get("config")
    call.prompt = (_config_value(config, "system_instruction"), kwargs.get("contents"))
    sent = {name: _config_value(config, name) for name in _CONFIG_PARAMS}
    server = server_of_url(str(api_client._http_options.base_url))
    call.attributes = request_attributes(call.operation, call.provider, call.model, server, sent)
    return config


def _start(call: Call, instance: Any, kwargs: dict[str, Any], stream: bool) -> dict[str, Any]:
    config = _begin(call, instance, kwargs)
    call.stream = stream
    attributes = call.attributes
    max_tokens = _config_value(config, "max_output_tokens")
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        attributes[gen_ai.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
        call.max_output_tokens = max_tokens
    candidates = _config_value(config, "candidate_count")
    if isinstance(candidates, int) and not isinstance(candidates, bool) and candidates != 1:
        attributes[gen_ai.GEN_AI_REQUEST_CHOICE_COUNT] = candidates
        call.choice_count = max(candidates, 1)
    attributes[gen_ai.GEN_AI_REQUEST_STREAM] = stream
    return kwargs


def _start_generate(call: Call, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    _capture_input(call, kwargs)
    return _start(call, instance, kwargs, stream=False)


def _start_stream(call: Call, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    _capture_input(call, kwargs)
    if call.content is not None:
        call.read_chunk = _read_chunk_keeping_text
    return _start(call, instance, kwargs, stream=True)


def _capture_input(call: Call, kwargs: Mapping[str, Any]) -> None:
    """With content capture on: the contents and the config's system instruction, in the conventions' parts."""
    if not call.options.capture_content:
        return
    system = _config_value(kwargs.get("config"), "system_instruction")
    instructions = [part for message in _messages(system) for part in message["parts"]]
    call.content = content.Content(_messages(kwargs.get("contents")), instructions or None)


def _messages(contents: Any) -> list[content.Message]:
    """Contents as the SDK takes them: a Content (or its dict) is a message; a text, a Part, or a run of them in
    a list, is one user message."""
    out: list[content.Message] = []
    loose: list[dict[str, Any]] = []
    for item in content.items(contents) if isinstance(contents, (list, tuple)) else [contents]:
        parts = content.field(item, "parts")
        if parts is None and not isinstance(item, str):
            loose += _parts([item])
            continue
        if isinstance(item, str):
            loose.append(content.text_part(item))
            continue
        role = content.field(item, "role")
        out.append(content.message("assistant" if role == "model" else role or "user", _parts(parts)))
    return [content.message("user", loose), *out] if loose else out


def _parts(parts: Any) -> list[dict[str, Any]]:
    """Parts as the conventions' parts: text, function calls and responses; others (inline or file data) by
    kind."""
    out = []
    for part in content.items(parts):
        text, called, answered = (content.field(part, name) for name in ("text", "function_call", "function_response"))
        if isinstance(text, str):
            out.append(content.text_part(text))
        elif called is not None:
            arguments = content.field(called, "args")
            out.append(content.tool_call_part(content.field(called, "id"), content.field(called, "name"), arguments))
        elif answered is not None:
            out.append(content.tool_response_part(content.field(answered, "id"), content.field(answered, "response")))
        else:
            inline, file = content.field(part, "inline_data"), content.field(part, "file_data")
            out.append(content.part_of_type("blob" if inline is not None else "uri" if file is not None else None))
    return out


def _read_chunk_keeping_text(call: Call, chunk: Any) -> bool:
    candidates = chunk.candidates
    content_of = candidates[0].content if candidates else None
    for part in getattr(content_of, "parts", None) or ():
        call.content.stream_text(part.text)
    return _read_chunk(call, chunk)


def _start_embed(call: Call, instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    _begin(call, instance, kwargs)
    return kwargs


def _read_usage(call: Call, usage: Any, final: bool) -> None:
    """A usage_metadata, field by field (the SDK does not bound its counts): input from any, output only from a
    final one. A count that is absent means none of that kind (a blocked prompt has no candidates) except the
    prompt's, which every usage gives; one that is unusable marks the call's usage estimated."""
    if not is_record(call, "usage_metadata", usage):
        return
    prompt = count_of(call, "prompt_token_count", usage.prompt_token_count, required=True)
    tool_use = detail_count(call, "tool_use_prompt_token_count", usage.tool_use_prompt_token_count)
    call.cache_read_tokens = detail_count(call, "cached_content_token_count", usage.cached_content_token_count)
    if prompt is not None:
        call.input_tokens = prompt + tool_use
        call.input_seen = True
    if final:
        call.reasoning_tokens = detail_count(call, "thoughts_token_count", usage.thoughts_token_count)
        value = usage.candidates_token_count
        candidates = 0 if value is None else count_of(call, "candidates_token_count", value)
        if candidates is not None:  # else the settlement estimates the output from the text
            call.output_tokens = candidates + call.reasoning_tokens
            call.usage_seen = True


def _finish_reasons(response: Any) -> list[str]:
    candidates = response.candidates if isinstance(response.candidates, list) else ()
    reasons = [getattr(candidate, "finish_reason", None) for candidate in candidates]
    return [str(getattr(reason, "value", reason)).lower() for reason in reasons if reason]


def _read_identity(call: Call, response: Any) -> None:
    call.response_id = text_of(getattr(response, "response_id", None))
    call.response_model = text_of(getattr(response, "model_version", None))


def _read_response(call: Call, response: Any) -> None:
    _read_identity(call, response)
    reasons = _finish_reasons(response)
    if reasons:
        call.finish_reasons = reasons
    if response.usage_metadata is not None:
        _read_usage(call, response.usage_metadata, final=True)
    candidates = response.candidates if isinstance(response.candidates, list) else ()
    if not call.usage_seen:
        call.output_parts += [text for candidate in candidates for text in _texts(candidate)]
    if call.content is not None and candidates:
        parts = getattr(candidates[0].content, "parts", None)
        call.content.output = [content.message("assistant", _parts(parts), reasons[0] if reasons else None)]


def _texts(candidate: Any) -> list[str]:
    """A candidate's generated text (answer and thoughts), to estimate output the usage did not count."""
    content = getattr(candidate, "content", None)
    parts = getattr(content, "parts", None) or ()
    return [text for part in parts if isinstance(text := getattr(part, "text", None), str)]


def _read_chunk(call: Call, chunk: Any) -> bool:
    """Per chunk: its text (a running cost for budgets, and the estimate of an interrupted stream), and a
    reference to the chunk and its usage; identity and the final usage are read once, at the end."""
    call.last_chunk = chunk
    usage = chunk.usage_metadata
    if usage is not None:
        call.state = usage
    candidates = chunk.candidates
    if candidates:
        content = candidates[0].content
        parts = content.parts if content is not None else None
        for part in parts or ():
            text = part.text
            if text:
                call.output_parts.append(text)
                if call.watch is not None:  # what a budget's watch compares, per chunk
                    call.output_chars += len(text)
    return False


def _end_stream(call: Call) -> None:
    last = call.last_chunk
    if last is None:
        return
    _read_identity(call, last)
    reasons = _finish_reasons(last)
    if reasons:
        call.finish_reasons = reasons
    if call.state is not None:  # final only when the stream told why it stopped
        _read_usage(call, call.state, final=bool(reasons))


def _read_embeddings(call: Call, response: Any) -> None:
    """Vertex AI reports each embedding's token count; newer models a usage_metadata; the Gemini API nothing,
    and the input is then estimated from the request."""
    usage = getattr(response, "usage_metadata", None)
    if usage is not None:
        _read_embedding_total(call, count_of(call, "usage_metadata.prompt_token_count", usage.prompt_token_count))
        return
    embeddings = response.embeddings if isinstance(response.embeddings, list) else ()
    counts = [getattr(getattr(item, "statistics", None), "token_count", None) for item in embeddings]
    if counts and all(count is not None for count in counts):
        parts = [count_of(call, "embeddings.statistics.token_count", count) for count in counts]
        _read_embedding_total(call, None if None in parts else sum(part or 0 for part in parts))


def _read_embedding_total(call: Call, input_tokens: int | None) -> None:
    if input_tokens is not None:
        call.input_tokens = input_tokens
        call.input_seen = True
        call.usage_seen = True  # embeddings generate no output


def endpoints() -> list[Endpoint]:
    out: list[Endpoint] = []
    for is_async, owner in ((False, "Models"), (True, "AsyncModels")):
        out += [
            Endpoint(_MODELS, f"{owner}._generate_content", "chat", _start_generate, _read_response,
                     is_async=is_async),
            Endpoint(_MODELS, f"{owner}._generate_content_stream", "chat", _start_stream, _read_response,
                     _read_chunk, is_async, end_stream=_end_stream, lazy=not is_async),
            Endpoint(_MODELS, f"{owner}.embed_content", "embeddings", _start_embed, _read_embeddings,
                     is_async=is_async),
        ]  # fmt: skip
    return out


def helper_closes() -> list[tuple[str, str, str, bool]]:
    """None: the SDK's public stream is a generator over the patched one, which it closes with itself."""
    return []
