"""The FastAPI SSE example (examples/fastapi_sse) as its clients see it: a real uvicorn on 127.0.0.1, its budgets
in a real Redis, the real anthropic and openai clients against the local provider server. (httpx's
ASGITransport would buffer whole responses and never disconnect mid-stream.)"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from budgets.helpers import RedisServer
from opentelemetry.sdk.trace import ReadableSpan
from starlette.types import ASGIApp, Receive, Scope, Send

from costspan import Budget, cost_of
from costspan.testing import ProviderServer, Reply
from costspan.usage import Usage
from examples.fastapi_sse.__main__ import main
from examples.fastapi_sse.app import BUDGET_NAME, create_app
from examples.fastapi_sse.demo import run_demo
from examples.fastapi_sse.receipts import COST_DECIMALS
from examples.fastapi_sse.serving import serving
from examples.fastapi_sse.settings import Settings
from ledger_support import rows
from support import API_KEY

if TYPE_CHECKING:
    from conftest import Otel

NANOS = 1_000_000_000
DAILY_BUDGET_USD = 0.05


@dataclass
class Service:
    url: str
    budget: Budget
    """The users' daily budget, read from Redis as another worker of the service would: same name, same Redis."""
    ledger: Path
    otel: Otel

    def ledger_rows(self) -> list[dict[str, Any]]:
        """The ledger's rows once everything ended so far is written (none: the file is made with the first)."""
        self.otel.tracer_provider.force_flush()
        return rows(self.ledger) if self.ledger.exists() else []


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def service(
    request: pytest.FixtureRequest, redis_server: RedisServer, server: ProviderServer, otel: Otel, tmp_path: Path
) -> Iterator[Service]:
    with redis_server.client() as client:
        client.flushdb()
    settings = Settings(
        daily_budget_usd=DAILY_BUDGET_USD,
        # costspan's Redis client gives up after 0.25 s, and a full collection in this process's large heap (every
        # test's imports) pauses the event loop for about 0.3 s on a busy machine: a second, as README.md advises.
        redis_url=f"{redis_server.url}?socket_timeout=1&socket_connect_timeout=1",
        anthropic_api_key=API_KEY,
        anthropic_base_url=server.anthropic_base_url,
        openai_api_key=API_KEY,
        openai_base_url=server.openai_base_url,
    )
    ledger = tmp_path / "ledger.db"
    app = create_app(settings, tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, ledger=ledger)
    declared = getattr(request, "param", None)
    with serving(app if declared is None else _declaring_spec(app, declared)) as url:
        budget = Budget(DAILY_BUDGET_USD, "day", scope="user.id", store=redis_server.url, name=BUDGET_NAME)
        yield Service(url, budget, ledger, otel)


def _declaring_spec(app: ASGIApp, version: str) -> ASGIApp:
    """``app`` behind a server that declares another ASGI spec version: Starlette's StreamingResponse listens for
    the client's disconnect only under spec versions before 2.4, and counts on the server's send failing after."""

    async def declared(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "asgi": {**scope["asgi"], "spec_version": version}}
        await app(scope, receive, send)

    return declared


STORY = "The keeper climbed the hundred and twelve steps at dusk and lit the lamp before the storm."
MODELS = [None, "gpt-4.1-mini"]  # None: the route's default, Claude
MODEL_IDS = ["claude", "openai"]


def _usage(model: str | None, input_tokens: int, output_tokens: int) -> dict[str, int]:
    """The provider's own usage object, as the local server sends it."""
    if model is not None and model.startswith("gpt-"):
        total = input_tokens + output_tokens
        return {"prompt_tokens": input_tokens, "completion_tokens": output_tokens, "total_tokens": total}
    return {"input_tokens": input_tokens, "output_tokens": output_tokens}


def _body(user: str, model: str | None = None, **fields: Any) -> dict[str, Any]:
    body = {"user_id": user, "prompt": "Tell me about lighthouses.", "max_tokens": 200, **fields}
    return body if model is None else {**body, "model": model}


@dataclass(frozen=True)
class Event:
    kind: str
    data: str
    at: float  # time.monotonic() when it arrived

    @property
    def json(self) -> Any:
        return json.loads(self.data)


class _EventReader:
    """Server-sent events as a browser's EventSource reads them (the fields this service sends), line by line."""

    def __init__(self) -> None:
        self.kind = "message"
        self.data: list[str] = []

    def read(self, line: str) -> Event | None:
        """The event this line completes, if it does."""
        if not line:
            event = Event(self.kind, "\n".join(self.data), time.monotonic()) if self.data else None
            self.kind, self.data = "message", []
            return event
        if not line.startswith(":"):  # a comment line is a keep-alive ping
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                self.kind = value
            elif name == "data":
                self.data.append(value)
        return None


