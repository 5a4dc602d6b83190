"""The launcher example with no API key: costspan's local provider server stands in for the APIs,
`opentelemetry-instrument python app.py` runs with the COSTSPAN_* variables of README.md, and the summary of the
ledger it wrote is printed.

    python examples/launcher/offline.py

The ledger is a temporary one unless COSTSPAN_LEDGER names another. Spans and metrics are exported nowhere unless
the OTEL_*_EXPORTER variables ask (OTEL_TRACES_EXPORTER=console prints the spans).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import costspan.ledger
from costspan.testing import ProviderServer

HERE = Path(__file__).resolve().parent


def main() -> None:
    with ProviderServer() as server, tempfile.TemporaryDirectory(prefix="costspan-launcher-") as directory:
        ledger = os.environ.get("COSTSPAN_LEDGER") or os.path.join(directory, "ledger.db")
        environ = {
            **os.environ,
            "OPENAI_BASE_URL": server.openai_base_url,
            "OPENAI_API_KEY": "sk-local",
            "ANTHROPIC_BASE_URL": server.anthropic_base_url,
            "ANTHROPIC_API_KEY": "sk-ant-local",
            "COSTSPAN_LEDGER": ledger,
            "COSTSPAN_PRICES": str(HERE / "prices.toml"),
        }
        for signal in ("TRACES", "METRICS", "LOGS"):
            # With opentelemetry-distro installed, the launcher would export to an OTLP collector on localhost.
            environ.setdefault(f"OTEL_{signal}_EXPORTER", "none")
        subprocess.run([launcher(), sys.executable, str(HERE / "app.py")], env=environ, check=True)
        print()
        print(costspan.ledger.report(ledger))


def launcher() -> str:
    """The opentelemetry-instrument of this Python's environment (installed with costspan), else the one on PATH."""
    beside = Path(sys.executable).with_name("opentelemetry-instrument")
    found = str(beside) if beside.exists() else shutil.which("opentelemetry-instrument")
    if found is None:
        sys.exit("opentelemetry-instrument is not installed: pip install costspan (it depends on it)")
    return found


if __name__ == "__main__":
    main()
