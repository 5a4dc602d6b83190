"""The service: ``POST /chat/stream`` streams a model's answer as server-sent events, ``GET /usage/{user_id}``
tells a user's spend today. costspan prices every call, keeps each user's daily budget and refuses (or cuts) the
calls that would exceed it; see README.md beside this file for the design.

Run it with ``python -m examples.fastapi_sse`` (or ``--demo``), or ``uvicorn --factory
examples.fastapi_sse.app:create_app`` for more workers.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import anthropic
import openai
from fastapi import Depends, FastAPI, Request
from fastapi import Path as PathParameter
from fastapi.responses import JSONResponse, Response
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

import costspan

from .receipts import Receipts, money
from .settings import Settings
from .upstream import DEFAULT_MODEL, UPSTREAM_ERRORS, Clients, Model, ProviderNotConfigured, Upstream, open_stream

__all__ = ["BUDGET_NAME", "ChatRequest", "UsageReport", "create_app"]

_log = logging.getLogger("examples.fastapi_sse")

BUDGET_NAME = "fastapi-sse:user:day"
# Server-sent events must reach the browser as they are written: no cache, no proxy buffering (nginx honours
# X-Accel-Buffering). sse-starlette sets X-Accel-Buffering itself; its Cache-Control default is no-store.
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

Ledger = str | os.PathLike[str] | bool
UserId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@:-]+$")]


class ChatRequest(BaseModel):
    # In a real service the user comes from authentication, not from the body; it is a field here to keep the
    # example about streaming and budgets.
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=50_000)
    user_id: UserId
    system: str | None = Field(default=None, min_length=1, max_length=10_000)
    max_tokens: int = Field(default=1024, ge=1, le=4096)
    temperature: float = Field(default=1.0, ge=0.0, le=1.0)
    model: Model = DEFAULT_MODEL


class UsageReport(BaseModel):
    user_id: str
    day: date
    limit_usd: float
    spent_usd: float
    reserved_usd: float  # held by the user's calls in flight
    remaining_usd: float
    resets_at: datetime


class ChatService:
    """Everything the routes share: settings, the budget, the SDK clients (made in the lifespan), the receipts."""

    def __init__(
        self,
        settings: Settings,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
        ledger: Ledger | None,
    ) -> None:
        self.settings = settings
        self.budget = costspan.Budget(
            settings.daily_budget_usd, window="day", scope="user.id", store=settings.redis_url, name=BUDGET_NAME
        )
        self.receipts = Receipts()
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._ledger = ledger
        self.tracer: trace.Tracer = trace.NoOpTracer()
        self.clients: Clients | None = None

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        self._instrument()
        settings = self.settings
        self.clients = Clients(
            anthropic.AsyncAnthropic(api_key=settings.anthropic_api_key, base_url=settings.anthropic_base_url),
            openai.AsyncOpenAI(api_key=settings.openai_api_key, base_url=settings.openai_base_url)
            if settings.openai_configured
            else None,
        )
        try:
            yield
        finally:
            await self.clients.aclose()
            costspan.uninstrument()

    def _instrument(self) -> None:
        """costspan with the per-user budget. Without providers given, instrument() sets up OpenTelemetry's SDK
        itself: exporters from the OTEL_* variables, and the ledger (COSTSPAN_LEDGER says where, or off)."""
        options: dict[str, Any] = {"budgets": [self.budget]}
        if self._ledger is not None:
            options["ledger"] = self._ledger
        given = self._tracer_provider
        if given is None:
            costspan.instrument(**options)
        else:
            costspan.instrument(tracer_provider=given, meter_provider=self._meter_provider, **options)
        provider = given or trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            raise RuntimeError(
                f"the usage event reads costspan's spans: it needs OpenTelemetry's SDK TracerProvider, not {provider!r}"
            )
        provider.add_span_processor(self.receipts)
        self.tracer = provider.get_tracer(__name__)

    async def chat(self, request: ChatRequest) -> Response:
        """Open the provider's stream first, so that a refusal is an HTTP status, then stream it as events."""
        assert self.clients is not None, "the lifespan makes the clients"
        # The route's own span: costspan's span for the call is its child, which is how the receipt finds it.
        span = self.tracer.start_span("chat.stream", attributes={"user.id": request.user_id})
        self.receipts.expect(span)
        try:
            # The user id reaches costspan for this call only: attribution is a context variable, set here and
            # reset when the block ends; costspan reads it when the call begins.
            with trace.use_span(span), costspan.attribution(user_id=request.user_id):
                # The request's running total: chat.stream is its local root span here (under a server
                # instrumentation, the server span is), which carries costspan.request.* when it ends.
                run = costspan.current_run()
                upstream = await open_stream(
                    self.clients,
                    request.model,
                    request.prompt,
                    system=request.system,
                    max_tokens=request.max_tokens,
                    temperature=request.temperature,
                )
        except BaseException:
            self._finish(span)
            raise  # to the exception handlers below: a JSON body with the status that says why
        # The background task runs once the response is over, however it ended: if the client left before the
        # stream began, the generator never ran, and this closes what it would have.
        after = BackgroundTask(self._after, upstream, span)
        return EventSourceResponse(self._events(upstream, span, run), headers=SSE_HEADERS, background=after)

    async def _events(
        self, upstream: Upstream, span: trace.Span, run: costspan.Run | None
    ) -> AsyncIterator[ServerSentEvent]:
        """Text deltas as they arrive, then an error if the stream was stopped, the call's usage and [DONE].

        When the client goes away, sse-starlette cancels this generator wherever it waits; leaving the ``async
        with`` closes the provider's response, and costspan ends the call with what it used (README.md)."""
        try:
            error: dict[str, Any] | None = None
            async with upstream.closing:
                try:
                    async for text in upstream.texts:
                        yield ServerSentEvent(json.dumps({"text": text}))
                except costspan.BudgetExceededError as cut:
                    error = {"code": "budget_exceeded", "message": str(cut)}
                except costspan.BudgetCheckError as unchecked:  # its store failed, under on_store_error="block"
                    error = {"code": "budget_unavailable", "message": str(unchecked)}
                except UPSTREAM_ERRORS as failed:
                    _log.warning("the provider's stream failed: %s", failed)
                    error = {"code": "upstream_error", "message": _provider_failed(failed)}
            if error is not None:
                yield ServerSentEvent(json.dumps(error), event="error")
            receipt = self.receipts.take(span)
            if receipt is not None:
                usage = asdict(receipt)
                if run is not None:  # what the whole request cost so far: this call, and any before it
                    usage.update(request_cost_usd=money(run.cost), request_calls=run.calls)
                yield ServerSentEvent(json.dumps(usage), event="usage")
            yield ServerSentEvent("[DONE]")
        finally:
            self._finish(span)

    async def _after(self, upstream: Upstream, span: trace.Span) -> None:
        await upstream.closing.aclose()  # nothing left to close if the generator ran
        self._finish(span)

    def _finish(self, span: trace.Span) -> None:
        self.receipts.forget(span)
        if span.is_recording():  # not ended yet
            span.end()

    async def usage(self, user_id: str) -> UsageReport:
        budget = self.budget
        spent = await budget.aspent(user_id)
        reserved = await budget.areserved(user_id)
        today = _utc_now().date()
        return UsageReport(
            user_id=user_id,
            day=today,
            limit_usd=budget.limit_usd,
            spent_usd=spent,
            reserved_usd=reserved,
            remaining_usd=max(budget.limit_usd - spent, 0.0),
            resets_at=_next_day(),
        )


