"""``costspan.estimate``: a call's input tokens and its cost before it is sent.

Tokens are estimated as costspan estimates an interrupted stream's prompt (tiktoken's o200k encoding once
``instrument()`` has loaded it in the background, about four characters a token until then). The worst case adds
``max_output_tokens`` at the output price. Prices are those costspan uses for spans (genai-prices, or the
``Pricing`` given); an unknown model is unpriced (``priced=False``, costs None), never $0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._tokens import estimate_prompt_tokens
from .pricing import Pricing, ResolvedPrice, default_pricing
from .usage import Usage

__all__ = ["Estimate", "estimate", "infer_provider", "worst_case_cost"]

_OPENAI_PREFIXES = ("gpt-", "chatgpt-", "o1", "o3", "o4", "text-embedding-", "davinci", "babbage", "codex-", "omni-")


@dataclass(frozen=True, slots=True)
class Estimate:
    """A call's estimated input and its cost, before it is sent."""

    model: str
    provider: str
    """As given, or inferred from the model name."""
    input_tokens: int
    """Estimated: the provider counts them only once the call is made."""
    max_output_tokens: int | None
    input_cost: float | None
    """USD for the input (and any per-request fee); None when unpriced."""
    worst_case_cost: float | None
    """USD for the input plus ``max_output_tokens`` at the output price; None when unpriced or when
    ``max_output_tokens`` is None (without a limit there is no worst case)."""
    price_model: str | None
    """The price entry that matched."""
    price_source: str | None
    priced: bool


def infer_provider(model: str) -> str:
    """The ``gen_ai.provider.name`` a model name implies: Claude ids on Anthropic (their Bedrock and Vertex forms
    on those platforms), OpenAI's families on OpenAI; otherwise ``unknown``, which lets genai-prices guess."""
    name = model.lower()
    if "claude" in name:
        if "anthropic." in name:
            return "aws.bedrock"
        return "gcp.vertex_ai" if "@" in name else "anthropic"
    if name.startswith(_OPENAI_PREFIXES):
        return "openai"
    return "unknown"


def estimate(
    model: str,
    messages: Any,
    *,
    provider: str | None = None,
    max_output_tokens: int | None = None,
    pricing: Pricing | None = None,
) -> Estimate:
    """Estimate a call's input tokens and cost before sending it.

    ``messages``: what the call would send, as the SDK takes it: a list of chat messages, or a prompt string.
    ``provider``: a ``gen_ai.provider.name`` (inferred from the model name when None). ``pricing``: the prices to
    use (default: genai-prices with no overrides, as :func:`costspan.cost_of`).
    """
    if max_output_tokens is not None and (isinstance(max_output_tokens, bool) or max_output_tokens < 0):
        raise ValueError(f"max_output_tokens={max_output_tokens!r}: expected a non-negative number of tokens")
    provider = provider or infer_provider(model)
    input_tokens = estimate_prompt_tokens(messages)
    price = (pricing or default_pricing()).resolve(provider, model)
    if price is None:
        return Estimate(model, provider, input_tokens, max_output_tokens, None, None, None, None, priced=False)
    input_cost = price.cost(Usage(input_tokens=input_tokens)).amount
    worst = None
    if max_output_tokens is not None:
        worst = worst_case_cost(price, input_tokens, max_output_tokens)
    return Estimate(
        model, provider, input_tokens, max_output_tokens, input_cost, worst, price.model, price.source, priced=True
    )


def worst_case_cost(price: ResolvedPrice, input_tokens: int, output_tokens: int) -> float:
    """USD for ``input_tokens`` of text in and ``output_tokens`` out: what ``price.cost`` gives for that usage, to
    the last bit (its other parts are zero), without building a Usage and a Cost. Each budgeted call reserves it."""
    if input_tokens < 0 or output_tokens < 0:  # price.cost bills no negative part
        return price.cost(Usage(input_tokens=input_tokens, output_tokens=output_tokens)).amount
    rates = price.rates_for(input_tokens)
    return input_tokens * rates.input + output_tokens * rates.output + rates.request
