"""A request's cost under real servers: FastAPI routes under uvicorn with the official FastAPI instrumentation,
the real SDK clients against the local provider server, and two services talking over real HTTP (httpx with its
instrumentation propagating the trace context and W3C baggage)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anthropic
import httpx
import openai
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from request.helpers import MESSAGES, call_spans, cost_sum, only

import costspan
from costspan import cli
from costspan.testing import ProviderServer
from examples.fastapi_sse.serving import serving
from ledger_support import rows
from support import API_KEY

if TYPE_CHECKING:
    from conftest import Otel

COST, CALLS = "costspan.request.cost", "costspan.request.calls"


def _instrumented_app(otel: Otel) -> FastAPI:
    app = FastAPI()
    FastAPIInstrumentor.instrument_app(app, tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    return app


@contextlib.contextmanager
def _served(app: FastAPI) -> Iterator[str]:
    try:
        with serving(app) as url:
            yield url
    finally:
        FastAPIInstrumentor.uninstrument_app(app)


def _server_span(otel: Otel, name: str) -> ReadableSpan:
    found = [span for span in otel.exporter.get_finished_spans() if span.kind is SpanKind.SERVER and span.name == name]
    assert len(found) == 1, [span.name for span in otel.exporter.get_finished_spans()]
    return found[0]


def _three_calls_app(otel: Otel, server: ProviderServer) -> FastAPI:
    """A route making three calls, one streamed, as an async route and as a sync one (Starlette's threadpool)."""
    app = _instrumented_app(otel)
    oai = {"base_url": server.openai_base_url, "api_key": API_KEY, "max_retries": 0}
    claude = {"base_url": server.anthropic_base_url, "api_key": API_KEY, "max_retries": 0}
    chat: dict[str, Any] = {"model": "gpt-4.1-mini", "messages": MESSAGES}
    message: dict[str, Any] = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": MESSAGES}

    @app.post("/async")
    async def answer_async() -> dict[str, Any]:
        async with openai.AsyncOpenAI(**oai) as gpt, anthropic.AsyncAnthropic(**claude) as claude_client:
            await gpt.chat.completions.create(**chat)
            async for _ in await claude_client.messages.create(**message, stream=True):
                pass
            await claude_client.messages.create(**message)
        return _running()

    @app.post("/sync")
    def answer_sync() -> dict[str, Any]:
        with openai.OpenAI(**oai) as gpt, anthropic.Anthropic(**claude) as claude_client:
            for _ in gpt.chat.completions.create(**chat, stream=True):
                pass
            gpt.chat.completions.create(**chat)
            claude_client.messages.create(**message)
        return _running()

    return app


def _running() -> dict[str, Any]:
    run = costspan.current_run()
    assert run is not None, "the route runs in its request"
    return {"cost": run.cost, "calls": run.calls}


@pytest.mark.parametrize("route", ["/async", "/sync"])
def test_the_server_span_carries_the_exact_sum_of_the_requests_calls(
    instrumented: None, server: ProviderServer, otel: Otel, route: str
) -> None:
    with _served(_three_calls_app(otel, server)) as url:
        answer = httpx.post(url + route, timeout=30)
        assert answer.status_code == 200, answer.text
    calls = call_spans(otel)
    assert len(calls) == 3 and any(span.attributes["gen_ai.request.stream"] for span in calls)
    request = _server_span(otel, f"POST {route}")
    attributes = request.attributes
    assert attributes["costspan.request.cost"] == cost_sum(calls) == answer.json()["cost"]
    assert attributes["costspan.request.calls"] == 3 == answer.json()["calls"]
    for name in ("input_tokens", "output_tokens"):
        assert attributes[f"costspan.request.{name}"] == sum(span.attributes[f"gen_ai.usage.{name}"] for span in calls)
    assert all(span.context.trace_id == request.context.trace_id for span in calls)
    assert {span.attributes["costspan.request.name"] for span in calls} == {f"POST {route}"}


def _downstream_app(otel: Otel, server: ProviderServer) -> FastAPI:
    """A worker service: it makes the provider call, and knows nothing of the user but what the request says."""
    app = _instrumented_app(otel)

    @app.post("/work")
    async def work() -> dict[str, Any]:
        async with openai.AsyncOpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0) as gpt:
            await gpt.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)
        return _running()

    return app


def _edge_app(otel: Otel, downstream: str) -> FastAPI:
    """The edge: it knows the user, and calls the worker with an instrumented httpx client."""
    app = _instrumented_app(otel)

    @app.post("/ask/{user}")
    async def ask(user: str) -> Any:
        async with httpx.AsyncClient() as http:
            HTTPXClientInstrumentor.instrument_client(http, tracer_provider=otel.tracer_provider)
            with costspan.attribution(user_id=user, session_id="s-1", propagate=True):
                answer = await http.post(downstream + "/work", timeout=30)
        return answer.json()

    return app


@pytest.fixture
def downstream(instrument: Any, server: ProviderServer, otel: Otel, tmp_path: Path) -> Iterator[str]:
    instrument(attribution_from_baggage=True, ledger=tmp_path / "ledger.db")
    with _served(_downstream_app(otel, server)) as url:
        yield url


