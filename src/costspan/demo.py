"""``costspan demo``: real SDK calls against costspan's local provider server, reported from the spans, then
``costspan report`` over the ledger the same calls were written to. That ledger is the demo's own, kept in the
user's state directory (each run starts it anew) so that the ``costspan report --ledger ...`` the demo ends with
shows the same calls; it is never the application's ledger.

Each entry of :data:`STEPS` makes its calls with one client of the server; a new kind of call is one more step.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from .budgets import Budget, BudgetExceededError
from .context import attribution
from .instrumentor import CostspanInstrumentor
from .ledger._render import render_plain
from .ledger._report import period_of, summarize
from .testing import ProviderServer, Reply

__all__ = ["STEPS", "demo_ledger_path", "run_demo"]

_USER = {"role": "user", "content": "Summarise the quarterly report in three bullet points."}


def demo_ledger_path() -> Path:
    """The demo's ledger: ``demo-ledger.db`` in costspan's per-user state directory (platformdirs)."""
    from platformdirs import user_state_path

    return user_state_path("costspan", appauthor=False) / "demo-ledger.db"


def _fresh_ledger() -> Path:
    path = demo_ledger_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in (path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")):
        stale.unlink(missing_ok=True)
    return path


def run_demo(echo: Callable[[str], Any]) -> None:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    # The table marks the unpriced model itself; the log line would only interleave with it.
    logger = logging.getLogger("costspan")
    level = logger.level
    logger.setLevel(logging.ERROR)
    ledger = _fresh_ledger()
    first_day = date.today()
    instrumentor = CostspanInstrumentor()
    instrumentor.instrument(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(), ledger=ledger, budgets=[INTERNS]
    )
    _refusals.clear()
    try:
        with ProviderServer() as server:
            echo(f"costspan demo: real SDK calls against a local server at {server.url} (no API key)\n")
            for step in STEPS:
                step(server)
    finally:
        instrumentor.uninstrument()  # also writes the ledger's last rows and closes it
        logger.setLevel(level)
    _print_spans(echo, exporter.get_finished_spans())
    _print_budget(echo)
    _print_report(echo, ledger, first_day)


def _print_budget(echo: Callable[[str], Any]) -> None:
    echo(
        f"\nBudget {INTERNS.name!r}: ${INTERNS.limit_usd} a day for team=interns, ${INTERNS.spent('interns'):.6f} spent"
    )
    for refusal in _refusals:
        echo(f"  refused before sending: BudgetExceededError: {refusal}")


def _print_report(echo: Callable[[str], Any], ledger: Path, first_day: date) -> None:
    period = period_of(since=first_day.isoformat(), until=date.today().isoformat())
    echo("\nThe same calls, as `costspan report` prints them from the ledger they were written to:\n")
    echo(render_plain(summarize(ledger, "model", period)).rstrip("\n"))
    echo(
        f"\nThe demo's ledger stays at {ledger} (the next demo starts it anew). Next:\n"
        f"  costspan report --ledger {shlex.quote(str(ledger))} --by user"
    )


def _openai_step(server: ProviderServer) -> None:
    import openai

    with (
        openai.OpenAI(base_url=server.openai_base_url, api_key="sk-demo", max_retries=0) as client,
        attribution(user_id="u-demo", feature="reports"),
    ):
        _openai_calls(client, server)


def _anthropic_step(server: ProviderServer) -> None:
    import anthropic

    with (
        anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="sk-ant-demo", max_retries=0) as claude,
        attribution(user_id="u-claude"),
    ):
        _anthropic_calls(claude, server)


def _gemini_step(server: ProviderServer) -> None:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="demo-key", http_options=types.HttpOptions(base_url=server.url))
    with attribution(user_id="u-gemini"):
        thinking = {"promptTokenCount": 3000, "cachedContentTokenCount": 2048, "candidatesTokenCount": 400,
                    "thoughtsTokenCount": 1200, "totalTokenCount": 4600}  # fmt: skip
        server.push(Reply(usage=thinking, chunks=20))
        for _ in client.models.generate_content_stream(model="gemini-2.5-flash", contents=_USER["content"]):
            pass


def _bedrock_step(server: ProviderServer) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=server.url,
        aws_access_key_id="AKIADEMO",
        aws_secret_access_key="demo-secret",
        config=Config(retries={"total_max_attempts": 1}),
    )
    with attribution(user_id="u-bedrock"):
        server.push(Reply(usage={"inputTokens": 1400, "outputTokens": 300, "totalTokens": 1700}))
        client.converse(
            modelId="us.anthropic.claude-haiku-4-5-20251001-v1:0",
            messages=[{"role": "user", "content": [{"text": _USER["content"]}]}],
            inferenceConfig={"maxTokens": 512},
        )


INTERNS = Budget(0.005, window="day", scope="team", name="interns-daily")
"""The demo's budget: $0.005 a day for the calls of ``team="interns"``."""


def _budget_step(server: ProviderServer) -> None:
    import openai

    with (
        openai.OpenAI(base_url=server.openai_base_url, api_key="sk-demo", max_retries=0) as client,
        attribution(user_id="u-intern", team="interns"),
    ):
        _budget_calls(client, server)


