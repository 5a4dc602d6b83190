"""Running an example as its reader does: ``python examples/<script>`` from the repository's root, with no
provider key or base URL in its environment (so it uses the local provider server) and its per-user default ledger
under the test's directory."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from support import child_environment

ROOT = Path(__file__).parents[2]

RunExample = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_example(tmp_path: Path) -> RunExample:
    """``run_example("quickstart.py", NAME=value, ...)``: the finished run (it must succeed), variables added."""

    def run(script: str, **variables: str) -> subprocess.CompletedProcess[str]:
        environ = child_environment(XDG_DATA_HOME=str(tmp_path / "data"), **variables)
        for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
            environ.pop(name, None)
        command = [sys.executable, f"examples/{script}"]
        result = subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result

    return run
