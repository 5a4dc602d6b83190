"""Opt-in content capture (GenAI semantic conventions): off by default; on, the span carries the request's messages
and the model's output as the conventions' JSON, bounded in size, for every provider and every way a user calls
(JSON, stream, stream helper); never metrics, never the ledger. The scan for keys, headers and content covers
spans, metrics, log records, the ledger and its WAL, both ways."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from bedrock.helpers import CLAUDE, bedrock_client
from bedrock.helpers import text_of as bedrock_text
from core.test_security import SECRET_ANSWER, SECRET_HEADER, SECRET_PROMPT, SECRET_SYSTEM
from gemini.helpers import gemini_client
from providers import PROVIDERS, WAYS, ProviderUnderTest

import costspan
from costspan._content import MAX_ATTRIBUTE_CHARS, MAX_TEXT_CHARS
from costspan.testing import ProviderServer, Reply
from support import API_KEY

INPUT, OUTPUT, SYSTEM = "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"
CAPTURE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def _everything_exported(otel: Any, caplog: pytest.LogCaptureFixture, ledger_file: Path) -> str:
    """Every span, metric point, log record and ledger byte (the database, its WAL and journal) as text."""
    assert costspan.CostspanInstrumentor()._ledger.force_flush()
    ledger_bytes = b"".join(path.read_bytes() for path in ledger_file.parent.glob(f"{ledger_file.name}*"))
    return "\n".join(
        [span.to_json() for span in otel.exporter.get_finished_spans()]
        + [str(point.attributes) for points in otel.metrics().values() for point in points]
        + [record.getMessage() + str(record.exc_text) for record in caplog.records]
        + [ledger_bytes.decode("utf-8", "replace")]
    )


def _instrument_capturing(
    capture: str,
    instrument: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Path:
    """Instrument with content capture off, on by the option, or on by the variable; the ledger to scan."""
    caplog.set_level(logging.DEBUG, logger="costspan")
    if capture == "variable":
        monkeypatch.setenv(CAPTURE, "true")
    ledger_file = tmp_path / "ledger.db"
    instrument(ledger=ledger_file, **({"capture_content": True} if capture == "option" else {}))
    return ledger_file


def _assert_only_on_the_span(exported: str, span: Any) -> None:
    not_on_the_span = exported.replace(span.to_json(), "")
    for secret in (SECRET_PROMPT, SECRET_SYSTEM, SECRET_ANSWER):
        assert secret not in not_on_the_span


@pytest.mark.parametrize("capture", ["off", "option", "variable"])
@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("provider", PROVIDERS, ids=[p.name for p in PROVIDERS])
def test_content_only_when_asked_and_never_in_metrics_or_the_ledger(
    provider: ProviderUnderTest,
    way: str,
    capture: str,
    instrument: Callable[..., None],
    server: ProviderServer,
    otel: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Defect 6 of issue 18: there was no content capture. Off, nothing of the content anywhere; on, the span has
    it in the conventions' shape, and metrics, logs and the ledger (with its WAL) still have none of it."""
    ledger_file = _instrument_capturing(capture, instrument, caplog, monkeypatch, tmp_path)
    messages = [{"role": "user", "content": SECRET_PROMPT}]
    with provider.client(server, otel.tracer_provider, {"default_headers": {"X-Custom-Auth": SECRET_HEADER}}) as client:
        server.push(Reply(text=SECRET_ANSWER, chunks=3))
        assert provider.call(client, way, messages, SECRET_SYSTEM) == SECRET_ANSWER

    exported = _everything_exported(otel, caplog, ledger_file)
    for secret in (API_KEY, SECRET_HEADER, "Bearer"):
        assert secret not in exported
    span = otel.span()
    if capture == "off":
        for secret in (SECRET_PROMPT, SECRET_SYSTEM, SECRET_ANSWER):
            assert secret not in exported
        assert not {INPUT, OUTPUT, SYSTEM} & set(span.attributes)
        return
    reason = span.attributes["gen_ai.response.finish_reasons"][0]
    user = {"role": "user", "parts": [{"type": "text", "content": SECRET_PROMPT}]}
    answer = [{"role": "assistant", "parts": [{"type": "text", "content": SECRET_ANSWER}], "finish_reason": reason}]
    system = [{"type": "text", "content": SECRET_SYSTEM}]
    if provider.name == "openai":  # chat puts the system prompt among the messages
        assert json.loads(span.attributes[INPUT]) == [{"role": "system", "parts": system}, user]
        assert SYSTEM not in span.attributes
    else:
        assert json.loads(span.attributes[INPUT]) == [user]
        assert json.loads(span.attributes[SYSTEM]) == system
    assert json.loads(span.attributes[OUTPUT]) == answer
    _assert_only_on_the_span(exported, span)


def _gemini_call(server: ProviderServer, stream: bool) -> str:
    client = gemini_client(server)  # kept: a client that is collected closes its connections
    models = client.models
    arguments = {
        "model": "gemini-2.5-flash",
        "contents": SECRET_PROMPT,
        "config": {"system_instruction": SECRET_SYSTEM},
    }
    if not stream:
        return models.generate_content(**arguments).text
    return "".join(chunk.text or "" for chunk in models.generate_content_stream(**arguments))


def _converse_call(server: ProviderServer, stream: bool) -> str:
    client = bedrock_client(server)
    messages = [{"role": "user", "content": [{"text": SECRET_PROMPT}]}]
    arguments = {"modelId": CLAUDE, "messages": messages, "system": [{"text": SECRET_SYSTEM}]}
    if not stream:
        return bedrock_text(client.converse(**arguments))
    return bedrock_text(list(client.converse_stream(**arguments)["stream"]))