def _budget_calls(client: Any, server: ProviderServer) -> None:
    server.push(Reply(usage={"prompt_tokens": 1200, "completion_tokens": 250, "total_tokens": 1450}))
    client.chat.completions.create(model="gpt-4.1", messages=[_USER], max_tokens=300)
    try:  # its worst case (input and max_tokens) no longer fits: refused before anything is sent
        client.chat.completions.create(model="gpt-4.1", messages=[_USER], max_tokens=300)
    except BudgetExceededError as refused:
        _refusals.append(str(refused))


_refusals: list[str] = []

STEPS: list[Callable[[ProviderServer], None]] = [
    _openai_step,
    _anthropic_step,
    _gemini_step,
    _bedrock_step,
    _budget_step,
]
"""The demo's calls, in order: each step makes its calls against the local server."""


def _openai_calls(client: Any, server: ProviderServer) -> None:
    usage = {"prompt_tokens": 1850, "completion_tokens": 240, "total_tokens": 2090}
    server.push(Reply(usage=usage))
    client.chat.completions.create(model="gpt-4.1-mini", messages=[_USER])

    cached = {**usage, "prompt_tokens_details": {"cached_tokens": 1536}}
    server.push(Reply(usage=cached, chunks=40))
    for _ in client.chat.completions.create(model="gpt-4.1", messages=[_USER], stream=True):
        pass

    reasoning = {
        "input_tokens": 900,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 2600,
        "output_tokens_details": {"reasoning_tokens": 2200},
        "total_tokens": 3500,
    }
    server.push(Reply(usage=reasoning, service_tier="flex"))
    client.responses.create(model="o4-mini", input="Plan the migration.", service_tier="flex")

    server.push(Reply(usage={"prompt_tokens": 5000, "total_tokens": 5000}))
    client.embeddings.create(model="text-embedding-3-small", input=["quarterly report"] * 20)

    server.push(Reply(chunks=60, text=" ".join(["word"] * 60)))
    with client.chat.completions.create(model="gpt-4o-mini", messages=[_USER], stream=True) as stream:
        for index, _ in enumerate(stream):
            if index == 10:
                break  # the user stopped reading: usage is estimated and flagged

    server.push(Reply(usage=usage))
    client.chat.completions.create(model="my-finetune-v2", messages=[_USER])


def _anthropic_calls(client: Any, server: ProviderServer) -> None:
    cache_write = {
        "input_tokens": 120,
        "output_tokens": 350,
        "cache_creation_input_tokens": 6000,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 2000, "ephemeral_1h_input_tokens": 4000},
    }
    server.push(Reply(usage=cache_write))
    client.messages.create(model="claude-sonnet-4-6", max_tokens=1024, messages=[_USER])

    cache_read = {
        **cache_write,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 6000,
        "cache_creation": None,
    }
    server.push(Reply(usage=cache_read, chunks=30, usage_updates=3))
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=1024, messages=[_USER]) as stream:
        stream.until_done()

    web_search = {"input_tokens": 2400, "output_tokens": 600, "server_tool_use": {"web_search_requests": 3}}
    server.push(Reply(usage=web_search))
    client.messages.create(model="claude-haiku-4-5", max_tokens=1024, messages=[_USER])


def _cost_makeup(attributes: Any) -> list[str]:
    """What the cost holds beyond tokens at the standard rates: per-request fees, a service tier's prices."""
    notes = []
    tier = attributes.get("openai.response.service_tier") or attributes.get("anthropic.response.service_tier")
    if tier not in (None, "default", "standard", "auto"):
        notes.append(f"{tier} tier prices")
    other = attributes.get("costspan.cost.other")
    if isinstance(other, float) and other > 0:
        notes.append(f"incl. ${other:.6f} web search and other request fees")
    return notes


def _print_spans(echo: Callable[[str], Any], spans: tuple[ReadableSpan, ...]) -> None:
    total = 0.0
    for span in spans:
        attributes = span.attributes or {}
        amount = attributes.get("gen_ai.usage.cost.amount")
        notes = [
            note
            for key, note in (
                ("costspan.usage.estimated", "estimated"),
                ("costspan.cost.unpriced", "unpriced: no known price"),
            )
            if attributes.get(key)
        ]
        if attributes.get("costspan.stream.completed") is False:
            notes.append("stream stopped early")
        if attributes.get("error.type") == "BudgetExceededError":
            notes.append("refused by a budget: nothing sent")
        notes.extend(_cost_makeup(attributes))
        if isinstance(amount, float):
            cost = f"${amount:.6f}"
        else:
            cost = "   unpriced" if attributes.get("costspan.cost.unpriced") else "         - "
        total += amount if isinstance(amount, float) else 0.0
        echo(
            f"{span.name:<40} in {attributes.get('gen_ai.usage.input_tokens', 0):>6}"
            f" (cache read {attributes.get('gen_ai.usage.cache_read.input_tokens', 0):>5},"
            f" write {attributes.get('gen_ai.usage.cache_write.input_tokens', 0):>5})"
            f"  out {attributes.get('gen_ai.usage.output_tokens', 0):>5}"
            f" (reasoning {attributes.get('gen_ai.usage.reasoning.output_tokens', 0):>5})"
            f"  {cost}  user={attributes.get('user.id', '-')}" + (f"  [{', '.join(notes)}]" if notes else "")
        )
    echo(f"\nTotal: ${total:.6f} over {len(spans)} calls")
