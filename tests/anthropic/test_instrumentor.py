"""Patching and unpatching the anthropic SDK, and the launcher path where the SDK's own tracing is on by default."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import costspan
from costspan.providers import anthropic as anthropic_provider
from costspan.testing import ProviderServer, Reply
from support import API_KEY


def _originals(telemetry: Any = None) -> dict[str, Any]:
    places = [(endpoint.module, endpoint.name) for endpoint in anthropic_provider.endpoints()]
    places += [(module, name) for module, name, _ in anthropic_provider.wrappers(telemetry)]
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
    assert len(before) == 2 * (4 * 3 + 3) + 1, "create/parse/stream on 4 resources, count_tokens on 3, the SDK span"
    instrument()
    patched = _originals()
    assert all(patched[key] is not before[key] for key in before)
    costspan.CostspanInstrumentor().uninstrument()
    assert _originals() == before


def _script(tmp_path: Path, server: ProviderServer) -> Path:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import anthropic
            client = anthropic.Anthropic(base_url={server.anthropic_base_url!r}, api_key={API_KEY!r}, max_retries=0)
            messages = [{{"role": "user", "content": "hi"}}]
            client.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=messages)
            """
        )
    )
    return script


@pytest.mark.parametrize("disabled", [False, True], ids=["enabled", "disabled"])
def test_launcher_exports_one_usage_per_call(tmp_path: Path, server: ProviderServer, disabled: bool) -> None:
    """Under opentelemetry-instrument a global tracer provider exists, so the SDK traces its calls by default."""
    server.push(Reply(usage={"input_tokens": 10, "cache_read_input_tokens": 90, "output_tokens": 5}))
    env = {**os.environ, "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none", "COSTSPAN_LEDGER": "off"}
    env.pop("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", None)
    env.pop("ANTHROPIC_OPEN_TELEMETRY", None)
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
    spans = _json_objects(result.stdout)
    assert spans
    with_usage = [span for span in spans if "gen_ai.usage.input_tokens" in span["attributes"]]
    assert len(with_usage) == 1
    assert with_usage[0]["attributes"]["gen_ai.usage.input_tokens"] == 100
    # The console exporter names no scope: the SDK's span is named after its method, costspan's after semconv.
    assert [span["name"] for span in spans] == ["anthropic.messages.create" if disabled else "chat claude-haiku-4-5"]
    assert ("gen_ai.usage.cost.amount" in with_usage[0]["attributes"]) is not disabled
    assert API_KEY not in result.stdout + result.stderr


def _json_objects(text: str) -> list[Any]:
    """The console exporter's output: one JSON object per span, separated by whitespace."""
    decoder, objects, index = json.JSONDecoder(), [], 0
    while (index := text.find("{", index)) != -1:
        found, index = decoder.raw_decode(text, index)
        objects.append(found)
    return objects