def create_app(
    settings: Settings | None = None,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    ledger: Ledger | None = None,
) -> FastAPI:
    """The application. ``settings`` default to the environment's; OpenTelemetry providers, when given, are the
    ones costspan reports to (both, or neither); ``ledger`` is costspan's option (a path, or False for none),
    whose default writes one where costspan sets up the providers itself."""
    service = ChatService(settings or Settings.from_env(), tracer_provider, meter_provider, ledger)
    app = FastAPI(title="costspan FastAPI SSE example", lifespan=service.lifespan)
    app.state.service = service
    app.post("/chat/stream", response_class=EventSourceResponse)(_chat)
    app.get("/usage/{user_id}")(_usage)
    app.add_exception_handler(costspan.BudgetExceededError, _budget_exceeded)
    app.add_exception_handler(costspan.BudgetCheckError, _budget_unavailable)
    app.add_exception_handler(ProviderNotConfigured, _model_unavailable)
    for error in UPSTREAM_ERRORS:
        app.add_exception_handler(error, _upstream_failed)
    return app


def _service(request: Request) -> ChatService:
    service: ChatService = request.app.state.service
    return service


Service = Annotated[ChatService, Depends(_service)]


async def _chat(body: ChatRequest, service: Service) -> Response:
    return await service.chat(body)


async def _usage(user_id: Annotated[UserId, PathParameter()], service: Service) -> UsageReport:
    return await service.usage(user_id)


# -- refusals: each a JSON body that says why -------------------------------------------------------------------
def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None, **details: Any) -> Response:
    return JSONResponse({"error": {"code": code, "message": message, **details}}, status, headers=headers)


async def _budget_exceeded(request: Request, refused: Exception) -> Response:
    """429, as the providers answer a spent quota. Retry-After: the next day, when the user's own spend leaves
    no room for the call; soon, when the room is held by the user's other calls in flight."""
    assert isinstance(refused, costspan.BudgetExceededError)
    resets = _next_day()
    waits_for_reset = refused.spent + refused.estimate > refused.limit
    retry_after = (resets - _utc_now()).total_seconds() if waits_for_reset else 1
    return _error(
        429,
        "budget_exceeded",
        str(refused),
        {"Retry-After": str(max(1, int(retry_after)))},
        limit_usd=refused.limit,
        spent_usd=refused.spent,
        reserved_usd=refused.reserved,
        needed_usd=refused.estimate,
        resets_at=resets.isoformat().replace("+00:00", "Z"),  # as GET /usage writes it
    )


async def _budget_unavailable(request: Request, failed: Exception) -> Response:
    return _error(503, "budget_unavailable", str(failed))


async def _model_unavailable(request: Request, failed: Exception) -> Response:
    return _error(503, "model_unavailable", str(failed))


async def _upstream_failed(request: Request, failed: Exception) -> Response:
    status = getattr(failed, "status_code", None)
    _log.warning("the provider refused the call: %s", failed)
    return _error(502, "upstream_error", _provider_failed(failed), upstream_status=status)


def _provider_failed(failed: Exception) -> str:
    # The provider's own message may quote the request; the client gets the kind of failure, the log the rest.
    return f"the model's provider failed: {type(failed).__name__}"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _next_day() -> datetime:
    """When the budget's window (a UTC day) ends."""
    now = _utc_now()
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
