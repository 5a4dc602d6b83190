"""Patching and unpatching, the entry point, parenting and attribution."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry import trace

import costspan
from costspan.providers import anthropic as anthropic_provider
from costspan.providers import openai as openai_provider
from costspan.testing import ProviderServer, Reply
from support import API_KEY, console_spans

MESSAGES = [{"role": "user", "content": "hi"}]


def _originals() -> dict[str, Any]:
    """Every function costspan patches, as the SDKs' classes and modules hold it now."""
    places = []
    for provider in (openai_provider, anthropic_provider):
        places += [(e.module, e.name) for e in provider.endpoints()]
        places += [(module, name) for module, name, _, _ in provider.helper_closes()]
        places += [(module, name) for module, name, _ in getattr(provider, "wrappers", lambda _: [])(None)]
    out = {}
    for module, name in places:
        owner_name, _, attribute = name.rpartition(".")
        owner = importlib.import_module(module)
        if owner_name:
            owner = getattr(owner, owner_name)
        out[f"{module}:{name}"] = vars(owner)[attribute]
    return out


def test_uninstrument_restores_the_original_functions(instrument: Callable[..., None]) -> None:
    before = _originals()
    assert len(before) > 40
    instrument()
    patched = _originals()
    assert all(patched[key] is not before[key] for key in before)
    costspan.CostspanInstrumentor().uninstrument()
    assert _originals() == before


def test_instrument_twice_patches_once(instrument: Callable[..., None], server: ProviderServer, otel: Any) -> None:
    instrument()
    instrument()
    costspan.instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    client = openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0)
    client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert len(otel.spans()) == 1


def test_current_span_is_the_parent(instrumented: None, server: ProviderServer, otel: Any) -> None:
    client = openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0)
    tracer = otel.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle request") as parent:
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    span = otel.span()
    assert span.parent is not None
    assert span.parent.span_id == parent.get_span_context().span_id
    assert span.context.trace_id == parent.get_span_context().trace_id
    assert span.kind == trace.SpanKind.CLIENT
    assert span.name == "chat gpt-4.1"


def test_attribution_nests_and_decorates(instrument: Callable[..., None], server: ProviderServer, otel: Any) -> None:
    instrument(metric_attributes=["user.id"])
    client = openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0)

    @costspan.attribution(feature="summaries")
    def summarise() -> None:
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)

    with costspan.attribution(user_id="u-123", team="search"):
        with costspan.attribution(team="ranking"):
            summarise()
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    inner, outer = otel.spans()
    assert inner.attributes["user.id"] == "u-123"
    assert inner.attributes["team"] == "ranking"
    assert inner.attributes["feature"] == "summaries"
    assert outer.attributes["team"] == "search"
    assert "feature" not in outer.attributes
    durations = otel.metrics()["gen_ai.client.operation.duration"]
    assert {point.attributes.get("user.id") for point in durations} == {"u-123"}
    assert all("team" not in point.attributes for point in durations)


@dataclass(frozen=True)
class LaunchedCall:
    code: str
    reply: Reply
    input_tokens: int
    span_name: str
    usage_spans_without_costspan: int  # the anthropic SDK traces its own calls under the launcher


LAUNCHED = {
    "openai": LaunchedCall(
        """
        import openai
        client = openai.OpenAI(base_url={openai_base_url!r}, api_key={api_key!r}, max_retries=0)
        client.chat.completions.create(model="gpt-4.1-mini", messages=[{{"role": "user", "content": "hi"}}])
        """,
        Reply(usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}),
        10,
        "chat gpt-4.1-mini",
        0,
    ),
    "anthropic": LaunchedCall(
        """
        import anthropic
        client = anthropic.Anthropic(base_url={anthropic_base_url!r}, api_key={api_key!r}, max_retries=0)
        client.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=[{{"role": "user", "content": "hi"}}])
        """,
        Reply(usage={"input_tokens": 10, "cache_read_input_tokens": 90, "output_tokens": 5}),
        100,
        "chat claude-haiku-4-5",
        1,
    ),
}


