"""The normalised usage record every provider adapter fills and the pricing engine reads."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Usage"]


@dataclass(slots=True)
class Usage:
    """Token counts of one call, in the shape costspan prices and reports.

    ``input_tokens`` counts ALL input tokens, cached reads and cache writes included (OpenAI's
    ``prompt_tokens`` already does; for Anthropic the adapter adds ``cache_read`` and ``cache_creation``).
    ``cache_write_tokens`` is the total of cache writes; ``cache_write_1h_tokens`` is the part of it
    written with a one-hour TTL (the rest is five-minute). ``reasoning_tokens`` is the part of
    ``output_tokens`` spent on reasoning/thinking. Audio counts are parts of input/output.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    web_search_requests: int = 0
    estimated: bool = False
