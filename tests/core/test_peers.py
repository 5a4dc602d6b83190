"""Another instrumentation of the same SDK methods (here the official opentelemetry-instrumentation-openai-v2, as
``opentelemetry-bootstrap -a install`` installs it) makes every call two spans and two sets of the gen_ai.*
metrics: costspan names it in one warning, with how to turn one off, whether it was loaded before costspan (seen
at instrument()) or after (seen at the first call)."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import openai
import pytest

import costspan._peers
from costspan.testing import ProviderServer, Reply
from support import API_KEY

if TYPE_CHECKING:
    from conftest import Otel

MESSAGES = [{"role": "user", "content": "hi"}]
USAGE = {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}


@pytest.fixture
def official_openai(otel: Otel) -> Iterator[Callable[[], None]]:
    """``official_openai()`` instruments with opentelemetry-instrumentation-openai-v2 on the test's providers."""
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    def start() -> None:
        with warnings.catch_warnings():  # its own deprecations are not costspan's
            warnings.simplefilter("ignore", DeprecationWarning)
            OpenAIInstrumentor().instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)

    yield start
    OpenAIInstrumentor().uninstrument()


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees costspan's once-per-process warning as a new process would."""
    monkeypatch.setattr(costspan._peers, "_warned", set())


def _calls(server: ProviderServer, count: int) -> None:
    with openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0) as client:
        for _ in range(count):
            server.push(Reply(usage=USAGE))
            client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)


def _said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "costspan" and r.levelno >= logging.WARNING]


@pytest.mark.parametrize("order", ["peer first", "costspan first"])
def test_one_warning_names_the_other_instrumentation_and_the_switch(
    order: str,
    official_openai: Callable[[], None],
    instrument: Callable[..., None],
    server: ProviderServer,
    otel: Otel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if order == "peer first":
        official_openai()
        instrument()
        assert len(_said(caplog)) == 1  # at instrument()
    else:
        instrument()
        assert _said(caplog) == []
        official_openai()

    _calls(server, 3)

    (warning,) = _said(caplog)
    assert warning.startswith("costspan: opentelemetry-instrumentation-openai-v2 also instruments Completions.create")
    assert "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=openai (or =costspan)" in warning
    scopes = [span.instrumentation_scope.name for span in otel.exporter.get_finished_spans()]
    assert scopes.count("costspan.instrumentor") == 3
    assert len(scopes) == 6  # the other instrumentation's spans (scope opentelemetry.util.genai.handler)


def test_no_warning_without_another_instrumentation(
    instrumented: None, server: ProviderServer, caplog: pytest.LogCaptureFixture
) -> None:
    _calls(server, 2)
    assert _said(caplog) == []


# A fresh interpreter: costspan instrumented before openai is imported; a first call (anthropic's) runs the check
# and finds nothing; then openai is imported, costspan's hook patches it, and the official instrumentation wraps
# over it. The next call must look again.
_LATER_PEER = """
import logging, sys, warnings
import costspan
from costspan.testing import ProviderServer, Reply
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(message)s")
tracer_provider, meter_provider = TracerProvider(), MeterProvider()
costspan.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider, ledger=False)
with ProviderServer() as server:
    import anthropic
    server.push(Reply(usage={"input_tokens": 10, "output_tokens": 5}))
    claude = anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="sk-test", max_retries=0)
    claude.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    print("after the first call", file=sys.stderr, flush=True)
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        OpenAIInstrumentor().instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    import openai
    server.push(Reply(usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}))
    gpt = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0)
    gpt.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}])
"""


def test_an_instrumentation_wrapping_an_sdk_imported_after_the_first_call_is_named() -> None:
    result = subprocess.run([sys.executable, "-c", _LATER_PEER], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    before, _, after = result.stderr.partition("after the first call")
    assert "also instruments" not in before
    assert "WARNING costspan: opentelemetry-instrumentation-openai-v2 also instruments" in after
