"""The normalised usage record every provider adapter fills and the pricing engine reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

__all__ = ["MAX_TOKENS", "Usage", "token_count"]

# Ten times the largest context window (10 million tokens in 2025): no one call counts more, so a larger count
# is garbage, and pricing it would put an absurd cost on the span, the budget and the cost counter.
MAX_TOKENS: Final = 100_000_000


@dataclass(slots=True)
class Usage:
    """Token counts of one call, in the shape costspan prices and reports.

    ``input_tokens`` counts ALL input tokens, cached reads and cache writes included (OpenAI's
    ``prompt_tokens`` already does; for Anthropic the adapter adds ``cache_read`` and ``cache_creation``).
    ``cache_write_tokens`` is the total of cache writes; ``cache_write_1h_tokens`` is the part of it
    written with a one-hour TTL (the rest is five-minute). ``reasoning_tokens`` is the part of
    ``output_tokens`` spent on reasoning/thinking. Audio counts are parts of input/output.

    ``estimated``: some count was not reported, or reported unusable, and was estimated (or, for a part of a
    total, taken as 0). ``unusable``: no count could be established at all (nothing reported and nothing to
    estimate from, or settling the call failed): the counts are only what could be read, and the call has no
    cost, which is unknown, never zero.
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
    unusable: bool = False


def token_count(value: Any) -> int | None:
    """``value`` as a token count, or None when it is not one. A count is an integer from 0 to MAX_TOKENS; a float
    with an integral value is one too (a JSON number may carry ``12.0``, which the SDKs' own validation accepts).
    A bool, a fraction, a string or null is not."""
    kind = type(value)
    if kind is int:
        return value if 0 <= value <= MAX_TOKENS else None
    if kind is float and value.is_integer() and 0 <= value <= MAX_TOKENS:
        return int(value)
    return None