def _events(lines: Iterator[str]) -> Iterator[Event]:
    reader = _EventReader()
    for line in lines:
        if (event := reader.read(line)) is not None:
            yield event


async def _aevents(response: httpx.Response) -> AsyncIterator[Event]:
    reader = _EventReader()
    async for line in response.aiter_lines():
        if (event := reader.read(line)) is not None:
            yield event


def _texts(events: list[Event]) -> list[Event]:
    return [event for event in events if event.kind == "message" and event.data != "[DONE]"]


def _one(events: list[Event], kind: str) -> Event:
    (found,) = [event for event in events if event.kind == kind]
    return found


def _call_span(otel: Otel) -> ReadableSpan:
    """The span costspan made for the provider call."""
    return otel.span()


def _assert_receipt_is_the_spans(usage: dict[str, Any], span: ReadableSpan) -> None:
    attributes = span.attributes or {}
    # The span's amount, rounded to the price data's precision: one settlement, with no float noise in the event.
    assert usage["cost_usd"] == round(attributes["gen_ai.usage.cost.amount"], COST_DECIMALS)
    assert usage["input_tokens"] == attributes["gen_ai.usage.input_tokens"]
    assert usage["output_tokens"] == attributes["gen_ai.usage.output_tokens"]
    assert usage["completed"] is attributes["costspan.stream.completed"]
    assert usage["estimated"] is attributes.get("costspan.usage.estimated", False)


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> float:
    """Seconds until ``condition`` held."""
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < timeout, "timed out"
        time.sleep(0.005)
    return time.monotonic() - began


@pytest.mark.parametrize("model", MODELS, ids=MODEL_IDS)
def test_events_arrive_in_order_as_the_provider_streams(
    service: Service, server: ProviderServer, otel: Otel, model: str | None
) -> None:
    server.push(Reply(text=STORY, chunks=6, chunk_delay=0.2, usage=_usage(model, 30, 24)))
    began = time.monotonic()
    with httpx.stream("POST", f"{service.url}/chat/stream", json=_body("ada", model)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        events = list(_events(response.iter_lines()))
    texts = _texts(events)
    assert "".join(event.json["text"] for event in texts) == STORY
    assert [event.kind for event in events] == ["message"] * 6 + ["usage", "message"]
    assert events[-1].data == "[DONE]"
    # The provider sent the deltas 0.2 s apart and they arrived so, the first a second before its last event:
    # nothing waited for the answer to be complete.
    arrivals = [round(event.at - began, 2) for event in events]
    assert texts[-1].at - texts[0].at > 0.7, arrivals
    assert sorted(later.at - earlier.at for earlier, later in pairwise(texts))[2] > 0.1, arrivals
    usage_event = _one(events, "usage")
    assert texts[0].at < usage_event.at - 0.9, arrivals
    usage = usage_event.json
    assert (usage["input_tokens"], usage["output_tokens"], usage["completed"]) == (30, 24, True)
    _assert_receipt_is_the_spans(usage, _call_span(otel))
    # The request's total, in the event and on its root span (the route's chat.stream): its one call.
    (request,) = [span for span in otel.exporter.get_finished_spans() if span.name == "chat.stream"]
    assert (usage["request_cost_usd"], usage["request_calls"]) == (usage["cost_usd"], 1)
    assert round(request.attributes["costspan.request.cost"], 10) == usage["cost_usd"]  # the event rounds
    # Another worker sees the reservation held until the service's journal thread applies the settlement handed to
    # it (docs/budgets.md), which may be just after the client has its receipt.
    _wait_for(lambda: service.budget.reserved("ada") == 0.0)
    assert round(service.budget.spent("ada") * NANOS) == round(usage["cost_usd"] * NANOS)
    [row] = service.ledger_rows()
    assert (round(row["cost_usd"], COST_DECIMALS), row["input_tokens"], row["output_tokens"]) == (
        usage["cost_usd"],
        30,
        24,
    )
    cost_text = re.search(r'"cost_usd": ([^,]+),', usage_event.data).group(1)
    assert len(cost_text.partition(".")[2]) <= COST_DECIMALS, cost_text  # never float noise: 0.00045000000000000004
    assert (row["user_id"], row["stream_completed"], row["estimated"]) == ("ada", 1, 0)
    otel.lifecycle.assert_each_ended_once()


async def test_concurrent_streams_of_many_users_are_each_counted_once(
    service: Service, server: ProviderServer, otel: Otel
) -> None:
    """50 streams at once from 10 users: each user's spend in Redis is the sum of their requests' costs, every
    span ends once, and each call is attributed to the user whose request made it."""
    users = [f"user-{index}" for index in range(10)]
    server.push(*(Reply(text=STORY, chunks=5, chunk_delay=0.02, usage=_usage(None, 20 + n, 5 + n)) for n in range(50)))

    async def one(client: httpx.AsyncClient, user: str) -> tuple[str, dict[str, Any]]:
        async with client.stream("POST", "/chat/stream", json=_body(user, max_tokens=100)) as response:
            assert response.status_code == 200, await response.aread()
            events = [event async for event in _aevents(response)]
        assert events[-1].data == "[DONE]"
        return user, _one(events, "usage").json

    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=service.url, timeout=30, limits=limits) as client:
        results = await asyncio.gather(*(one(client, users[n % 10]) for n in range(50)))
        reports = {user: (await client.get(f"/usage/{user}")).json() for user in users}

    costs: dict[str, list[float]] = defaultdict(list)
    for user, usage in results:
        assert usage["completed"] is True and usage["estimated"] is False
        costs[user].append(usage["cost_usd"])
    for user in users:
        assert len(costs[user]) == 5
        spent = sum(round(cost * NANOS) for cost in costs[user])
        assert round(await service.budget.aspent(user) * NANOS) == spent, user
        assert await service.budget.areserved(user) == 0.0
        assert round(reports[user]["spent_usd"] * NANOS) == spent
    otel.lifecycle.assert_each_ended_once()
    calls = otel.spans()
    requests = {span.context.span_id: span for span in otel.exporter.get_finished_spans() if span.name == "chat.stream"}
    assert len(calls) == len(requests) == 50
    for call in calls:
        assert call.parent is not None
        assert call.attributes["user.id"] == requests[call.parent.span_id].attributes["user.id"]
    by_span = Counter(
        (call.attributes["user.id"], round(call.attributes["gen_ai.usage.cost.amount"], COST_DECIMALS))
        for call in calls
    )
    assert by_span == Counter((user, usage["cost_usd"]) for user, usage in results)
    rows = service.ledger_rows()
    assert Counter((row["user_id"], round(row["cost_usd"], COST_DECIMALS)) for row in rows) == by_span


