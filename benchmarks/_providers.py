"""costspan's overhead on one Gemini call (google-genai) and one Bedrock Converse call (boto3), plain and streamed.

Unlike the OpenAI suites, these run over real HTTP to costspan's local provider server on loopback: the SDKs'
transports are not swapped for in-memory ones, so the absolute times include the loopback round trip and the
figures are noisier. costspan is instrumented once; the baseline is the same patched call with instrumentation
suppressed (the patch's check and a straight call through), the two interleaved in a shuffled order each round.
The overhead is the median over rounds of (costspan - baseline). Each stream runs at two lengths (50 and 250
chunks): per chunk is the difference of their overheads over the 200 chunks between them, so what a stream costs
once (its proxy, its end) is not spread over its chunks; that once-per-stream part is reported beside it, beyond
the plain call's overhead.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.instrumentation.utils import suppress_instrumentation

from costspan.testing import ProviderServer, Reply

CHUNKS = 50
LONG = 250  # chunks of the long stream
_TEXTS = {chunks: " ".join(f"w{n}" for n in range(chunks)) for chunks in (CHUNKS, LONG)}


def _gemini(server: ProviderServer) -> dict[str, Callable[[], Any]]:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="bench", http_options=types.HttpOptions(base_url=server.url))
    arguments = {"model": "gemini-2.5-flash", "contents": "Summarise the report."}
    return {
        "gemini generate_content": lambda: client.models.generate_content(**arguments),
        "gemini generate_content_stream": lambda: sum(1 for _ in client.models.generate_content_stream(**arguments)),
        f"gemini generate_content_stream x{LONG}": lambda: sum(
            1 for _ in client.models.generate_content_stream(**arguments)
        ),
    }


def _bedrock(server: ProviderServer) -> dict[str, Callable[[], Any]]:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=server.url,
        aws_access_key_id="AKIABENCH",
        aws_secret_access_key="bench",
        config=Config(retries={"total_max_attempts": 1}),
    )
    arguments = {
        "modelId": "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "messages": [{"role": "user", "content": [{"text": "Summarise the report."}]}],
    }
    return {
        "bedrock converse": lambda: client.converse(**arguments),
        "bedrock converse_stream": lambda: sum(1 for _ in client.converse_stream(**arguments)["stream"]),
        f"bedrock converse_stream x{LONG}": lambda: sum(1 for _ in client.converse_stream(**arguments)["stream"]),
    }


def _timed(server: ProviderServer, name: str, call: Callable[[], Any], suppressed: bool) -> int:
    chunks = LONG if name.endswith(f"x{LONG}") else CHUNKS
    server.push(Reply(text=_TEXTS[chunks], chunks=chunks))
    start = time.perf_counter_ns()
    if suppressed:
        with suppress_instrumentation():
            call()
    else:
        call()
    return time.perf_counter_ns() - start


def measure(rounds: int, seed: int) -> dict[str, dict[str, float]]:
    """Per case: the baseline's median time per call and costspan's median overhead per call (us); for streams
    also the overhead per chunk beyond the plain call's. costspan must be instrumented (and its spans exported
    somewhere cheap) by the caller."""
    order = random.Random(seed)
    out: dict[str, dict[str, float]] = {}
    with ProviderServer() as server:
        cases = {**_gemini(server), **_bedrock(server)}
        for name, call in cases.items():  # warm up: imports, connections, price resolution
            for suppressed in (True, False):
                _timed(server, name, call, suppressed)
        overheads: dict[str, list[float]] = {name: [] for name in cases}
        baselines: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(rounds):
            for name in order.sample(list(cases), len(cases)):
                modes = order.sample([True, False], 2)
                times = {suppressed: _timed(server, name, cases[name], suppressed) for suppressed in modes}
                baselines[name].append(times[True] / 1000)
                overheads[name].append((times[False] - times[True]) / 1000)
    for name in cases:
        out[name] = {
            "baseline_us": statistics.median(baselines[name]),
            "overhead_us": statistics.median(overheads[name]),
        }
    for plain, stream in (
        ("gemini generate_content", "gemini generate_content_stream"),
        ("bedrock converse", "bedrock converse_stream"),
    ):
        long = out[f"{stream} x{LONG}"]
        per_chunk = (long["overhead_us"] - out[stream]["overhead_us"]) / (LONG - CHUNKS)
        long["per_chunk_us"] = per_chunk
        long["per_stream_us"] = out[stream]["overhead_us"] - per_chunk * CHUNKS - out[plain]["overhead_us"]
    return out


def format_results(results: dict[str, dict[str, float]]) -> str:
    lines = [f"Gemini and Bedrock Converse over loopback HTTP ({CHUNKS}- and {LONG}-chunk streams): median, us"]
    for name, row in results.items():
        chunk = ""
        if "per_chunk_us" in row:
            chunk = f"   {row['per_chunk_us']:+.2f} us/chunk, {row['per_stream_us']:+.1f} us/stream beyond a call"
        lines.append(f"  {name:<38} baseline {row['baseline_us']:>9.0f}   costspan {row['overhead_us']:+8.1f}{chunk}")
    return "\n".join(lines)
