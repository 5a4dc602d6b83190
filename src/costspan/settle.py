"""One call's final usage and cost, computed once when the call ends and handed to every consumer (the span and
metrics, the budgets, through the span the ledger), so that their numbers can never disagree.

Settling never loses a call's record: a count the provider did not give, or gave unusable, is estimated and the
usage marked so; a step that fails is logged once and the settlement keeps what the other steps established; a
call whose usage could not be established at all is marked unusable, and its cost is unknown, never $0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._call import Call
from ._tokens import estimate_prompt_tokens, estimate_text_tokens
from .pricing import Cost, Pricing
from .usage import Usage, token_count

__all__ = ["NOT_BILLED", "Settlement", "settle", "unsettled"]


@dataclass(frozen=True, slots=True)
class Settlement:
    """What one call used and cost.

    ``usage`` is None for a call the provider did not bill (a request that failed before it answered, token
    counting); ``cost`` is None when the call was not billed, when no price is known for its model, or when its
    usage is unusable (then :attr:`unpriced`: never a silent $0). ``cost`` is always finite and non-negative.
    """

    usage: Usage | None
    cost: Cost | None

    @property
    def unpriced(self) -> bool:
        """Billed, with no cost known: an unknown model, a pricing failure or an unusable usage."""
        return self.usage is not None and self.cost is None

    @property
    def unusable(self) -> bool:
        """Billed, with no usage established: its counts are only what could be read, and it has no cost."""
        return self.usage is not None and self.usage.unusable

    @property
    def amount(self) -> float:
        """The cost in USD, 0.0 when nothing was billed or no cost is known (see :attr:`unpriced`)."""
        return self.cost.amount if self.cost is not None else 0.0


NOT_BILLED = Settlement(None, None)

# The counts a Call holds, by their Usage names.
_COUNTS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
    "input_audio_tokens",
    "output_audio_tokens",
    "web_search_requests",
)


def settle(call: Call, error: BaseException | None, completed: bool | None, pricing: Pricing) -> Settlement:
    """The call's settlement. A step that fails is logged once and leaves what the others established.
    ``completed`` is None for a call that never opened a stream or response body, as in :meth:`Ender.end`."""
    if not _billed(call, error, completed):
        return NOT_BILLED
    try:
        usage = _final_usage(call)
    except Exception as failure:
        call.log_failure("estimating a call's usage", failure)
        return unsettled(call, error, completed)
    if usage.unusable:
        return Settlement(usage, None)
    return Settlement(usage, _cost(call, pricing, usage))


def unsettled(call: Call, error: BaseException | None, completed: bool | None) -> Settlement:
    """The settlement of a call whose settling failed: its counts as read (each that is no token count taken as
    0), marked estimated and unusable, with no cost."""
    if not _billed(call, error, completed):
        return NOT_BILLED
    counts = {name: token_count(getattr(call, name)) or 0 for name in _COUNTS}
    return Settlement(Usage(**counts, estimated=True, unusable=True), None)


def _billed(call: Call, error: BaseException | None, completed: bool | None) -> bool:
    # A request that failed before the provider answered was billed nothing. Once it answered (a stream or a
    # response body opened), the call was billed so far, however it then ended: a stream cancelled or dropped
    # while its first chunk was on the way costs its input, as one closed there does.
    return call.billed and (error is None or completed is not None or call.usage_seen)


def _cost(call: Call, pricing: Pricing, usage: Usage) -> Cost | None:
    """The usage's cost, or None when no price is known or pricing failed: never a part that is not a finite,
    non-negative amount (which only a broken price could give, the counts being bounded)."""
    try:
        cost = pricing.call_cost(call.provider, call.model, call.response_model, usage, call.service_tier)
        if cost is not None and not (math.isfinite(cost.amount) and cost.amount >= 0):
            raise ValueError(f"the cost of {call.model!r} came to {cost.amount!r} USD: it is reported unpriced")
    except Exception as failure:
        call.log_failure("pricing a call", failure)
        return None
    return cost


def _final_usage(call: Call) -> Usage:
    """The provider's counts, completed by estimates where it gave none or gave unusable ones (input from the
    request, output from the text), with every part within its total."""
    if not call.input_seen:
        parts = call.cache_read_tokens + call.cache_write_tokens + call.input_audio_tokens
        call.input_tokens = max(call.input_tokens, parts, estimate_prompt_tokens(call.prompt))
    if not call.usage_seen:
        if call.output_parts:
            text = "".join([part for part in call.output_parts if isinstance(part, str)])
            call.output_tokens = max(call.output_tokens, estimate_text_tokens(text))
        call.output_tokens = max(call.output_tokens, call.reasoning_tokens, call.output_audio_tokens)
    usage = call.usage()
    cut = _fit_parts(call, usage)
    usage.estimated = usage.estimated or not call.input_seen or call.malformed or cut
    # No input count, none to estimate from, and no output: nothing says what the call cost.
    usage.unusable = not call.input_seen and not usage.input_tokens and not usage.output_tokens
    return usage


def _fit_parts(call: Call, usage: Usage) -> bool:
    """Cut each part that exceeds its total (cache reads and writes together within input, audio input within
    input, one-hour cache writes within cache writes, reasoning and audio output each within output); whether
    any was cut. Only exact totals can be exceeded: an estimated one is never below its parts."""
    total_in, total_out = usage.input_tokens, usage.output_tokens
    if (
        usage.cache_read_tokens + usage.cache_write_tokens <= total_in
        and usage.input_audio_tokens <= total_in
        and usage.cache_write_1h_tokens <= usage.cache_write_tokens
        and usage.reasoning_tokens <= total_out
        and usage.output_audio_tokens <= total_out
    ):
        return False
    read = min(usage.cache_read_tokens, total_in)
    write = min(usage.cache_write_tokens, total_in - read)
    usage.cache_read_tokens, usage.cache_write_tokens = read, write
    usage.cache_write_1h_tokens = min(usage.cache_write_1h_tokens, write)
    usage.input_audio_tokens = min(usage.input_audio_tokens, total_in)
    usage.reasoning_tokens = min(usage.reasoning_tokens, total_out)
    usage.output_audio_tokens = min(usage.output_audio_tokens, total_out)
    call.log_failure(
        f"reconciling the usage of {call.provider} model {call.model!r}",
        ValueError(
            "a part of its usage (cached, cache write, audio or reasoning tokens) exceeds its total: "
            "the part is cut to the total and the usage estimated"
        ),
    )
    return True
