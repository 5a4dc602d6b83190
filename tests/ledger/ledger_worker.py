"""A worker process for the multi-process ledger tests: ``python ledger_worker.py JSON``.

Like one pod of a deployment, it instruments costspan with the shared PostgreSQL ledger (``ledger=URL``) and, beside
it, an SQLite ledger all workers share (the same calls in both engines, for the report comparison), then makes real
OpenAI calls (plain and streamed, two models, three users, two teams; four calls to a request, two of every three
requests named with ``costspan.track``, the third's calls in no request) against the test's provider server. It
prints ``ready``, waits for ``go`` on stdin, and prints one JSON line: each call's span id and cost as its span
records them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

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
    for index in _in_requests(options["calls"]):
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
        if "gen_ai.operation.name" in span.attributes  # a call, not a request run by costspan.track
    }
    print(json.dumps({"calls": calls}), flush=True)


def _in_requests(calls: int) -> Iterator[int]:
    """The calls' indexes, four to a request: two of every three requests are named runs (``costspan.track``),
    the third's calls are made in no request (each one its own trace)."""
    for first in range(0, calls, 4):
        batch = range(first, min(first + 4, calls))
        if first // 4 % 3 == 2:
            yield from batch
        else:
            with costspan.track(f"digest-{first // 4 % 3}"):
                yield from batch


if __name__ == "__main__":
    main()
