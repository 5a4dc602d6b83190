"""A worker process for the multi-process ledger tests: ``python ledger_worker.py JSON``.

Like one pod of a deployment, it instruments costspan with the shared PostgreSQL ledger (``ledger=URL``) and, beside
it, an SQLite ledger all workers share (the same calls in both engines, for the report comparison), then makes real
OpenAI calls (plain and streamed, two models, three users, two teams) against the test's provider server. It prints
``ready``, waits for ``go`` on stdin, and prints one JSON line: each call's span id and cost as its span records them.
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
from costspan.ledger import LedgerProcessor

MESSAGES = [{"role": "user", "content": "Summarise the quarterly report in three bullet points, please."}]


def main() -> None:
    options = json.loads(sys.argv[1])
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer_provider.add_span_processor(LedgerProcessor(options["sqlite"]))
    costspan.CostspanInstrumentor().instrument(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(), ledger=options["ledger"]
    )
    client = openai.OpenAI(base_url=options["base_url"], api_key="sk-worker", max_retries=0)
    print("ready", flush=True)
    sys.stdin.readline()
    for index in range(options["calls"]):
        model = ("gpt-4.1-mini", "gpt-4.1")[index % 2]
        with costspan.attribution(user_id=f"u-{index % 3}", team=("search", "ads")[index % 2]):
            if index % 4 == 1:
                for _ in client.chat.completions.create(model=model, messages=MESSAGES, stream=True):
                    pass
            else:
                client.chat.completions.create(model=model, messages=MESSAGES)
    costspan.CostspanInstrumentor().uninstrument()  # writes the PostgreSQL ledger's last rows
    tracer_provider.shutdown()  # and the SQLite ledger's
    calls = {
        f"{span.context.span_id:016x}": span.attributes["gen_ai.usage.cost.amount"]
        for span in exporter.get_finished_spans()
        if span.instrumentation_scope.name.startswith("costspan")
    }
    print(json.dumps({"calls": calls}), flush=True)


if __name__ == "__main__":
    main()
