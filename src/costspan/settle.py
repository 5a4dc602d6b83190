"""One call's final usage and cost, computed once when the call ends and handed to every consumer (the span and
metrics, the budgets, through the span the ledger), so that their numbers can never disagree."""

from __future__ import annotations

from dataclasses import dataclass

from ._call import Call
from ._tokens import estimate_prompt_tokens, estimate_text_tokens
from .pricing import Cost, Pricing
from .usage import Usage

__all__ = ["Settlement", "settle"]


@dataclass(frozen=True, slots=True)
class Settlement:
    """What one call used and cost.

    ``usage`` is None for a call the provider did not bill (a request that failed before any output, token
    counting); ``cost`` is None when the call was not billed or no price is known for its model (then
    :attr:`unpriced`: never a silent $0).
    """

    usage: Usage | None
    cost: Cost | None

    @property
    def unpriced(self) -> bool:
        return self.usage is not None and self.cost is None

    @property
    def amount(self) -> float:
        """The cost in USD, 0.0 when nothing was billed or no price is known."""
        return self.cost.amount if self.cost is not None else 0.0


NOT_BILLED = Settlement(None, None)


def settle(call: Call, error: BaseException | None, pricing: Pricing) -> Settlement:
    # A request that failed before any output was billed nothing; one cut mid-stream was billed so far.
    if not call.billed or (error is not None and not call.usage_seen and not call.first_chunk_ns):
        return NOT_BILLED
    usage = _final_usage(call)
    return Settlement(usage, pricing.cost(call.provider, priced_model(call, pricing), usage, call.service_tier))


def priced_model(call: Call, pricing: Pricing) -> str:
    """The model a call is priced as: the response names the model that ran (a dated snapshot, Azure's base
    model), unless the application priced the requested name itself (a deployment alias, a negotiated price)."""
    if call.response_model and not pricing.is_configured(call.model):
        return call.response_model
    return call.model


def _final_usage(call: Call) -> Usage:
    """The provider's counts, completed by estimates where it gave none (an interrupted stream)."""
    if not call.usage_seen:
        if not call.input_seen:
            call.input_tokens = estimate_prompt_tokens(call.prompt)
        if call.output_parts:
            call.output_tokens = max(call.output_tokens, estimate_text_tokens("".join(call.output_parts)))
    return call.usage()
