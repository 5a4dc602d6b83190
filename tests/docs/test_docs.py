"""Every command and code block in the docs runs, or is checked, as its reader would use it.

The docs are README.md, docs/*.md and examples/*/README.md, found anew on every run (a new file or block is
tested with no change here). Each fenced block, by its info string:

- ``python``: runs on its own in a fresh interpreter, against costspan's local provider server (the SDKs'
  ``OPENAI_*`` / ``ANTHROPIC_*`` variables point at it) with spans printed by the console exporter. A block that
  imports a provider SDK must give each call a span with its cost, from the provider's own counts; costspan must
  log nothing but where its ledger is.
- ``bash`` / ``sh`` / ``shell``: runs in bash (``-e``), from a directory holding the repository's files and an
  ``app.py`` (an application making one OpenAI call with ``costspan.instrument()``), with this environment's
  ``costspan``, ``python`` and ``opentelemetry-instrument`` first on PATH, the SDKs pointed at the local server
  and the user's directories temporary. Where a block sets ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or a per-signal one)
  to a port, an OTLP receiver of that port's protocol (4317 gRPC, 4318 HTTP; another port HTTP) listens there (on
  a free port written into the block instead, when that one is taken) and must receive costspan's spans with
  their cost. costspan must log no warning.
- ``toml``: parsed; a prices file (``[models]``, ``[aliases]``, ``[discounts]``) is read by costspan's own reader.
- ``yaml`` / ``json``: parsed. ``promql``: each expression is checked by ``promtool check rules``.
- ``traceql`` and blocks without a language (program output) are not run: nothing here speaks them.

A block that needs what a test cannot have (a real API key, Docker, a package index) carries, on the line just
before its opening fence::

    <!-- docs-test: syntax-only: why -->

and is only checked for syntax: ``bash -n`` for shell, parsing for the rest. Nothing else skips a block.
"""

from __future__ import annotations

import ast
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from costspan.pricing import read_prices
from costspan.testing import ProviderServer
from otlp_receivers import GrpcReceiver, HttpReceiver, Received
from servers import binary
from support import API_KEY, child_environment, console_spans

ROOT = Path(__file__).parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "examples").glob("*/README.md")])
SYNTAX_ONLY = re.compile(r"<!--\s*docs-test:\s*syntax-only:\s*\S.*-->")
SHELLS = frozenset({"bash", "sh", "shell"})
NOT_RUN = frozenset({"", "traceql", "text"})
CHECKED = SHELLS | {"python", "toml", "yaml", "json", "promql"}
SDKS = frozenset({"openai", "anthropic"})
LEDGER_NOTICE = re.compile(r"costspan: recording LLM calls in the ledger at (\S+) ")
ENDPOINT = re.compile(r"OTEL_EXPORTER_OTLP_(?:TRACES_|METRICS_)?ENDPOINT=\S*?:(\d+)")
GRPC_PORT = 4317
APP = """import costspan
import openai

costspan.instrument()
reply = openai.OpenAI().chat.completions.create(
    model="gpt-4.1-mini", messages=[{"role": "user", "content": "Summarise our refund policy in one line."}]
)
print(reply.choices[0].message.content)
"""


@dataclass(frozen=True)
class Block:
    file: Path
    line: int
    language: str
    code: str
    syntax_only: bool

    @property
    def id(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}"

    def imports_an_sdk(self) -> bool:
        for node in ast.walk(ast.parse(self.code)):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(name.partition(".")[0] in SDKS for name in names):
                return True
        return False


