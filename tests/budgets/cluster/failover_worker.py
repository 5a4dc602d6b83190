"""A worker process for the failover test: ``python failover_worker.py JSON``.

It instruments costspan with a Redis Cluster budget that lets calls through while its store fails
(``on_store_error="allow"``) and makes real OpenAI calls (every other one a stream) against the test's provider
server until it has made ``calls`` of them or the file ``stop`` names exists. It prints ``ready``, waits for ``go``,
and prints one JSON line: for each call, the cost its span records and whether the budget met a store error
during it (then the budget may or may not have counted it).
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
    stop = Path(options["stop"])
    print("ready", flush=True)
    sys.stdin.readline()
    calls = []
    for index in range(options["calls"]):
        if stop.exists():
            break
        errors = budget.store_errors
        if index % 2:
            for _ in client.chat.completions.create(
                model="gpt-4.1-mini", messages=MESSAGES, max_tokens=16, stream=True
            ):
                pass
        else:
            client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, max_tokens=16)
        (span,) = exporter.get_finished_spans()
        exporter.clear()
        calls.append([span.attributes["gen_ai.usage.cost.amount"], budget.store_errors > errors])
    print(json.dumps({"calls": calls}), flush=True)


if __name__ == "__main__":
    main()
