"""A worker process for the cross-process call tests: ``python call_worker.py JSON``.

Like every worker of a deployment, it instruments costspan with the same Redis budget and makes real OpenAI
calls (half of them streams read inline) against the test's provider server, ``calls`` of them or until the file
``stop`` names exists. It prints ``ready``, waits for ``go`` on stdin so that all workers start together, and
prints one JSON line: the cost of every call its spans record, the refusals it met, and for each call its cost
(None if it had none) and whether the budget met a store error during it (then the budget may not have counted
it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import openai
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import costspan

MESSAGES = [{"role": "user", "content": "Summarise the quarterly report in three bullet points, please."}]


def call(client: openai.OpenAI, index: int) -> None:
    """One call as users write it (the budget tests' calls): an odd ``index`` is a stream read inline, an even one
    a plain call."""
    if index % 2:
        for _ in client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, max_tokens=16, stream=True):
            pass
    else:
        client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, max_tokens=16)


async def acall(client: openai.AsyncOpenAI, index: int) -> None:
    """:func:`call` on an async client."""
    if index % 2:
        stream = await client.chat.completions.create(
            model="gpt-4.1-mini", messages=MESSAGES, max_tokens=16, stream=True
        )
        async for _ in stream:
            pass
    else:
        await client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, max_tokens=16)


def main() -> None:
    options = json.loads(sys.argv[1])
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    budget = costspan.Budget(**options["budget"])
    costspan.CostspanInstrumentor().instrument(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(), budgets=[budget]
    )
    client = openai.OpenAI(base_url=options["base_url"], api_key="sk-worker", max_retries=0)
    stop = Path(options.get("stop", "/nonexistent"))
    print("ready", flush=True)
    sys.stdin.readline()
    refusals, errored = [], []
    for index in range(options["calls"]):
        if stop.exists():
            break
        errors = budget.store_errors
        try:
            call(client, index)
        except costspan.BudgetExceededError as error:
            refusals.append({key: getattr(error, key) for key in ("spent", "reserved", "limit", "estimate")})
        errored.append(budget.store_errors > errors)
    spans = exporter.get_finished_spans()  # one per call, in order
    calls = [[span.attributes.get("gen_ai.usage.cost.amount"), flag] for span, flag in zip(spans, errored, strict=True)]
    costs = [cost for cost, _ in calls if cost is not None]
    print(json.dumps({"costs": costs, "refusals": refusals, "calls": calls}), flush=True)


if __name__ == "__main__":
    main()
