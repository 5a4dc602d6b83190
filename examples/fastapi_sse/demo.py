"""``python -m examples.fastapi_sse --demo``: the service, offline, against costspan's local provider server,
driven by a client that prints what it receives and when."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from costspan import cli as costspan_cli
from costspan.testing import ProviderServer, Reply

from .app import ChatService, create_app
from .serving import serving
from .settings import Settings

__all__ = ["run_demo"]

DAILY_BUDGET_USD = 0.05
STORY = (
    "The keeper climbed the hundred and twelve steps at dusk, as he had for thirty years, and lit the lamp "
    "while the storm came in from the west."
)

Echo = Callable[[str], None]


def run_demo(echo: Echo = print) -> None:
    with tempfile.TemporaryDirectory() as directory, ProviderServer() as provider:
        ledger = Path(directory) / "ledger.db"
        settings = Settings(
            daily_budget_usd=DAILY_BUDGET_USD,
            anthropic_api_key="sk-ant-demo",
            anthropic_base_url=provider.anthropic_base_url,
            openai_api_key="sk-demo",
            openai_base_url=provider.openai_base_url,
        )
        # Providers of its own, and a ledger in a temporary directory: the demo exports nothing and leaves nothing.
        app = create_app(settings, tracer_provider=TracerProvider(), meter_provider=MeterProvider(), ledger=ledger)
        with serving(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            echo(f"costspan FastAPI SSE demo: the service at {url}, its provider a local server at {provider.url}")
            echo(f"(no API key; scripted answers; a budget of ${DAILY_BUDGET_USD} per user per day, in memory)\n")
            _tour(client, provider, app.state.service, echo)
        # The service has stopped: costspan's uninstrument() wrote the ledger's last rows.
        echo("\nThe same calls in costspan's ledger (`costspan report --by user --format csv`, to the nanodollar):\n")
        echo(_report(ledger))


def _tour(client: httpx.Client, provider: ProviderServer, service: ChatService, echo: Echo) -> None:
    usage = {"input_tokens": 40, "output_tokens": 32}
    echo("1. ada streams an answer from Claude (the default model): each event as it arrives")
    provider.push(Reply(text=STORY, chunks=8, chunk_delay=0.15, usage=usage))
    _stream(client, echo, {"user_id": "ada", "prompt": "Tell me a story about a lighthouse.", "max_tokens": 300})

    echo("\n2. the same route serves an OpenAI model when the request names one")
    openai_usage = {"prompt_tokens": 40, "completion_tokens": 32, "total_tokens": 72}
    provider.push(Reply(text=STORY, chunks=4, chunk_delay=0.1, usage=openai_usage))
    _stream(client, echo, {"user_id": "ada", "prompt": "Tell me a story.", "max_tokens": 300, "model": "gpt-4.1-mini"})

    echo("\n3. ada closes the connection after two events: the provider's stream is closed, what it used is kept")
    provider.push(Reply(text=STORY, chunks=20, chunk_delay=0.3))
    _stream(client, echo, {"user_id": "ada", "prompt": "A long one, please.", "max_tokens": 1000}, stop_after=2)
    waited = _wait(lambda: bool(provider.hangups))
    echo(f"   the provider saw its stream closed {waited:.2f} s later (its next chunk was due within 0.3 s)")
    _wait(lambda: service.budget.reserved("ada") == 0.0)  # the call's end settles the budget in Redis or memory
    _get(client, echo, "/usage/ada")

    echo("\n4. bob has spent 95% of his day (recorded here directly): his next call is refused before it is sent")
    service.budget.settle(service.budget.reserve("bob", DAILY_BUDGET_USD * 0.95), DAILY_BUDGET_USD * 0.95)
    sent = len(provider.requests)
    _post(client, echo, {"user_id": "bob", "prompt": "Write me an essay.", "max_tokens": 2000})
    echo(f"   requests that reached the provider: {len(provider.requests) - sent}")

    echo("\n5. a request the service cannot take: pydantic's 422, nothing sent, nothing spent")
    _post(client, echo, {"user_id": "ada", "prompt": "", "temperature": 3})


def _stream(client: httpx.Client, echo: Echo, body: dict[str, Any], stop_after: int | None = None) -> None:
    echo(f"   POST /chat/stream {json.dumps(body)}")
    began = time.monotonic()
    events = 0
    with client.stream("POST", "/chat/stream", json=body) as response:
        for line in response.iter_lines():
            if not line:
                continue
            echo(f"   +{time.monotonic() - began:5.2f}s  {line}")
            events += line.startswith("data:")
            if stop_after is not None and events == stop_after:
                echo("   (the client goes away)")
                return


def _post(client: httpx.Client, echo: Echo, body: dict[str, Any]) -> None:
    echo(f"   POST /chat/stream {json.dumps(body)}")
    response = client.post("/chat/stream", json=body)
    retry = response.headers.get("retry-after")
    echo(f"   {response.status_code}" + (f" (Retry-After: {retry} s)" if retry else "") + f"  {response.text}")


def _get(client: httpx.Client, echo: Echo, path: str) -> None:
    response = client.get(path)
    echo(f"   GET {path}\n   {response.status_code}  {response.text}")


def _wait(condition: Callable[[], bool], timeout: float = 5.0) -> float:
    """Seconds until ``condition`` held (or ``timeout``)."""
    began = time.monotonic()
    while not condition() and time.monotonic() - began < timeout:
        time.sleep(0.005)
    return time.monotonic() - began


def _report(ledger: Path) -> str:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        costspan_cli.main(["report", "--by", "user", "--format", "csv", "--ledger", str(ledger)], standalone_mode=False)
    return printed.getvalue().rstrip("\n")
