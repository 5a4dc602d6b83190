"""costspan in one line: every OpenAI and Anthropic call gets its exact tokens and USD cost.

    pip install -e '.[openai,anthropic]'      # from the repository's root
    python examples/quickstart.py

With OPENAI_API_KEY and/or ANTHROPIC_API_KEY set, it calls the real APIs (a few dozen tokens each: a small
fraction of a cent) and the calls stay in your ledger, so `costspan report` shows them afterwards. With neither,
it starts costspan's local provider server (it speaks both APIs on 127.0.0.1) and points the SDKs at it through
their usual variables: no key, nothing leaves this machine, and the calls go to a ledger of the quickstart's own
(in costspan's state directory, started anew each run), never yours; it ends with the `costspan report --ledger`
command that reads them.

Each call's cost is read back from the ledger, a plain SQLite file, by the id the provider gave the response:
the same number the call's span carries (``gen_ai.usage.cost.amount``) to any OpenTelemetry backend.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sqlite3
from collections.abc import Iterator

import anthropic
import openai
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from platformdirs import user_state_path

import costspan
from costspan.ledger import ledger_path
from costspan.testing import ProviderServer

QUESTION = "In one sentence: why do LLM bills surprise teams?"


def main() -> None:
    report = "costspan report"
    with contextlib.ExitStack() as stack:
        if not (os.environ.get("OPENAI_API_KEY") or os.environ.get("ANTHROPIC_API_KEY")):
            report += f" --ledger {shlex.quote(stack.enter_context(local_provider_server()))}"

        costspan.instrument()  # the one line: instruments every installed provider SDK

        if os.environ.get("OPENAI_API_KEY"):
            openai_calls()
        if os.environ.get("ANTHROPIC_API_KEY"):
            anthropic_calls()
    print(f"\n`{report}` prints today's spend by model from the ledger; `costspan demo` shows budgets too.")


def openai_calls() -> None:
    client = openai.OpenAI()
    reply = client.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": QUESTION}])
    print(reply.choices[0].message.content)
    print(cost_line("openai gpt-4.1-mini", reply.id))

    response_id = ""
    for chunk in client.chat.completions.create(
        model="gpt-4.1-mini", messages=[{"role": "user", "content": QUESTION}], stream=True
    ):
        response_id = chunk.id
        if chunk.choices:
            print(chunk.choices[0].delta.content or "", end="", flush=True)
    print()
    print(cost_line("openai gpt-4.1-mini, streamed", response_id))


def anthropic_calls() -> None:
    client = anthropic.Anthropic()
    message = client.messages.create(
        model="claude-haiku-4-5", max_tokens=200, messages=[{"role": "user", "content": QUESTION}]
    )
    print("".join(block.text for block in message.content if isinstance(block, anthropic.types.TextBlock)))
    print(cost_line("anthropic claude-haiku-4-5", message.id))

    message_id = ""
    for event in client.messages.create(
        model="claude-haiku-4-5", max_tokens=200, messages=[{"role": "user", "content": QUESTION}], stream=True
    ):
        if isinstance(event, anthropic.types.RawMessageStartEvent):
            message_id = event.message.id
        elif isinstance(event, anthropic.types.RawContentBlockDeltaEvent) and event.delta.type == "text_delta":
            print(event.delta.text, end="", flush=True)
    print()
    print(cost_line("anthropic claude-haiku-4-5, streamed", message_id))


def cost_line(call: str, response_id: str) -> str:
    """What the call cost, from its row in the ledger."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):  # costspan.instrument() set up the OpenTelemetry SDK
        provider.force_flush()  # the ledger is written off the request path: have it written now
    path = ledger_path(None)  # where costspan.instrument() writes it: COSTSPAN_LEDGER, or the per-user default
    if path is None:
        return f"-> {call}: the ledger is off (COSTSPAN_LEDGER=off); the cost is on the call's span"
    with contextlib.closing(sqlite3.connect(path)) as ledger:
        row = ledger.execute(
            "SELECT input_tokens, output_tokens, cost_usd FROM calls WHERE request_id = ?", (response_id,)
        ).fetchone()
    if row is None:
        return f"-> {call}: no row in the ledger at {path}"
    input_tokens, output_tokens, cost = row
    shown = "unpriced (no known price)" if cost is None else f"${cost:.6f}"
    return f"-> {call}: {input_tokens} input + {output_tokens} output tokens = {shown}"


@contextlib.contextmanager
def local_provider_server() -> Iterator[str]:
    """costspan's local server in place of the real APIs, found by the SDKs through their usual variables; yields
    the ledger the calls go to: COSTSPAN_LEDGER's, else the quickstart's own, never the user's."""
    with ProviderServer() as server:
        os.environ.update(
            OPENAI_BASE_URL=server.openai_base_url,
            OPENAI_API_KEY="sk-local",
            ANTHROPIC_BASE_URL=server.anthropic_base_url,
            ANTHROPIC_API_KEY="sk-ant-local",
        )
        own = user_state_path("costspan", appauthor=False) / "quickstart-ledger.db"
        ledger = os.environ.setdefault("COSTSPAN_LEDGER", str(own))
        if ledger == str(own):  # started anew: it holds this run's calls only
            own.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            own.unlink(missing_ok=True)
        print(f"No API key set: calling costspan's local provider server at {server.url} instead.\n")
        yield ledger
        if ledger == str(own):
            print(f"\n(These calls went to the quickstart's own ledger, {own}: yours holds only real calls.)")


if __name__ == "__main__":
    main()