@pytest.mark.parametrize("service", ["2.3", "2.4"], ids=["asgi-2.3", "asgi-2.4"], indirect=True)
@pytest.mark.parametrize("model", MODELS, ids=MODEL_IDS)
def test_client_gone_after_two_events_stops_the_provider_stream(
    service: Service, server: ProviderServer, otel: Otel, model: str | None
) -> None:
    """The provider is slow (half a second between chunks): the service lets go of its stream as soon as the
    client has gone, not when it next has something to write, and the partial cost is the user's."""
    server.push(Reply(text="word " * 20, chunks=20, chunk_delay=0.5, usage=_usage(model, 30, 20)))
    with httpx.stream("POST", f"{service.url}/chat/stream", json=_body("ada", model)) as response:
        read = []
        for event in _events(response.iter_lines()):
            read.append(event)
            if len(read) == 2:
                break
    gone = time.monotonic()
    assert [event.kind for event in read] == ["message", "message"]
    hung_up = _wait_for(lambda: len(server.hangups) == 1)
    assert hung_up < 1.0, f"the provider's stream was closed {hung_up:.2f} s after the client left"
    assert time.monotonic() - gone < 1.5
    _wait_for(lambda: len(otel.spans()) == 1)
    span = _call_span(otel)
    attributes = span.attributes or {}
    assert attributes["costspan.stream.completed"] is False
    assert attributes["gen_ai.usage.cost.amount"] > 0
    assert attributes["costspan.usage.estimated"] is True
    _wait_for(lambda: service.budget.reserved("ada") == 0.0)
    assert round(service.budget.spent("ada") * NANOS) == round(attributes["gen_ai.usage.cost.amount"] * NANOS)
    _wait_for(lambda: len(otel.exporter.get_finished_spans()) == 2)
    otel.lifecycle.assert_each_ended_once()
    [row] = service.ledger_rows()
    assert (row["stream_completed"], row["estimated"]) == (0, 1)
    assert row["cost_usd"] == attributes["gen_ai.usage.cost.amount"]