def blocks_of(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, with their info string and marker."""
    lines, found, index = path.read_text(encoding="utf-8").splitlines(), [], 0
    while index < len(lines):
        opening = lines[index].strip()
        if opening.startswith("```"):
            end = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == "```")
            marked = index > 0 and bool(SYNTAX_ONLY.fullmatch(lines[index - 1].strip()))
            code = "\n".join(lines[index + 1 : end]) + "\n"
            found.append(Block(path, index + 1, opening[3:].strip().lower(), code, marked))
            index = end
        index += 1
    return found


BLOCKS = [block for path in DOCS for block in blocks_of(path)]


def _of(*languages: str, syntax_only: bool | None = None) -> list[Block]:
    return [b for b in BLOCKS if b.language in languages and (syntax_only is None or b.syntax_only is syntax_only)]


def _params(blocks: list[Block]) -> list[object]:
    return [pytest.param(block, id=block.id) for block in blocks]


def test_the_docs_have_blocks_of_each_kind() -> None:
    assert sum(block.imports_an_sdk() for block in _of("python")) >= 2
    assert _of(*SHELLS, syntax_only=False) and _of(*SHELLS, syntax_only=True)


@pytest.mark.parametrize("block", _params(BLOCKS))
def test_every_block_is_one_the_docs_test_checks(block: Block) -> None:
    assert block.language in CHECKED | NOT_RUN, f"{block.id}: no check for ```{block.language}: add one here"
    assert not (block.syntax_only and block.language in NOT_RUN), f"{block.id}: a marker on a block never run"


def test_install_commands_work_from_the_repository() -> None:
    """costspan is not on the package index: the docs install it from the repository, with extras it defines."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for block in _of(*SHELLS):
        assert not re.search(r"pip install\s+['\"]?costspan\b", block.code), f"{block.id}: costspan from the index"
        for named in re.findall(r"pip install -e '\.\[([\w,]+)\]'", block.code):
            assert set(named.split(",")) <= extras.keys(), f"{block.id}: extras {named}"


# --- Syntax ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", _params(_of(*SHELLS)))
def test_shell_block_parses(block: Block) -> None:
    result = subprocess.run(["bash", "-n"], input=block.code, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"{block.id}: {result.stderr}"


@pytest.mark.parametrize("block", _params(_of("python", "toml", "yaml", "json")))
def test_code_block_parses(block: Block) -> None:
    if block.language == "python":
        ast.parse(block.code, filename=block.id)
    elif block.language == "toml":
        parsed = tomllib.loads(block.code)
        if parsed.keys() & {"models", "aliases", "discounts"}:
            read_prices(parsed)  # a prices file: costspan accepts it as written
    elif block.language == "yaml":
        yaml.safe_load(block.code)
    else:
        json.loads(block.code)


@pytest.mark.parametrize("block", _params(_of("promql")))
def test_promql_block_is_valid(block: Block, tmp_path: Path) -> None:
    """Each expression (a line at the margin, with the indented or closing lines after it; ``#`` starts a
    comment) passes promtool."""
    expressions: list[str] = []
    for line in (re.sub(r"\s*#.*", "", line) for line in block.code.splitlines()):
        if expressions and (line[:1].isspace() or line.startswith(")")):
            expressions[-1] += f"\n{line}"
        elif line.strip():
            expressions.append(line)
    rules = [{"record": f"docs:expression_{n}", "expr": expr} for n, expr in enumerate(expressions)]
    path = tmp_path / "docs.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "docs", "rules": rules}]}))
    result = subprocess.run(
        [binary("promtool"), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"{block.id}: {result.stdout}{result.stderr}"


# --- Running ---------------------------------------------------------------------------------------------------


def _environment(server: ProviderServer, tmp_path: Path) -> dict[str, str]:
    return child_environment(
        OPENAI_BASE_URL=server.openai_base_url,
        OPENAI_API_KEY=API_KEY,
        ANTHROPIC_BASE_URL=server.anthropic_base_url,
        ANTHROPIC_API_KEY=API_KEY,
        OTEL_LOGS_EXPORTER="none",
        XDG_DATA_HOME=str(tmp_path / "data"),  # the block's own default ledger
        XDG_STATE_HOME=str(tmp_path / "state"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )


@pytest.mark.parametrize("block", _params(_of("python")))
def test_python_block_runs(block: Block, server: ProviderServer, tmp_path: Path) -> None:
    script = tmp_path / "docs_block.py"
    script.write_text(block.code, encoding="utf-8")
    environ = {
        **_environment(server, tmp_path),
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
    }
    result = subprocess.run(
        [sys.executable, str(script)], env=environ, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if "costspan" in line]
    ledger = _ledger_announced(said)
    if block.imports_an_sdk():
        calls = [span for span in console_spans(result.stdout) if "gen_ai.usage.input_tokens" in span["attributes"]]
        assert calls, f"no span with usage from the block at {block.id}"
        for span in calls:
            assert span["attributes"]["gen_ai.usage.cost.amount"] > 0, span["name"]
            assert "costspan.usage.estimated" not in span["attributes"], span["name"]
        assert len(calls) == len(server.requests)
        if ledger is not None:  # the embedded default kept every call, at the span's cost
            with sqlite3.connect(ledger) as database:
                rows = database.execute("SELECT cost_usd FROM calls").fetchall()
            costs = sorted(span["attributes"]["gen_ai.usage.cost.amount"] for span in calls)
            assert sorted(cost for (cost,) in rows) == pytest.approx(costs, rel=1e-12)


def _ledger_announced(said: list[str]) -> Path | None:
    """The ledger's path, from the one line costspan may print (with no SDK configured, it keeps a ledger and says
    where); anything else costspan says is a failure."""
    announced = [line for line in said if LEDGER_NOTICE.search(line)]
    assert said == announced and len(announced) <= 1, said
    return Path(LEDGER_NOTICE.search(announced[0]).group(1)) if announced else None


def _workspace(tmp_path: Path) -> Path:
    """A directory with the repository's files (linked) and the docs' ``app.py``."""
    work = tmp_path / "work"
    work.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in {".git", ".venv", "app.py"}:
            (work / entry.name).symlink_to(entry)
    (work / "app.py").write_text(APP)
    return work


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Listening:
    named: int
    received: Received


def _receivers(code: str, stack: ExitStack) -> tuple[str, list[Listening]]:
    """An OTLP receiver on each port the block sends to (the block rewritten to a free one when it is taken)."""
    listening = []
    for named in sorted({int(port) for port in ENDPOINT.findall(code)}):
        receiver = GrpcReceiver if named == GRPC_PORT else HttpReceiver
        received = stack.enter_context(receiver(named if _free(named) else 0))
        code = code.replace(f":{named}", f":{received.port}")
        listening.append(Listening(named, received))
    return code, listening


@pytest.mark.parametrize("block", _params(_of(*SHELLS, syntax_only=False)))
def test_shell_block_runs(block: Block, server: ProviderServer, tmp_path: Path) -> None:
    with ExitStack() as stack:
        code, listening = _receivers(block.code, stack)
        result = subprocess.run(
            ["bash", "-e", "-c", code],
            env=_environment(server, tmp_path),
            cwd=_workspace(tmp_path),
            capture_output=True,
            text=True,
            timeout=300,
        )
        for each in listening:
            each.received.wait_for("costspan.cost")

    assert result.returncode == 0, f"{block.id}:\n{result.stdout}\n{result.stderr}"
    warnings = [line for line in result.stderr.splitlines() if "costspan:" in line and not LEDGER_NOTICE.search(line)]
    assert warnings == [], f"{block.id}: {warnings}"
    for each in listening:
        spans = each.received.spans
        costs = [a.get("gen_ai.usage.cost.amount") for scope, _, a in spans if scope.startswith("costspan")]
        assert costs and all(cost > 0 for cost in costs), f"{block.id}: nothing arrived on port {each.named}"
        assert "costspan.cost" in each.received.metrics, f"{block.id}: no metrics on port {each.named}"


def blocks_by_file() -> Iterator[tuple[str, list[tuple[int, str, str]]]]:
    """Every block, by file, with how it is checked (what the test report lists)."""
    for path in DOCS:
        yield (
            str(path.relative_to(ROOT)),
            [(b.line, b.language or "output", _how(b)) for b in BLOCKS if b.file == path],
        )


def _how(block: Block) -> str:
    if block.language in NOT_RUN:
        return "not run (output, or another product's language)"
    if block.syntax_only:
        return "syntax only (bash -n)" if block.language in SHELLS else "syntax only (parsed)"
    return {"python": "runs", "promql": "promtool check rules"}.get(
        block.language, "runs (bash -e)" if block.language in SHELLS else "parsed"
    )


if __name__ == "__main__":  # python tests/docs/test_docs.py: the list of blocks and their checks
    for file, listed in blocks_by_file():
        print(file)
        for line, language, how in listed:
            print(f"  {line:>4}  {language:<8} {how}")