@pytest.mark.parametrize("disabled", [False, True], ids=["enabled", "disabled"])
@pytest.mark.parametrize("provider", list(LAUNCHED))
def test_opentelemetry_instrument_launcher(
    tmp_path: Path, server: ProviderServer, provider: str, disabled: bool
) -> None:
    """``opentelemetry-instrument`` finds costspan by its entry point; each call's usage is exported once."""
    launched = LAUNCHED[provider]
    server.push(launched.reply)
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(launched.code).format(
            openai_base_url=server.openai_base_url, anthropic_base_url=server.anthropic_base_url, api_key=API_KEY
        )
    )
    # Other instrumentations installed here (the benchmark's peers) would trace the same call.
    others = [ep.name for ep in entry_points(group="opentelemetry_instrumentor") if ep.name != "costspan"]
    env = {**os.environ, "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}
    env.pop("ANTHROPIC_OPEN_TELEMETRY", None)
    env["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = ",".join([*others, "costspan"] if disabled else others)
    launcher = Path(sys.executable).with_name("opentelemetry-instrument")
    result = subprocess.run(
        [str(launcher), "--traces_exporter", "console", sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    spans = console_spans(result.stdout)
    with_usage = [span for span in spans if "gen_ai.usage.input_tokens" in span["attributes"]]
    assert all("gen_ai.usage.cost.amount" not in span["attributes"] for span in spans) is disabled
    if disabled:
        assert len(with_usage) == launched.usage_spans_without_costspan
    else:
        (span,) = with_usage
        assert span["name"] == launched.span_name
        assert span["attributes"]["gen_ai.usage.input_tokens"] == launched.input_tokens
    assert API_KEY not in result.stdout + result.stderr


def test_importing_costspan_patches_and_loads_nothing() -> None:
    code = (
        "import sys, costspan;"
        "print(sorted(m for m in ('openai', 'anthropic', 'genai_prices', 'tiktoken') if m in sys.modules));"
        "import wrapt, openai.resources.chat.completions.completions as chat;"
        "print(isinstance(vars(chat.Completions)['create'], wrapt.BaseObjectProxy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split() == ["[]", "False"]


# A fresh interpreter: costspan instrumented before any SDK is imported (as opentelemetry-instrument and an
# application's first lines do), then, after {before}, openai imported and called once. Prints the SDKs imported
# by instrument(), whether openai's create is wrapped, and the spans ended.
_IMPORT_LATER = """
import sys, costspan, wrapt
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
costspan.instrument(tracer_provider=tracer_provider, meter_provider=MeterProvider(), ledger=False)
print(sorted(m for m in ("openai", "anthropic", "google.genai", "botocore") if m in sys.modules))
{before}
import openai
import openai.resources.chat.completions.completions as chat
print(isinstance(vars(chat.Completions)["create"], wrapt.FunctionWrapper))
client = openai.OpenAI(base_url={url!r}, api_key={key!r}, max_retries=0)
client.chat.completions.create(model="gpt-4.1-mini", messages=[{{"role": "user", "content": "hi"}}])
print([span.name for span in exporter.get_finished_spans()])
"""


@pytest.mark.parametrize(
    ("before", "patched", "spans"),
    [
        ("pass", "True", "['chat gpt-4.1-mini']"),
        ("costspan.uninstrument()", "False", "[]"),
        (  # both instrumentations' hooks fire on the import: the first patches, the second finds nothing left
            "costspan.uninstrument(); costspan.instrument(tracer_provider=tracer_provider, ledger=False)",
            "True",
            "['chat gpt-4.1-mini']",
        ),
    ],
    ids=["imported-after-instrument", "imported-after-uninstrument", "imported-after-reinstrument"],
)
def test_an_sdk_imported_after_instrument_is_patched_on_import(
    server: ProviderServer, before: str, patched: str, spans: str
) -> None:
    """instrument() imports no SDK (importing all four cost seconds of start-up, for those never used): each is
    patched when the application imports it, unless costspan was uninstrumented meanwhile."""
    server.push(Reply(usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}))
    code = _IMPORT_LATER.format(before=before, url=server.openai_base_url, key=API_KEY)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", patched, spans]


def test_a_failure_patching_on_import_never_fails_the_import() -> None:
    """The patching runs inside the application's ``import openai``: costspan's own failure there is logged and
    the SDK imports (uninstrumented) all the same."""
    code = (
        "import logging, sys, costspan\n"
        "from costspan.providers import openai as adapter\n"
        "logging.basicConfig(stream=sys.stderr, format='%(levelname)s %(message)s')\n"
        "def broken(): raise RuntimeError('an endpoint list that fails')\n"
        "adapter.endpoints = broken\n"
        "costspan.instrument(ledger=False)\n"
        "import openai\n"
        "print(openai.OpenAI)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "<class 'openai.OpenAI'>" in result.stdout
    assert "WARNING costspan: patching openai failed; the call proceeds without it" in result.stderr
    assert "RuntimeError: an endpoint list that fails" in result.stderr


def test_instrument_sets_up_providers_from_otel_variables(tmp_path: Path, server: ProviderServer) -> None:
    """With no SDK providers configured, ``costspan.instrument()`` sets them up with the exporters the standard
    variables ask for (here the console), and uses them."""
    server.push(Reply(usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}))
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import costspan, openai
            from opentelemetry import metrics, trace
            costspan.instrument()
            client = openai.OpenAI(base_url={server.openai_base_url!r}, api_key={API_KEY!r}, max_retries=0)
            client.chat.completions.create(model="gpt-4.1-mini", messages=[{{"role": "user", "content": "hi"}}])
            trace.get_tracer_provider().shutdown()
            metrics.get_meter_provider().shutdown()
            """
        )
    )
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "console"}
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert '"gen_ai.usage.input_tokens": 10' in result.stdout
    assert '"name": "costspan.cost"' in result.stdout