def test_the_user_set_at_the_edge_attributes_the_downstream_calls(downstream: str, otel: Otel, tmp_path: Path) -> None:
    with _served(_edge_app(otel, downstream)) as edge:
        for user in ("ada", "grace"):
            answer = httpx.post(f"{edge}/ask/{user}", timeout=30)
            assert answer.status_code == 200, answer.text
            assert answer.json()["calls"] == 1
    otel.tracer_provider.force_flush()
    written = rows(tmp_path / "ledger.db")
    assert [(row["user_id"], row["attributes"]) for row in written] == [
        ("ada", '{"session.id": "s-1"}'),
        ("grace", '{"session.id": "s-1"}'),
    ]
    served = [span for span in otel.exporter.get_finished_spans() if span.kind is SpanKind.SERVER]
    worker = [span for span in served if span.name == "POST /work"]
    edges = [span for span in served if span.name.startswith("POST /ask")]
    assert len(worker) == len(edges) == 2
    # One trace across both services; the calls are the worker's, counted in its request only.
    assert {span.context.trace_id for span in worker} == {span.context.trace_id for span in edges}
    assert all(span.attributes["costspan.request.calls"] == 1 for span in worker)
    assert not any("costspan.request.cost" in span.attributes for span in edges)


def _ignored(otel: Otel) -> dict[str, int]:
    points = otel.metrics().get("costspan.baggage.ignored", [])
    return {point.attributes["costspan.baggage.reason"]: point.value for point in points}


def test_baggage_with_an_unlisted_key_or_an_oversized_value_is_ignored_and_counted(downstream: str, otel: Otel) -> None:
    """Any client can send baggage: only the listed keys are read, and only values of a bounded size."""
    baggage = f"user.id=mallory,billing.account=acme,session.id={'x' * 129},team=red%0Ablue,feature=search"
    answer = httpx.post(downstream + "/work", headers={"baggage": baggage}, timeout=30)
    assert answer.status_code == 200, answer.text
    (span,) = call_spans(otel)
    read = {key: span.attributes.get(key) for key in ("user.id", "session.id", "team", "feature", "billing.account")}
    assert read == {
        "user.id": "mallory",
        "session.id": None,
        "team": None,
        "feature": "search",
        "billing.account": None,
    }
    assert _ignored(otel) == {"unlisted": 1, "invalid": 2}


def test_baggage_is_not_read_unless_asked_for(instrumented: None, server: ProviderServer, otel: Otel) -> None:
    with _served(_downstream_app(otel, server)) as url:
        answer = httpx.post(url + "/work", headers={"baggage": "user.id=mallory"}, timeout=30)
        assert answer.status_code == 200, answer.text
    (span,) = call_spans(otel)
    assert "user.id" not in span.attributes
    assert _ignored(otel) == {}


def test_the_ledger_names_each_calls_request_and_reports_the_most_expensive_requests(
    instrument: Any, server: ProviderServer, otel: Otel, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.db"
    instrument(ledger=ledger)
    with _served(_three_calls_app(otel, server)) as url:
        for route in ("/async", "/sync", "/async"):
            assert httpx.post(url + route, timeout=30).status_code == 200
    with openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0) as gpt:
        with costspan.track("nightly-digest") as run:
            gpt.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
        gpt.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)  # in no request
    otel.tracer_provider.force_flush()
    written = rows(ledger)
    assert len(written) == 11, "one row per call, none for a run"
    finished = otel.exporter.get_finished_spans()
    requests = [span for span in finished if span.kind is SpanKind.SERVER] + [only(finished, "nightly-digest")]
    alone = finished[-1]  # the call in no request
    assert alone.parent is None
    expected = [
        (f"{span.name} {span.context.trace_id:032x}", span.attributes[CALLS], span.attributes[COST])
        for span in requests
    ]
    expected.append((f"(unnamed) {alone.context.trace_id:032x}", 1, alone.attributes["gen_ai.usage.cost.amount"]))
    expected.sort(key=lambda line: (-line[2], -line[1], line[0]))
    answer = CliRunner().invoke(cli.main, ["report", "--by", "request", "--ledger", str(ledger), "--format", "json"])
    assert answer.exit_code == 0, answer.output
    document = json.loads(answer.output)
    lines = [(line["key"], line["requests"], line["cost_usd"]) for line in document["rows"]]
    assert [line[:2] for line in lines] == [line[:2] for line in expected]
    assert [line[2] for line in lines] == pytest.approx([line[2] for line in expected], rel=1e-12)
    assert run.calls == 1 and document["total"]["requests"] == 11
    top = CliRunner().invoke(cli.main, ["report", "--by", "request", "--top", "2", "--ledger", str(ledger)])
    assert top.exit_code == 0 and top.output.count("\n") >= 2, top.output
    assert [row["request_name"] for row in written if row["request_model"] == "gpt-4.1"] == ["nightly-digest"]