def _invoke_call(server: ProviderServer, stream: bool) -> str:
    """InvokeModel with Claude's own body on Bedrock, read as its users read it."""
    client = bedrock_client(server)
    body = json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 256,
            "system": SECRET_SYSTEM,
            "messages": [{"role": "user", "content": [{"type": "text", "text": SECRET_PROMPT}]}],
        }
    )
    if not stream:
        return json.loads(client.invoke_model(modelId=CLAUDE, body=body)["body"].read())["content"][0]["text"]
    events = client.invoke_model_with_response_stream(modelId=CLAUDE, body=body)["body"]
    chunks = [json.loads(event["chunk"]["bytes"]) for event in events]
    return "".join(chunk["delta"]["text"] for chunk in chunks if chunk["type"] == "content_block_delta")


@pytest.mark.parametrize("capture", ["off", "option", "variable"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(
    "call", [_gemini_call, _converse_call, _invoke_call], ids=["gemini", "bedrock-converse", "bedrock-invoke"]
)
def test_gemini_and_converse_capture_only_when_asked(
    call: Callable[[ProviderServer, bool], str],
    stream: bool,
    capture: str,
    instrument: Callable[..., None],
    server: ProviderServer,
    otel: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """google-genai's generate_content, Bedrock's Converse and InvokeModel: the same opt-in as the others. Off, no
    content anywhere; on, the span's messages in the conventions' shape (Gemini's "model" role is "assistant"),
    and nowhere else."""
    ledger_file = _instrument_capturing(capture, instrument, caplog, monkeypatch, tmp_path)
    server.push(Reply(text=SECRET_ANSWER, chunks=3))
    assert call(server, stream) == SECRET_ANSWER
    exported = _everything_exported(otel, caplog, ledger_file)
    span = otel.span()
    if capture == "off":
        for secret in (SECRET_PROMPT, SECRET_SYSTEM, SECRET_ANSWER):
            assert secret not in exported
        assert not {INPUT, OUTPUT, SYSTEM} & set(span.attributes)
        return
    reason = span.attributes["gen_ai.response.finish_reasons"][0]
    assert json.loads(span.attributes[INPUT]) == [
        {"role": "user", "parts": [{"type": "text", "content": SECRET_PROMPT}]}
    ]
    assert json.loads(span.attributes[SYSTEM]) == [{"type": "text", "content": SECRET_SYSTEM}]
    answer = {"role": "assistant", "parts": [{"type": "text", "content": SECRET_ANSWER}], "finish_reason": reason}
    assert json.loads(span.attributes[OUTPUT]) == [answer]
    _assert_only_on_the_span(exported, span)


def test_content_is_bounded(instrument: Callable[..., None], server: ProviderServer, otel: Any) -> None:
    """Each text is cut to MAX_TEXT_CHARS and each attribute to MAX_ATTRIBUTE_CHARS of JSON, the earliest messages
    left out first; the output of a long stream is kept only up to the bound."""
    instrument(capture_content=True)
    history = [{"role": "user", "content": f"message {index} " + "x" * 3000} for index in range(20)]
    history.append({"role": "user", "content": "y" * 100_000})
    with openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0) as client:
        server.push(Reply(text="z" * 50_000, chunks=5_000))
        chunks = client.chat.completions.create(model="gpt-4.1-mini", messages=history, stream=True)
        assert len("".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)) == 50_000

    attributes = otel.span().attributes
    assert all(len(attributes[name]) <= MAX_ATTRIBUTE_CHARS for name in (INPUT, OUTPUT))
    sent = json.loads(attributes[INPUT])
    assert sent[-1]["parts"][0]["content"] == "y" * MAX_TEXT_CHARS + f"…[{100_000 - MAX_TEXT_CHARS} more characters]"
    assert 1 < len(sent) < len(history) and sent[0]["parts"][0]["content"].startswith("message ")
    (answer,) = json.loads(attributes[OUTPUT])
    assert answer["parts"][0]["content"].startswith("z" * MAX_TEXT_CHARS)
    assert len(answer["parts"][0]["content"]) < MAX_TEXT_CHARS + 100


@pytest.mark.parametrize("endpoint", ["responses", "responses stream", "completions", "completions stream"])
def test_other_openai_endpoints_capture_too(
    endpoint: str, instrument: Callable[..., None], server: ProviderServer, otel: Any
) -> None:
    instrument(capture_content=True)
    stream = endpoint.endswith("stream")
    with openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0) as client:
        server.push(Reply(text=SECRET_ANSWER, chunks=3))
        if endpoint.startswith("responses"):
            result = client.responses.create(
                model="gpt-4.1-mini", input=SECRET_PROMPT, instructions=SECRET_SYSTEM, stream=stream
            )
        else:
            result = client.completions.create(model="gpt-3.5-turbo-instruct", prompt=SECRET_PROMPT, stream=stream)
        if stream:
            list(result)

    attributes = otel.span().attributes
    assert json.loads(attributes[INPUT]) == [{"role": "user", "parts": [{"type": "text", "content": SECRET_PROMPT}]}]
    (answer,) = json.loads(attributes[OUTPUT])
    assert answer["role"] == "assistant"
    assert answer["parts"] == [{"type": "text", "content": SECRET_ANSWER}]
    if endpoint.startswith("responses"):
        assert json.loads(attributes[SYSTEM]) == [{"type": "text", "content": SECRET_SYSTEM}]


@pytest.mark.parametrize("value", ["SPAN_ONLY", "span_and_event", "1"])
def test_the_variable_takes_the_conventions_modes(value: str) -> None:
    from costspan._content import capture_enabled

    assert capture_enabled(None, {CAPTURE: value})
    assert not capture_enabled(None, {CAPTURE: "NO_CONTENT"})
    assert not capture_enabled(False, {CAPTURE: value})
    assert not capture_enabled(None, {})