def test_client_gone_before_the_stream_began_leaves_nothing_open(
    service: Service, server: ProviderServer, otel: Otel
) -> None:
    """The provider is slow to start and the client gives up first: the route still opens the provider's stream
    (it cannot know), and the response, finding its client gone, closes it and ends both spans."""
    server.push(Reply(delay=0.6, text="word " * 20, chunks=20, chunk_delay=0.2))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{service.url}/chat/stream", json=_body("erin"), timeout=0.3)
    _wait_for(lambda: len(server.hangups) == 1)
    _wait_for(lambda: len(otel.exporter.get_finished_spans()) == 2)
    otel.lifecycle.assert_each_ended_once()
    attributes = _call_span(otel).attributes or {}
    assert attributes["costspan.stream.completed"] is False
    _wait_for(lambda: service.budget.reserved("erin") == 0.0)
    assert round(service.budget.spent("erin") * NANOS) == round(attributes["gen_ai.usage.cost.amount"] * NANOS)


def test_user_at_95_percent_is_refused_before_any_provider_call(
    service: Service, server: ProviderServer, otel: Otel
) -> None:
    budget = service.budget
    spent = DAILY_BUDGET_USD * 0.95
    budget.settle(budget.reserve("bob", spent), spent)
    response = httpx.post(f"{service.url}/chat/stream", json=_body("bob", max_tokens=1024))
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["retry-after"]) > 0
    error = response.json()["error"]
    assert error["code"] == "budget_exceeded"
    assert "for user.id='bob' refused a call needing" in error["message"]
    assert (error["limit_usd"], error["spent_usd"], error["reserved_usd"]) == (DAILY_BUDGET_USD, spent, 0.0)
    assert error["needed_usd"] > DAILY_BUDGET_USD - spent
    assert server.requests == [], "a refused call reached the provider"
    attributes = _call_span(otel).attributes or {}
    assert attributes["error.type"] == "BudgetExceededError"
    assert "gen_ai.usage.cost.amount" not in attributes
    assert (budget.spent("bob"), budget.reserved("bob")) == (spent, 0.0)
    otel.lifecycle.assert_each_ended_once()
    assert service.ledger_rows() == [], "a call never sent is no row"


async def test_user_crossing_the_limit_mid_stream_gets_budget_exceeded(
    service: Service, server: ProviderServer, otel: Otel
) -> None:
    """With max_tokens bounded, a reservation covers the whole answer but for one thing: the input is an estimate
    from the text until Claude counts it (message_start). This prompt is a hex dump, which Claude counts far more
    densely than the estimate; carol has little more left than the reservation, because her other calls spent the
    rest while this one waited for the provider. As the answer streams, its cost passes what was reserved, the
    budget cannot grant the next step, and the stream is cut where it is, the cost so far counted."""
    prompt = "Explain this packet: " + "3f9a c07e 11b2 8d4f " * 19
    input_tokens = len(prompt) * 2 // 3  # a token per 1.5 characters; the estimate assumes 4 (or tiktoken's 2-3)
    budget = service.budget
    server.push(
        Reply(delay=0.5, text="word " * 100, chunks=100, chunk_delay=0.005, usage=_usage(None, input_tokens, 100))
    )
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:

        async def read() -> list[Event]:
            async with client.stream("POST", "/chat/stream", json=_body("carol", prompt=prompt, max_tokens=100)) as r:
                assert r.status_code == 200
                return [event async for event in _aevents(r)]

        reading = asyncio.create_task(read())
        while not (reserved := await budget.areserved("carol")):  # the reservation, while the provider waits
            await asyncio.sleep(0.005)
        # Her other calls leave a fifth of it to spare: less than the quarter of it a stream asks for next.
        others = DAILY_BUDGET_USD - reserved * 1.2
        await budget.asettle(await budget.areserve("carol", others), others)
        events = await reading
    assert [event.kind for event in events[-3:]] == ["error", "usage", "message"]
    assert events[-1].data == "[DONE]"
    texts = _texts(events)
    assert 0 < len(texts) < 100, "cut mid-stream"
    error = _one(events, "error").json
    assert error["code"] == "budget_exceeded" and "stopped a call needing" in error["message"]
    usage = _one(events, "usage").json
    assert usage["input_tokens"] == input_tokens and usage["completed"] is False
    span = _call_span(otel)
    _assert_receipt_is_the_spans(usage, span)
    assert (span.attributes or {})["error.type"] == "BudgetExceededError"
    _wait_for(lambda: len(server.hangups) == 1)
    assert await budget.areserved("carol") == 0.0
    spent = await budget.aspent("carol")
    assert round(spent * NANOS) == round(others * NANOS) + round(usage["cost_usd"] * NANOS)
    # Over the limit by one chunk at most (docs/budgets.md): here message_start, which brings the input count the
    # estimate fell short of.
    model = (span.attributes or {})["gen_ai.request.model"]
    first_chunk = cost_of("anthropic", str(model), Usage(input_tokens=input_tokens))
    assert first_chunk is not None
    assert spent <= DAILY_BUDGET_USD + first_chunk.amount
    otel.lifecycle.assert_each_ended_once()
    [row] = service.ledger_rows()
    assert (round(row["cost_usd"], COST_DECIMALS), row["error_type"]) == (usage["cost_usd"], "BudgetExceededError")


