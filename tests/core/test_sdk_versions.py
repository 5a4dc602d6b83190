"""Each SDK is instrumented only within the versions costspan supports: one installed outside them is left
untouched, with one warning naming the installed and supported versions, and the other SDK is instrumented as
usual. The ranges are said once, in each provider's REQUIREMENT, and pyproject's extras say the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

import costspan
from costspan.providers import anthropic as anthropic_provider
from costspan.providers import bedrock as bedrock_provider
from costspan.providers import google_genai as google_genai_provider
from costspan.providers import openai as openai_provider

# Distribution -> its adapter; EXTRAS: distribution -> the pyproject extra that installs it.
PROVIDERS = {
    "openai": openai_provider,
    "anthropic": anthropic_provider,
    "google-genai": google_genai_provider,
    "botocore": bedrock_provider,
}
EXTRAS = {"openai": "openai", "anthropic": "anthropic", "google-genai": "google", "botocore": "bedrock"}
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

# Run in a fresh interpreter: instruments, then reports for each SDK how many of costspan's patch points hold a
# wrapt wrapper, and prints what costspan logged.
_PROBE = textwrap.dedent(
    """
    import importlib, json, logging, sys
    import wrapt
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    import costspan
    from costspan.providers import anthropic, bedrock, google_genai, openai

    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    costspan.CostspanInstrumentor().instrument(tracer_provider=TracerProvider(), meter_provider=MeterProvider())

    def patched(provider):
        places = [(e.module, e.name) for e in provider.endpoints()]
        places += [(module, name) for module, name, _, _ in provider.helper_closes()]
        places += [(module, name) for module, name, _ in getattr(provider, "wrappers", lambda _: [])(None)]
        count = 0
        for module, name in places:
            owner_name, _, attribute = name.rpartition(".")
            owner = importlib.import_module(module)
            if owner_name:
                owner = getattr(owner, owner_name)
            count += isinstance(vars(owner)[attribute], wrapt.FunctionWrapper)
        return [count, len(places)]

    adapters = {"openai": openai, "anthropic": anthropic, "google-genai": google_genai, "botocore": bedrock}
    print(json.dumps({name: patched(adapter) for name, adapter in adapters.items()}))
    """
)


def _fake_distribution(directory: Path, name: str, version: str) -> None:
    """Installed-package metadata claiming another version of ``name``; found first on PYTHONPATH, it is what
    ``importlib.metadata.version(name)`` answers, while the real package still imports."""
    info = directory / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def _probe(pythonpath: Path | None = None) -> tuple[dict[str, list[int]], list[str]]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)} if pythonpath else None
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    logged = [line for line in result.stderr.splitlines() if line.startswith(("WARNING", "ERROR"))]
    return json.loads(result.stdout), logged


@pytest.mark.parametrize(
    ("sdk", "old"),
    [("openai", "1.109.1"), ("anthropic", "0.125.0"), ("google-genai", "1.20.0"), ("botocore", "1.34.0")],
)
def test_unsupported_sdk_version_is_left_unpatched_with_one_warning(tmp_path: Path, sdk: str, old: str) -> None:
    _fake_distribution(tmp_path, sdk, old)
    patched, logged = _probe(tmp_path)
    assert patched[sdk][0] == 0, f"{sdk} {old} was patched"
    for other in set(PROVIDERS) - {sdk}:
        assert patched[other][0] == patched[other][1], f"{other} lost patches: {patched[other]}"
    assert logged == [
        f"WARNING costspan: costspan: {sdk} {old} is installed, but costspan supports "
        f"{PROVIDERS[sdk].REQUIREMENT} only: {sdk} is left uninstrumented"
    ]


def test_supported_versions_are_patched_silently() -> None:
    patched, logged = _probe()
    assert all(count == total for count, total in patched.values()), patched
    assert logged == []


@pytest.mark.parametrize("provider", PROVIDERS.values(), ids=PROVIDERS.keys())
def test_pyproject_extras_name_the_supported_versions(provider: ModuleType) -> None:
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    name = provider.REQUIREMENT.split(">")[0]
    assert provider.REQUIREMENT in extras[EXTRAS[name]]


def test_instrumentation_dependencies_are_the_supported_versions() -> None:
    expected = {provider.REQUIREMENT for provider in PROVIDERS.values()}
    assert set(costspan.CostspanInstrumentor().instrumentation_dependencies()) == expected
