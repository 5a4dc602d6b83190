"""Soak: many calls and randomly interrupted streams (broken out of, closed, dropped, the connection cut), with a
memory budget on: every span ends once, nothing stays reserved, and what costspan keeps per call does not grow
(tracemalloc over 1,000 calls after warm-up, against the same 1,000 calls with costspan suppressed).
COSTSPAN_SOAK=1 drives 100,000 calls and 10,000 streams."""

from __future__ import annotations

import gc
import os
import random
import tracemalloc
from typing import Any

import httpx
import openai
import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation
from reliability.conftest import SOAK, Figures

import costspan
from costspan.testing import ProviderServer, Reply
from support import API_KEY

# CI: 3,000 calls, every other one of the first 2,000 an interrupted stream (what fits the suite's time budget
# on two cores);
# COSTSPAN_SOAK=1: 100,000 calls, every tenth a stream.
CALLS = int(os.environ.get("COSTSPAN_SOAK_CALLS", 100_000 if SOAK else 3_000))
STREAM_EVERY = 10 if SOAK else 2
MEASURED = 1_000
# Bytes costspan may keep per 1,000 calls beyond what the same calls keep without it (the SDK's metric series,
# caches filling): flat means below this.
GROWTH_BOUND = 256 * 1024
MESSAGES = [{"role": "user", "content": "hi"}]


def _interrupted_stream(client: openai.OpenAI, server: ProviderServer, rng: random.Random) -> None:
    how = rng.choice(["break", "close", "drop", "cut", "exhaust"])
    server.push(Reply(chunks=8, drop_after=rng.randint(0, 7) if how == "cut" else None))
    stream = client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, stream=True)
    try:
        for index, _ in enumerate(stream):
            if how in ("break", "close", "drop") and index == rng.randint(0, 7):
                break
    except (
        openai.APIError,
        httpx.TransportError,
    ):  # a cut: openai 2.0 lets httpx's error through, later releases wrap it
        pass
    if how == "close":
        stream.close()
    del stream  # the others: exhausted, cut, or left to the garbage collector
    if how != "exhaust":
        # Collected here, not at whatever allocation the cyclic collector next runs on: httpcore 1.x (openai 2.x's
        # transport) closes a collected response under its pool's lock, which deadlocks when the collection runs
        # inside that lock (the next request's), with or without costspan. (Cheap: the test froze the older heap.)
        gc.collect()


def _growth(client: openai.OpenAI, server: ProviderServer, otel: Any) -> int:
    """Bytes still allocated by costspan and the OpenTelemetry SDK after 1,000 calls (the test's in-memory span
    exporter emptied: it keeps every span by design)."""
    otel.exporter.clear()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for index in range(MEASURED):
        client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)
        if index % 200 == 0:
            server.reset()
            otel.exporter.clear()
    otel.exporter.clear()
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    ours = ("costspan/", "opentelemetry/")
    return sum(
        s.size_diff for s in after.compare_to(before, "filename") if any(p in s.traceback[0].filename for p in ours)
    )


@pytest.mark.heavy
def test_soak_calls_and_interrupted_streams(
    instrument: Any, server: ProviderServer, otel: Any, figures: Figures
) -> None:
    budget = costspan.Budget(1_000_000.0, name="soak")
    instrument(budgets=[budget])
    rng = random.Random(18)
    with openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0) as client:
        gc.freeze()  # the session's heap so far, out of the collections each interrupted stream runs
        try:
            for index in range(CALLS - MEASURED):
                if index % STREAM_EVERY == 0:
                    _interrupted_stream(client, server, rng)
                else:
                    client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)
                if index % 500 == 0:
                    server.reset()
                    otel.exporter.clear()
        finally:
            gc.unfreeze()
        gc.collect()
        instrumented = _growth(client, server, otel)
        with suppress_instrumentation():
            baseline = _growth(client, server, otel)
    gc.collect()

    started, ended = otel.lifecycle.started, otel.lifecycle.ended
    assert set(started) == set(ended) and all(count == 1 for count in ended.values())
    assert len(started) == CALLS
    assert budget.reserved() == 0
    assert instrumented - baseline < GROWTH_BOUND, f"{instrumented} bytes kept vs {baseline} without costspan"
    figures.count("calls", CALLS)
    figures.count("streams interrupted", -(-(CALLS - MEASURED) // STREAM_EVERY))
    figures.count("spans left open", len(started) - len(ended))
    figures.largest("memory growth per 1,000 calls, instrumented (KiB)", round(instrumented / 1024, 1))
    figures.largest("memory growth per 1,000 calls, uninstrumented (KiB)", round(baseline / 1024, 1))


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