INVALID = {
    "empty-prompt": {"prompt": ""},
    "huge-prompt": {"prompt": "x" * 50_001},
    "huge-max-tokens": {"max_tokens": 1_000_000},
    "zero-max-tokens": {"max_tokens": 0},
    "temperature-above-1": {"temperature": 1.5},
    "negative-temperature": {"temperature": -0.1},
    "unknown-model": {"model": "gpt-9-ultra"},
    "missing-user-id": {"user_id": None},
}


@pytest.mark.parametrize("change", INVALID.values(), ids=INVALID.keys())
def test_invalid_request_gets_422_and_costs_nothing(
    service: Service, server: ProviderServer, otel: Otel, change: dict[str, Any]
) -> None:
    body = {key: value for key, value in {**_body("dan"), **change}.items() if value is not None}
    response = httpx.post(f"{service.url}/chat/stream", json=body)
    assert response.status_code == 422
    (field,) = change
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["body", field]
    assert detail["type"] == ("missing" if change[field] is None else detail["type"])
    assert server.requests == []
    assert otel.exporter.get_finished_spans() == ()
    assert service.budget.spent("dan") == 0.0


def test_usage_of_an_unknown_user_is_zero_and_a_bad_id_is_422(service: Service) -> None:
    report = httpx.get(f"{service.url}/usage/nobody").json()
    assert (report["spent_usd"], report["reserved_usd"], report["remaining_usd"]) == (0.0, 0.0, DAILY_BUDGET_USD)
    assert httpx.get(f"{service.url}/usage/a%20b").status_code == 422


def test_demo_walks_through_the_service_offline() -> None:
    lines: list[str] = []
    run_demo(lines.append)
    text = "\n".join(lines)
    assert text.count("event: usage") == 2 and text.count("data: [DONE]") == 2
    assert '"model": "claude-sonnet-4-6"' in text and '"model": "gpt-4.1-mini"' in text
    assert "the provider saw its stream closed" in text
    assert "429 (Retry-After:" in text and "requests that reached the provider: 0" in text
    assert "422" in text
    # ada's three calls, bob's refused one no row: the ledger's total is what GET /usage said she spent.
    [usage] = [json.loads(line.split("200  ", 1)[1]) for line in lines if '"user_id":"ada"' in line]
    [ada] = [line for line in lines[-1].splitlines() if line.startswith("ada,")]
    assert ada.startswith("ada,3,") and ada.endswith(f",{usage['spent_usd']},0")
    assert "bob," not in lines[-1]


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf"])
def test_a_bad_daily_budget_is_named(value: str) -> None:
    with pytest.raises(ValueError, match=f"DAILY_BUDGET_USD={value!r} is not a positive amount of USD"):
        Settings.from_env({"DAILY_BUDGET_USD": value})


def test_settings_from_the_environment() -> None:
    assert Settings.from_env({}) == Settings()
    given = Settings.from_env({"DAILY_BUDGET_USD": "2.5", "REDIS_URL": "redis://cache:6379/1"})
    assert (given.daily_budget_usd, given.redis_url) == (2.5, "redis://cache:6379/1")


def test_serving_without_a_key_or_with_a_bad_setting_says_what_is_wrong(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert main([]) == 2
    assert "ANTHROPIC_API_KEY is not set" in capsys.readouterr().err
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-not-used")
    monkeypatch.setenv("REDIS_URL", "http://cache:6379")
    assert main([]) == 2
    assert "Budget store 'http://cache:6379' is not a Redis URL" in capsys.readouterr().err
