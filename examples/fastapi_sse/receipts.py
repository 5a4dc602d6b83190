"""What one request's provider call used and cost, as costspan settled it, for the request's ``usage`` event.

costspan settles each call once and puts the result on the call's span as it ends: tokens, cost, whether the
stream completed, whether a count was estimated. The route opens a span of its own around the call, so the
call's span is its child; this span processor hands the child's attributes to the route that is waiting for them.
Nothing is counted here: the numbers are the ones the budget and (when configured) the ledger and the exporters
get from the same settlement.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import Span as ApiSpan

__all__ = ["Receipt", "Receipts"]


@dataclass(frozen=True)
class Receipt:
    """A call's settlement as its span reports it (names from costspan's span contract)."""

    model: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float | None  # None: costspan knows no price for the model (never a silent $0)
    estimated: bool  # a count was estimated: the provider gave none (an interrupted stream)
    completed: bool | None  # False: the stream ended early (cut by a budget, the client gone, an error)

    @classmethod
    def from_span(cls, attributes: Any) -> Receipt:
        return cls(
            model=attributes.get("gen_ai.response.model") or attributes.get("gen_ai.request.model"),
            input_tokens=attributes.get("gen_ai.usage.input_tokens", 0),
            output_tokens=attributes.get("gen_ai.usage.output_tokens", 0),
            cost_usd=money(attributes.get("gen_ai.usage.cost.amount")),
            estimated=attributes.get("costspan.usage.estimated", False),
            completed=attributes.get("costspan.stream.completed"),
        )


COST_DECIMALS = 10
"""genai-prices gives prices per million tokens to at most four decimals, so a call's cost has at most ten: rounded
there, the event says 0.0006 where the float sum of its parts reads 0.0006000000000000001, and loses nothing."""


def money(amount: float | None) -> float | None:
    """USD to the price data's precision, for the events the route sends."""
    return None if amount is None else round(amount, COST_DECIMALS)


class Receipts(SpanProcessor):
    """Keeps the receipt of each costspan call made under a span that a route is waiting on, and only those."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[int, Receipt | None] = {}  # the route's span id -> its call's receipt, once ended

    def expect(self, parent: ApiSpan) -> None:
        """Keep the receipt of the call made under ``parent`` until :meth:`take` or :meth:`forget`."""
        with self._lock:
            self._waiting[parent.get_span_context().span_id] = None

    def take(self, parent: ApiSpan) -> Receipt | None:
        """The receipt of the call made under ``parent`` (None if no call ended there); forgets it."""
        with self._lock:
            return self._waiting.pop(parent.get_span_context().span_id, None)

    def forget(self, parent: ApiSpan) -> None:
        self.take(parent)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        parent, scope = span.parent, span.instrumentation_scope
        if parent is None or scope is None or not scope.name.startswith("costspan"):
            return
        with self._lock:
            if parent.span_id in self._waiting:
                self._waiting[parent.span_id] = Receipt.from_span(span.attributes or {})
