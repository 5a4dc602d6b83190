"""Patching and unpatching, the entry point, parenting and attribution."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry import trace

import costspan
from costspan.providers import openai as openai_provider
from costspan.testing import ProviderServer, Reply
from support import API_KEY

MESSAGES = [{"role": "user", "content": "hi"}]


def _originals() -> dict[str, Any]:
    import importlib

    out = {}
    places = [(e.module, e.name) for e in openai_provider.endpoints()]
    places += [(module, name) for module, name, _, _ in openai_provider.helper_closes()]
    for module, name in places:
        owner_name, _, attribute = name.rpartition(".")
        owner = getattr(importlib.import_module(module), owner_name)
        out[f"{module}:{name}"] = owner.__dict__[attribute]
    return out


def test_uninstrument_restores_the_original_functions(instrument: Callable[..., None]) -> None:
    before = _originals()
    instrument()
    patched = _originals()
    assert all(patched[key] is not before[key] for key in before)
    costspan.CostspanInstrumentor().uninstrument()
    after = _originals()
    assert all(after[key] is before[key] for key in before)


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


def _script(tmp_path: Path, server: ProviderServer) -> Path:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import openai
            client = openai.OpenAI(base_url={server.openai_base_url!r}, api_key={API_KEY!r}, max_retries=0)
            client.chat.completions.create(model="gpt-4.1-mini", messages=[{{"role": "user", "content": "hi"}}])
            """
        )
    )
    return script


@pytest.mark.parametrize("disabled", [False, True], ids=["enabled", "disabled"])
def test_opentelemetry_instrument_launcher(tmp_path: Path, server: ProviderServer, disabled: bool) -> None:
    server.push(Reply(usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}))
    env = {**os.environ, "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}
    env.pop("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", None)
    if disabled:
        env["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = "costspan"
    launcher = Path(sys.executable).with_name("opentelemetry-instrument")
    result = subprocess.run(
        [str(launcher), "--traces_exporter", "console", sys.executable, str(_script(tmp_path, server))],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    if disabled:
        assert "gen_ai.usage.cost.amount" not in result.stdout
    else:
        assert '"gen_ai.usage.cost.amount"' in result.stdout
        assert '"gen_ai.usage.input_tokens": 10' in result.stdout
        assert API_KEY not in result.stdout + result.stderr
