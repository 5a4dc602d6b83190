"""A worker process for the cross-process call tests: ``python call_worker.py JSON``.

Like every worker of a deployment, it instruments costspan with the same Redis budget and makes real OpenAI
calls (half of them streams read inline) against the test's provider server. It prints ``ready``, waits for ``go``
on stdin so that all workers start together, and prints one JSON line: the cost of every call its spans record,
and the refusals it met.
"""

from __future__ import annotations

import json
import sys

import openai
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import costspan

MESSAGES = [{"role": "user", "content": "Summarise the quarterly report in three bullet points, please."}]


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
    print("ready", flush=True)
    sys.stdin.readline()
    refusals = []
    for index in range(options["calls"]):
        try:
            if index % 2:
                for _ in client.chat.completions.create(
                    model="gpt-4.1-mini", messages=MESSAGES, max_tokens=16, stream=True
                ):
                    pass
            else:
                client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, max_tokens=16)
        except costspan.BudgetExceededError as error:
            refusals.append({key: getattr(error, key) for key in ("spent", "reserved", "limit", "estimate")})
    costs = [
        span.attributes["gen_ai.usage.cost.amount"]
        for span in exporter.get_finished_spans()
        if "gen_ai.usage.cost.amount" in span.attributes
    ]
    print(json.dumps({"costs": costs, "refusals": refusals}), flush=True)


if __name__ == "__main__":
    main()
