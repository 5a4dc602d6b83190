"""Budgets on the call path: reserve a call's worst case before it is sent, watch a stream's running cost, and
settle the call's actual cost (its :class:`~costspan.settle.Settlement`) once.

The worst case is the request's estimated input plus its output bound (``max_tokens`` and the like, or
``default_max_output_tokens`` when it sets none) times its choice count, priced like any call. A stream is
watched without a pricing call or a store round trip per chunk: each chunk costs an addition (its text's length)
and a comparison, and only when enough text has streamed that the running cost could have crossed what is
reserved does the watch price the usage so far, its output estimated from that text (not from the chunk count:
gateways batch many tokens per chunk) until the provider's own count arrives. Past the reservation it extends
it (one round trip); when a budget refuses, the upstream response is closed and the stream raises
:class:`BudgetExceededError`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from ._call import Call
from ._estimate import worst_case_cost
from ._tokens import chars_per_token, estimate_prompt_tokens, estimate_text_tokens
from .budgets import Budget, BudgetCheckError, BudgetError, BudgetExceededError, Reservation
from .config import DEFAULT_MAX_OUTPUT_TOKENS
from .context import current_attribution
from .pricing import Pricing, ResolvedPrice
from .settle import Settlement
from .usage import Usage

__all__ = ["BUDGET_NAME", "Guard", "Hold"]

_log = logging.getLogger("costspan")

BUDGET_NAME = "costspan.budget.name"
# How far past the request's output bound an estimate from text may be before it is believed: the
# characters-per-token heuristic errs by up to about a third on ordinary text and code.
_ESTIMATE_ERROR = 1.5
_NEVER = 1 << 62


class Hold:
    """A call's reservations and what its stream's watch needs to price its usage so far."""

    __slots__ = ("ceiling", "counted_parts", "counted_tokens", "input_tokens", "price", "reservations", "step")

    def __init__(
        self, reservations: list[tuple[Budget, Reservation]], price: ResolvedPrice, amount: float, input_tokens: int
    ) -> None:
        self.reservations = reservations
        self.price = price
        self.ceiling = amount  # USD reserved in every budget the call falls under
        # How much more a stream asks for when it runs past its reservation: a quarter of it at a time, so that
        # a stream stopped because the next step does not fit leaves at most that much of the limit unused.
        self.step = amount / 4
        self.input_tokens = input_tokens  # estimated, until the provider says
        self.counted_parts = 0
        self.counted_tokens = 0


class Guard:
    """The budgets of one instrumentation, applied to each call; the instruments that report on them."""

    def __init__(
        self,
        budgets: Sequence[Budget],
        pricing: Pricing,
        meter: Meter,
        *,
        metric_attributes: Sequence[str] = (),
        default_max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS,
    ) -> None:
        self.budgets = tuple(budgets)
        # Budgets without a scope apply to every call: when no budget has one, what applies is known once.
        self._unscoped: list[tuple[Budget, str | None]] | None = None
        if all(budget.scope is None for budget in self.budgets):
            self._unscoped = [(budget, None) for budget in self.budgets]
        self.pricing = pricing
        # Observable instruments outlive uninstrument(); once closed, their callbacks report nothing.
        self.closed = False
        self.default_max_output_tokens = default_max_output_tokens
        self._metric_attributes = frozenset(metric_attributes)
        self._warned: set[tuple[str, str]] = set()
        self._blocked = meter.create_counter(
            "costspan.budget.blocked", unit="{request}", description="Calls refused or cut by a budget."
        )
        meter.create_observable_gauge(
            "costspan.budget.spent", [self._observe_spent], unit="USD", description="Settled spend in the window."
        )
        meter.create_observable_gauge(
            "costspan.budget.limit", [self._observe_limit], unit="USD", description="The budget's limit."
        )
        meter.create_observable_counter(
            "costspan.budget.unchecked",
            [self._observe_unchecked],
            unit="{request}",
            description="Calls let through unchecked (on_store_error='allow'); their cost is counted later.",
        )
        meter.create_observable_counter(
            "costspan.budget.store_errors",
            [self._observe_store_errors],
            unit="{error}",
            description="Budget operations that could not use their store.",
        )

    # -- before the call ---------------------------------------------------------------------------------------
    def reserve(self, call: Call) -> None:
        """Reserve the call's worst case in every budget it falls under; raises BudgetExceededError if one
        refuses (after releasing what the others held)."""
        plan = self._plan(call)
        if plan is None:
            return
        applicable, price, amount, input_tokens = plan
        held: list[tuple[Budget, Reservation]] = []
        try:
            for budget, value in applicable:
                held.append((budget, budget.reserve(value, amount)))
        except BudgetError as refused:
            self._release(held)
            self._refused(call, refused)
            raise
        except BaseException:  # costspan failed, or the thread was interrupted: the call is not sent as held
            self._release(held)
            raise
        call.hold = Hold(held, price, amount, input_tokens)

    async def areserve(self, call: Call) -> None:
        plan = self._plan(call)
        if plan is None:
            return
        applicable, price, amount, input_tokens = plan
        held: list[tuple[Budget, Reservation]] = []
        cancelling = _cancelling()
        try:
            for budget, value in applicable:
                held.append((budget, await budget.areserve(value, amount)))
        except BudgetError as refused:
            await self._arelease(held)
            self._refused(call, refused)
            raise
        except BaseException:  # cancelled at any await of any budget: every hold so far is given back
            await self._arelease(held)
            raise
        if _cancelling() > cancelling:
            # Cancelled meanwhile, and the cancellation lost on the way: Python 3.11's asyncio.wait_for (which
            # redis-py awaits its writes with) returns its result instead when the write finished in the same
            # step. The caller was cancelled: nothing is sent.
            await self._arelease(held)
            raise asyncio.CancelledError
        call.hold = Hold(held, price, amount, input_tokens)

    def failed(self, call: Call, failure: Exception) -> BudgetCheckError | None:
        """costspan could not check the call (``failure``): the refusal to raise when a budget it falls under says
        ``on_store_error="block"``; else None, each budget counting the call as let through unchecked."""
        budgets = [budget for budget in self.budgets if budget.scope is None or budget.scope in call.attributes]
        blocking = next((budget for budget in budgets if budget.on_store_error == "block"), None)
        if blocking is None:
            for budget in budgets:
                budget.count_unchecked()
            return None
        refused = BudgetCheckError(
            f"budget {blocking.name!r} refused a call to {call.model!r} ({call.provider}) it could not check: "
            f"costspan failed ({type(failure).__name__}: {failure}), and on_store_error='block' refuses what "
            "it cannot check",
            budget=blocking.name,
            scope_value=None if blocking.scope is None else str(call.attributes[blocking.scope]),
            spent=math.nan,
            reserved=math.nan,
            limit=blocking.limit_usd,
            estimate=math.nan,
        )
        self._refused(call, refused)
        return refused

    @staticmethod
    def _release(held: list[tuple[Budget, Reservation]]) -> None:
        """Give back what the budgets that said yes hold for a call that will not be sent."""
        for budget, reservation in held:
            budget.settle(reservation, 0.0)

    @staticmethod
    async def _arelease(held: list[tuple[Budget, Reservation]]) -> None:
        """As :meth:`_release`, in a task of its own that a cancellation of the caller (anyio cancels every
        await of a cancelled scope again) does not cut short."""
        if held:
            task = asyncio.get_running_loop().create_task(_release_all(held))
            _RELEASING.add(task)
            task.add_done_callback(_RELEASING.discard)
            await asyncio.shield(task)

    def _plan(self, call: Call) -> tuple[list[tuple[Budget, str | None]], ResolvedPrice, float, int] | None:
        if not call.billed:
            return None
        applicable = self._unscoped
        if applicable is None:
            applicable = list(self._applicable(call))
        if not applicable:
            return None
        price = self.pricing.resolve(call.provider, call.model)
        if price is None:
            self._unpriced(call, applicable)
            return None
        input_tokens = estimate_prompt_tokens(call.prompt)
        output_tokens = 0
        if call.operation != "embeddings":
            bound = call.max_output_tokens
            if bound is None or bound < 0:
                bound = self.default_max_output_tokens
            output_tokens = bound * call.choice_count
        amount = worst_case_cost(price, input_tokens, output_tokens)
        if not (math.isfinite(amount) and amount >= 0):
            raise ValueError(f"the worst case of a call to {call.model!r} came to {amount!r} USD")
        return applicable, price, amount, input_tokens

    def _applicable(self, call: Call) -> Iterable[tuple[Budget, str | None]]:
        for budget in self.budgets:
            scope = budget.scope
            if scope is None:
                yield budget, None
                continue
            value = call.attributes.get(scope)
            if value is not None:
                yield budget, str(value)
            else:
                carried = sorted(current_attribution()) or "none"
                self._warn_once(
                    budget.name,
                    scope,
                    "costspan: budget %r is kept per %s, and a call without %s is not counted in it; the call "
                    "carried the attribution attributes %s: set %s with costspan.attribution(...)",
                    budget.name,
                    scope,
                    scope,
                    carried,
                    scope,
                )

    def _unpriced(self, call: Call, applicable: list[tuple[Budget, str | None]]) -> None:
        blocking = [budget for budget, _ in applicable if budget.on_unpriced == "block"]
        if blocking:
            budget = blocking[0]
            refused = BudgetExceededError(
                f"budget {budget.name!r} refused a call to {call.model!r} ({call.provider}), which has no known "
                "price (on_unpriced='block'): price it with costspan.instrument(prices=...) or model_aliases",
                budget=budget.name,
                scope_value=dict(applicable)[budget],
                spent=float("nan"),
                reserved=float("nan"),
                limit=budget.limit_usd,
                estimate=float("nan"),
            )
            self._refused(call, refused)
            raise refused
        self._warn_once(
            call.provider,
            call.model,
            "costspan: %r (%s) has no known price, so budgets reserve and count nothing for its calls "
            "(on_unpriced='allow')",
            call.model,
            call.provider,
        )

    def _refused(self, call: Call, refused: BudgetError) -> None:
        self._blocked.add(1, {BUDGET_NAME: refused.budget}, call.context)
        span = call.span
        if span is not None:
            span.add_event("costspan.budget.exceeded", _event_attributes(refused))

    # -- a stream's running cost ------------------------------------------------------------------------------
    def check(self, call: Call, stream: Any) -> int:
        """Price the stream's usage so far; extend the reservations past it, or close the stream and raise.
        Returns the length of streamed text at which to look again."""
        hold = call.hold
        if hold is None:
            return _NEVER
        running, believe_in = self._running(call, hold)
        if running > hold.ceiling:
            need = running - hold.ceiling
            more = max(need, hold.step)
            for budget, reservation in hold.reservations:
                if not budget.extend(reservation, more):
                    # The step does not fit: what the stream has used so far still may (the last of the limit).
                    if need == more or not budget.extend(reservation, need):
                        stream.close()
                        raise self._cut(call, reservation)
                    more = need
            hold.ceiling += more
        return call.output_chars + self._chars_until(hold, running, believe_in)

    async def acheck(self, call: Call, stream: Any) -> int:
        hold = call.hold
        if hold is None:
            return _NEVER
        running, believe_in = self._running(call, hold)
        if running > hold.ceiling:
            need = running - hold.ceiling
            more = max(need, hold.step)
            cancelling = _cancelling()
            for budget, reservation in hold.reservations:
                if not await budget.aextend(reservation, more):
                    if need == more or not await budget.aextend(reservation, need):
                        await _aclose(stream)
                        raise self._cut(call, reservation)
                    more = need
            hold.ceiling += more
            if _cancelling() > cancelling:  # a cancellation Python 3.11's wait_for lost (see areserve)
                raise asyncio.CancelledError
        return call.output_chars + self._chars_until(hold, running, believe_in)

    def _running(self, call: Call, hold: Hold) -> tuple[float, int]:
        """The stream's cost so far, and, while the estimate is held at the request's output bound, how many
        more tokens it may grow by before it is believed past it (else 0).

        Output is the provider's cumulative count once it gives one, else estimated from the text streamed. An
        estimate a little past ``max_tokens`` x choices is the estimator's error and is held at that bound; one
        clearly past it (``_ESTIMATE_ERROR`` times) is a server that does not honour the bound, and is believed."""
        believe_in = 0
        if call.usage_seen:
            output = call.output_tokens
        else:
            output = max(call.output_tokens, self._streamed_tokens(call, hold))
            bound = call.max_output_tokens
            if bound is not None and bound * call.choice_count < output <= bound * call.choice_count * _ESTIMATE_ERROR:
                believe_in = math.floor(bound * call.choice_count * _ESTIMATE_ERROR) - output + 1
                output = bound * call.choice_count
        usage = Usage(
            input_tokens=call.input_tokens if call.input_seen else hold.input_tokens,
            output_tokens=output,
            cache_read_tokens=call.cache_read_tokens,
            cache_write_tokens=call.cache_write_tokens,
            cache_write_1h_tokens=call.cache_write_1h_tokens,
        )
        return hold.price.cost(usage).amount, believe_in

    @staticmethod
    def _streamed_tokens(call: Call, hold: Hold) -> int:
        """The output tokens of the text streamed so far, counting only what arrived since the last look."""
        parts = call.output_parts
        if len(parts) > hold.counted_parts:
            hold.counted_tokens += estimate_text_tokens("".join(parts[hold.counted_parts :]))
            hold.counted_parts = len(parts)
        return hold.counted_tokens

    @staticmethod
    def _chars_until(hold: Hold, running: float, believe_in: int) -> int:
        """How much more text may stream before the running cost could pass what is reserved (or the estimate be
        believed past the output bound): the watch looks again then, not before."""
        if believe_in:
            tokens_left = float(believe_in)
        else:
            per_token = hold.price.rates_for(hold.input_tokens).output
            if per_token <= 0:
                return _NEVER
            tokens_left = (hold.ceiling - running) / per_token
        return max(1, int(tokens_left) * chars_per_token())

    def _cut(self, call: Call, reservation: Reservation) -> BudgetError:
        refused = reservation.refusal
        assert refused is not None  # extend() returned False, so it says why
        self._refused(call, refused)
        return refused

    # -- after the call ---------------------------------------------------------------------------------------
    def settle(self, call: Call, settlement: Settlement) -> None:
        hold, call.hold = call.hold, None
        if hold is None:
            return
        cost = settlement.cost
        amount = cost.amount if cost is not None else self._uncosted(hold, settlement)
        for budget, reservation in hold.reservations:
            crossed = budget.settle(reservation, amount)
            if crossed:
                self._crossed(call, budget, reservation, crossed)

    async def asettle(self, call: Call, settlement: Settlement) -> None:
        hold, call.hold = call.hold, None
        if hold is None:
            return
        cost = settlement.cost
        amount = cost.amount if cost is not None else self._uncosted(hold, settlement)
        for budget, reservation in hold.reservations:
            crossed = await budget.asettle(reservation, amount)
            if crossed:
                self._crossed(call, budget, reservation, crossed)

    @staticmethod
    def _uncosted(hold: Hold, settlement: Settlement) -> float:
        """What a call without a cost counts in its budgets (one with a cost counts its cost): nothing for a call
        the provider did not bill; and never nothing for a billed call whose cost is unknown."""
        usage = settlement.usage
        if usage is None:
            return 0.0
        if usage.unusable:  # the provider's record could not be read: count what was held for the call
            return hold.ceiling
        # Priced when reserved, unpriced now (the response named another model): the reservation's price holds.
        amount = hold.price.cost(usage).amount
        return amount if math.isfinite(amount) and amount >= 0 else hold.ceiling

    def _crossed(self, call: Call, budget: Budget, reservation: Reservation, thresholds: tuple[float, ...]) -> None:
        span = call.span
        for threshold in thresholds:
            if span is not None:
                attributes: dict[str, Any] = {
                    BUDGET_NAME: budget.name,
                    "costspan.budget.threshold": threshold,
                    "costspan.budget.limit": budget.limit_usd,
                }
                if reservation.scope_value is not None:
                    attributes["costspan.budget.scope_value"] = reservation.scope_value
                span.add_event("costspan.budget.threshold", attributes)

    # -- gauges -------------------------------------------------------------------------------------------------
    def _observe_spent(self, options: CallbackOptions) -> Iterable[Observation]:
        for budget, value, attributes in self._observed():
            try:
                yield Observation(budget.spent(value), attributes)
            except Exception as failure:  # a store that is down: no point, and the store-error counter says why
                _log.debug("costspan: budget %r spent() failed: %r", budget.name, failure)

    def _observe_limit(self, options: CallbackOptions) -> Iterable[Observation]:
        for budget, _, attributes in self._observed():
            yield Observation(budget.limit_usd, attributes)

    def _observe_unchecked(self, options: CallbackOptions) -> Iterable[Observation]:
        for budget in () if self.closed else self.budgets:
            yield Observation(budget.unchecked, {BUDGET_NAME: budget.name})

    def _observe_store_errors(self, options: CallbackOptions) -> Iterable[Observation]:
        for budget in () if self.closed else self.budgets:
            yield Observation(budget.store_errors, {BUDGET_NAME: budget.name})

    def _observed(self) -> Iterable[tuple[Budget, str | None, dict[str, Any]]]:
        """Unscoped budgets; scoped ones per scope value seen, when their scope is one of the metric attributes
        (the application chose that cardinality)."""
        for budget in () if self.closed else self.budgets:
            scope = budget.scope
            if scope is None:
                yield budget, None, {BUDGET_NAME: budget.name}
            elif scope in self._metric_attributes:
                for value in budget.scope_values():
                    yield budget, value, {BUDGET_NAME: budget.name, scope: value}

    def _warn_once(self, first: str, second: str, message: str, *args: object) -> None:
        if (first, second) not in self._warned:
            self._warned.add((first, second))
            _log.warning(message, *args)


_RELEASING: set[asyncio.Task[None]] = set()  # releases running in tasks of their own, kept from collection


async def _release_all(held: list[tuple[Budget, Reservation]]) -> None:
    for budget, reservation in held:
        await budget.asettle(reservation, 0.0)


def _cancelling() -> int:
    """How many cancellations of the current task are pending (Task.cancelling, Python 3.11+)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return cancelling() if cancelling is not None else 0


def _event_attributes(refused: BudgetError) -> dict[str, Any]:
    out: dict[str, Any] = {BUDGET_NAME: refused.budget, "costspan.budget.limit": refused.limit}
    for key, value in (
        ("costspan.budget.spent", refused.spent),
        ("costspan.budget.reserved", refused.reserved),
        ("costspan.budget.estimate", refused.estimate),
    ):
        if value == value:  # not NaN: the store could tell
            out[key] = value
    if refused.scope_value is not None:
        out["costspan.budget.scope_value"] = refused.scope_value
    return out


async def _aclose(stream: Any) -> None:
    """Close an SDK's async stream upstream: the Stainless SDKs' ``close()``, an async generator's ``aclose()``
    (google-genai's stream)."""
    aclose = getattr(stream, "aclose", None)
    await (aclose() if aclose is not None else stream.close())
