"""The scripted answer the provider server gives to one request, and how its text is streamed."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

__all__ = ["DEFAULT_INPUT_TOKENS", "Reply", "output_tokens", "text_pieces"]

DEFAULT_INPUT_TOKENS = 12
_WORD = re.compile(r"\s*\S+")


@dataclass(frozen=True, kw_only=True)
class Reply:
    """What the server answers to one request; every field has a realistic default.

    - `text` is the answer (repeated if shorter than `chunks` characters); a stream sends it as `chunks`
      content deltas (default: one per word).
    - `model` defaults to the requested one (the body's, else the Azure deployment, Vertex or Bedrock path's).
    - `usage` is the provider-native usage object, written verbatim (for count_tokens: the whole answer; for
      Bedrock's InvokeModel with a Llama, Mistral or Nova body: Bedrock's invocation metrics, ``inputTokenCount``,
      ``outputTokenCount``, ``cacheReadInputTokenCount``, ``cacheWriteInputTokenCount``, which the body, the
      token-count headers and the last stream event each carry in their own shape);
      None gives 12 input tokens and one output token per delta, with every detail field at zero.
    - `service_tier` None means the provider's usual value ("default" for OpenAI, "standard" in Anthropic's
      default usage); given, it also goes into a scripted Anthropic usage that lacks one.
    - `finish_reason` is OpenAI's finish_reason or Anthropic's stop_reason ("stop" / "end_turn").
      `finish_reasons` gives one per choice instead, for an OpenAI chat request with `n` > 1 (choice i takes
      the i-th, cycling); each choice carries the same text.
    - `status` other than 200 answers with the provider's error body, or `error_body` verbatim, which also
      replaces the in-stream error that `error_after` sends.
    - `headers` are added to (or replace, by name) the default ones, which always include a request id; a header
      given as None is left out.
    - Stream-only: `first_chunk_delay` before the first event, `chunk_delay` between events, `drop_after`
      content deltas then the TCP connection is cut mid-body, `error_after` content deltas then the
      provider's in-stream error ends the stream, `usage_updates` identical Anthropic message_delta events.
      A fault set beyond the last delta strikes right after it. `delay` precedes any answer.
    - `events` scripts a stream's events: given the JSON values the stream would send, in order (for OpenAI's
      chat and legacy completions the closing `"[DONE]"` too, and the in-stream error of `error_after`), it
      returns those to send instead, to drop, repeat, reorder, cut or add events. Anthropic's and Bedrock's
      in-stream error follows the scripted events. `drop_after` counts the content deltas among them.
    - `body` scripts a complete (not streamed) answer: given the JSON value the server would send, it returns the
      value to send instead (a gateway that drops, nulls or adds fields).
    """

    text: str = "The quick brown fox jumps over the lazy dog."
    chunks: int | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None
    service_tier: str | None = None
    finish_reason: str | None = None
    finish_reasons: tuple[str, ...] = ()
    status: int = 200
    error_body: dict[str, Any] | None = None
    headers: dict[str, str | None] = field(default_factory=dict)
    delay: float = 0.0
    chunk_delay: float = 0.0
    first_chunk_delay: float = 0.0
    drop_after: int | None = None
    error_after: int | None = None
    usage_updates: int = 1
    events: Callable[[list[Any]], list[Any]] | None = None
    body: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        if self.chunks is not None and (self.chunks < 1 or not self.text):
            raise ValueError(f"chunks={self.chunks!r} needs a positive count and a non-empty text")
        if self.status != 200 and not 400 <= self.status <= 599:
            raise ValueError(f"status={self.status!r} is neither 200 nor an error status (400-599)")
        if self.usage_updates < 1:
            raise ValueError(f"usage_updates={self.usage_updates!r} must be at least 1")
        for name in ("delay", "chunk_delay", "first_chunk_delay", "drop_after", "error_after"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name}={value!r} must not be negative")


def text_pieces(reply: Reply) -> list[str]:
    """The content deltas of a streamed answer; they concatenate to the text every answer carries.

    Without `chunks` there is one delta per word. A text shorter than `chunks` characters is repeated
    (space-separated) so that every one of the `chunks` deltas is non-empty.
    """
    text = reply.text
    if reply.chunks is not None:
        while len(text) < reply.chunks:
            text = f"{text} {reply.text}"
    words = _WORD.findall(text)
    if not words:
        return [text] if text else []
    words[-1] += text[len("".join(words)) :]
    if reply.chunks is None:
        return words
    units = words if reply.chunks <= len(words) else list(text)
    return _balanced(units, reply.chunks)


def output_tokens(reply: Reply) -> int:
    """The default output token count: one per content delta."""
    return len(text_pieces(reply))


def _balanced(units: list[str], groups: int) -> list[str]:
    bounds = [i * len(units) // groups for i in range(groups + 1)]
    return ["".join(units[start:end]) for start, end in pairwise(bounds)]
