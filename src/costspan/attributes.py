"""Attribute and metric names costspan emits that the semantic conventions do not (yet) define.

The ``gen_ai.*`` names that opentelemetry-semantic-conventions defines are imported from there where they are
used; these are the names SPEC.md fixes on top of them (the open semconv cost proposal and costspan's own).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "COST_AMOUNT",
    "COST_CACHE_READ",
    "COST_CACHE_WRITE",
    "COST_CURRENCY",
    "COST_INPUT",
    "COST_METRIC",
    "COST_OTHER",
    "COST_OUTPUT",
    "COST_SOURCE",
    "COST_UNPRICED",
    "PRICE_FALLBACK",
    "PRICE_MODEL",
    "PRICE_SOURCE",
    "REQUEST_CACHE_READ_INPUT_TOKENS",
    "REQUEST_CACHE_WRITE_INPUT_TOKENS",
    "REQUEST_CALLS",
    "REQUEST_COST",
    "REQUEST_ESTIMATED",
    "REQUEST_INPUT_TOKENS",
    "REQUEST_NAME",
    "REQUEST_OUTPUT_TOKENS",
    "REQUEST_REASONING_OUTPUT_TOKENS",
    "REQUEST_UNPRICED",
    "RUN_ID",
    "STREAM_COMPLETED",
    "TOKENS_METRIC",
    "USAGE_CACHE_WRITE_INPUT_TOKENS",
    "USAGE_ESTIMATED",
    "USAGE_UNUSABLE",
    "USER_ID",
]

COST_AMOUNT: Final = "gen_ai.usage.cost.amount"
COST_CURRENCY: Final = "gen_ai.usage.cost.currency"
COST_SOURCE: Final = "gen_ai.usage.cost.source"
USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"

COST_INPUT: Final = "costspan.cost.input"
COST_OUTPUT: Final = "costspan.cost.output"
COST_CACHE_READ: Final = "costspan.cost.cache_read"
COST_CACHE_WRITE: Final = "costspan.cost.cache_write"
COST_OTHER: Final = "costspan.cost.other"
COST_UNPRICED: Final = "costspan.cost.unpriced"
PRICE_MODEL: Final = "costspan.price.model"
PRICE_SOURCE: Final = "costspan.price.source"
# The model the response named has no price: the call is priced as the model it requested (costspan.price.model).
PRICE_FALLBACK: Final = "costspan.price.fallback"
USAGE_ESTIMATED: Final = "costspan.usage.estimated"
# No token count could be established for a billed call (its usage was unusable with nothing left to estimate
# from, or settling it failed): the counts are what could be read, and the cost is unknown, so the span is also
# costspan.cost.unpriced and has no amount. Never a call that cost nothing.
USAGE_UNUSABLE: Final = "costspan.usage.unusable"
STREAM_COMPLETED: Final = "costspan.stream.completed"

USER_ID: Final = "user.id"

# A request's (or a costspan.track run's) totals, on its span: the sum of the calls made under it in this process.
REQUEST_COST: Final = "costspan.request.cost"
REQUEST_CALLS: Final = "costspan.request.calls"
REQUEST_INPUT_TOKENS: Final = "costspan.request.input_tokens"
REQUEST_OUTPUT_TOKENS: Final = "costspan.request.output_tokens"
REQUEST_CACHE_READ_INPUT_TOKENS: Final = "costspan.request.cache_read.input_tokens"
REQUEST_CACHE_WRITE_INPUT_TOKENS: Final = "costspan.request.cache_write.input_tokens"
REQUEST_REASONING_OUTPUT_TOKENS: Final = "costspan.request.reasoning.output_tokens"
REQUEST_ESTIMATED: Final = "costspan.request.estimated"
REQUEST_UNPRICED: Final = "costspan.request.unpriced"
# On a call's span: the name of the request (its local root span, or the outermost costspan.track run) it was made in.
REQUEST_NAME: Final = "costspan.request.name"
# On a costspan.track span and every call made in it: the run's id (a Budget may be scoped to it).
RUN_ID: Final = "costspan.run.id"

COST_METRIC: Final = "costspan.cost"
TOKENS_METRIC: Final = "costspan.tokens"
