"""The embedded default: with no OpenTelemetry SDK providers configured, ``costspan.instrument()`` and the
``opentelemetry-instrument`` launcher (no distro) write the ledger at the per-user default path and say so once;
with providers configured by the application or a distro, the ledger is written only when asked for."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from costspan.testing import ProviderServer
from ledger_support import rows
from support import API_KEY

CALLS = """
import openai
client = openai.OpenAI(base_url={base_url!r}, api_key={api_key!r}, max_retries=0)
for _ in range(3):
    client.chat.completions.create(model="gpt-4.1-mini", messages=[{{"role": "user", "content": "hi"}}])
"""
IN_CODE = "import costspan\ncostspan.instrument()\n"
USER_PROVIDER = (
    "from opentelemetry import trace\nfrom opentelemetry.sdk.trace import TracerProvider\n"
    "trace.set_tracer_provider(TracerProvider())\n"
)


@dataclass(frozen=True)
class Setup:
    launcher: bool
    distro: bool
    prelude: str
    ledger_env: str | None
    written_to: str | None
    """``default``, ``asked`` or None (no ledger anywhere)."""


SETUPS = {
    "instrument-nothing-configured": Setup(False, False, IN_CODE, None, "default"),
    "launcher-without-distro": Setup(True, False, "", None, "default"),
    "launcher-without-distro-ledger-off": Setup(True, False, "", "off", None),
    "instrument-ledger-off": Setup(False, False, IN_CODE, "off", None),
    "launcher-with-distro": Setup(True, True, "", None, None),
    "launcher-with-distro-ledger-asked": Setup(True, True, "", "asked", "asked"),
    "instrument-user-provider": Setup(False, False, USER_PROVIDER + IN_CODE, None, None),
    "instrument-user-provider-ledger-asked": Setup(False, False, USER_PROVIDER + IN_CODE, "asked", "asked"),
}


@pytest.mark.parametrize("name", list(SETUPS))
def test_where_the_ledger_is_written(tmp_path: Path, server: ProviderServer, name: str) -> None:
    setup = SETUPS[name]
    script = tmp_path / "app.py"
    script.write_text(setup.prelude + textwrap.dedent(CALLS).format(base_url=server.openai_base_url, api_key=API_KEY))
    data_home, asked = tmp_path / "data", tmp_path / "asked.db"
    env = {**os.environ, "XDG_DATA_HOME": str(data_home), "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}
    env["OTEL_TRACES_EXPORTER"] = "none"
    env.pop("COSTSPAN_LEDGER", None)
    if setup.ledger_env is not None:
        env["COSTSPAN_LEDGER"] = str(asked) if setup.ledger_env == "asked" else setup.ledger_env
    command = [sys.executable, str(script)]
    if setup.launcher:
        command = [str(Path(sys.executable).with_name("opentelemetry-instrument")), *command]
        others = [ep.name for ep in entry_points(group="opentelemetry_instrumentor") if ep.name != "costspan"]
        env["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = ",".join(others)
        if not setup.distro:  # as if opentelemetry-distro were not installed
            env["OTEL_PYTHON_DISTRO"] = env["OTEL_PYTHON_CONFIGURATOR"] = "none-installed"
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    default = data_home / "costspan" / "ledger.db"
    told = [line for line in result.stderr.splitlines() if "recording LLM calls in the ledger" in line]
    if setup.written_to == "default":
        assert len(rows(default)) == 3
        assert told == [
            f"costspan: recording LLM calls in the ledger at {default} "
            "(`costspan report` reads it; COSTSPAN_LEDGER=off turns it off)"
        ]
    else:
        assert not default.exists()
        assert told == []
    if setup.written_to == "asked":
        assert len(rows(asked)) == 3
    else:
        assert not asked.exists()
