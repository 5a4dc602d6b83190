"""The harness of the usage tests: every endpoint as a user calls it, and an exchange that runs one call twice
against the same scripted reply, once with costspan suppressed and once instrumented, and checks what every
call must satisfy however malformed its usage: the user gets what they get without costspan, exactly one span
ends, its counts are integers within bounds, its cost is finite and non-negative, and the cost counter's total
is the sum of the span costs."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
from opentelemetry.instrumentation.utils import suppress_instrumentation

from costspan.testing import ProviderServer, Reply
from costspan.usage import MAX_TOKENS
from support import API_KEY, scrub

MESSAGES = [{"role": "user", "content": "Count from one to ten, please."}]
TEXT = "one two three four five six seven eight nine ten"
# Token counts on a span: each is a count, or a total of at most three (Anthropic's input: uncached, cache reads
# and cache writes), or an estimate from a short prompt or text.
SPAN_COUNT_BOUND = 3 * MAX_TOKENS
TOKEN_ATTRIBUTES = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_write.input_tokens",
    "gen_ai.usage.reasoning.output_tokens",
)
COST_PARTS = ("input", "output", "cache_read", "cache_write", "other")


@dataclass(frozen=True)
class Target:
    """One endpoint, called the way its provider's docs call it: ``open(client, **options)`` is the SDK call (an
    awaitable, on an async client); what the user gets is its result, or a stream's items read to the end."""

    name: str
    sdk: str
    open: Callable[..., Any]
    stream: bool

    def call(self, client: Any, **options: Any) -> Any:
        result = self.open(client, **options)
        return list(result) if self.stream else result

    async def acall(self, client: Any, **options: Any) -> Any:
        result = await self.open(client, **options)
        return [item async for item in result] if self.stream else result


def _target(endpoint: str, sdk: str, open_: Callable[..., Any], stream: bool) -> Target:
    name = f"{endpoint}-{'stream' if stream else 'json'}"
    return Target(name, sdk, lambda client, **options: open_(client, stream=stream, **options), stream)


def _chat(client: Any, **options: Any) -> Any:
    return client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, **options)


def _completions(client: Any, **options: Any) -> Any:
    return client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Count to ten:", **options)


def _responses(client: Any, **options: Any) -> Any:
    return client.responses.create(model="gpt-4.1", input="Count to ten.", **options)


def _embeddings(client: Any, stream: bool, **options: Any) -> Any:
    return client.embeddings.create(model="text-embedding-3-small", input="Count to ten.", **options)


def _messages(client: Any, **options: Any) -> Any:
    return client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES, **options)


TARGETS = {
    t.name: t
    for stream in (False, True)
    for t in (
        _target("chat", "openai", _chat, stream),
        _target("completions", "openai", _completions, stream),
        _target("responses", "openai", _responses, stream),
        _target("messages", "anthropic", _messages, stream),
    )
} | {"embeddings-json": _target("embeddings", "openai", _embeddings, False)}
STREAM_TARGETS = {name: target for name, target in TARGETS.items() if target.stream}


@dataclass
class Exchange:
    """Runs calls against the local server with real SDK clients, suppressed and instrumented."""

    otel: Any
    server: ProviderServer
    clients: dict[str, Any]
    checked: int = 0

    def run(self, target: Target, reply: Reply, **options: Any) -> tuple[dict[str, Any], Any]:
        """The attributes of the instrumented call's span, after the checks every call must pass, and what the
        user got from the same call without costspan."""
        self.server.push(reply, reply)
        # Hypothesis seeds `random` for each example, and with it the SDK's span ids: count each example's own.
        self.otel.lifecycle.started.clear()
        self.otel.lifecycle.ended.clear()
        with suppress_instrumentation():
            plain, got = _outcome(target, self.clients[target.sdk], options)
        traced, _ = _outcome(target, self.clients[target.sdk], options)
        assert traced == plain, "costspan changed what the user got"
        if plain[0] == "raised":  # the SDK's own reading of the body failed, with costspan as without
            return self.check_raised(plain[1]), got
        return self.check_span(), got

    def check_raised(self, error: type[Exception]) -> dict[str, Any]:
        """The span of a call the SDK raised from: one, ended once, naming the error."""
        spans = self.otel.spans()
        assert len(spans) == self.checked + 1, "exactly one span per call"
        self.checked += 1
        self.otel.lifecycle.assert_each_ended_once()
        attributes = dict(spans[-1].attributes)
        assert attributes["error.type"] == error.__qualname__
        return attributes

    def check_span(self) -> dict[str, Any]:
        spans = self.otel.spans()
        assert len(spans) == self.checked + 1, "exactly one span per call"
        self.checked += 1
        self.otel.lifecycle.assert_each_ended_once()
        attributes = dict(spans[-1].attributes)
        check_record(attributes)
        check_counter(self.otel, spans)
        return attributes


def _outcome(target: Target, client: Any, options: dict[str, Any]) -> tuple[Any, Any]:
    """What the user got, comparable across runs, and as the SDK gave it (an exception: its type, both times)."""
    try:
        result = target.call(client, **options)
    except Exception as error:
        return ("raised", type(error)), None
    return ("returned", scrub(result)), result


def usage_views(result: Any) -> list[dict[str, Any]]:
    """The usage objects of a call's result, as the SDK parsed them: a response's, the usage chunk's, the final
    Responses event's, or Anthropic's message_start's followed by each message_delta's."""
    items = result if isinstance(result, list) else [result]
    views = []
    for item in items:
        kind = getattr(item, "type", None)
        if kind == "message_start":
            usage = item.message.usage
        elif kind in ("message_delta", None):
            usage = getattr(item, "usage", None)
        elif kind == "response.completed" or (kind == "message" and not isinstance(result, list)):
            usage = item.response.usage if kind == "response.completed" else item.usage
        else:
            usage = getattr(item, "usage", None) if not isinstance(result, list) else None
        if usage is not None:
            views.append(usage.model_dump(warnings=False))
    return views


def check_record(attributes: dict[str, Any]) -> None:
    """Counts are integers within bounds; the cost is finite, non-negative and its parts' sum, or unknown."""
    for name in TOKEN_ATTRIBUTES:
        if name in attributes:
            value = attributes[name]
            assert type(value) is int and 0 <= value <= SPAN_COUNT_BOUND, (name, value)
    if attributes.get("costspan.usage.unusable"):
        assert attributes.get("costspan.usage.estimated") is True
    amount = attributes.get("gen_ai.usage.cost.amount")
    if amount is None:
        assert attributes.get("costspan.cost.unpriced") is True, "a call without a cost says so"
        return
    parts = [attributes[f"costspan.cost.{part}"] for part in COST_PARTS]
    assert all(math.isfinite(value) and value >= 0 for value in [amount, *parts]), attributes
    assert math.isclose(amount, sum(parts), rel_tol=1e-9, abs_tol=1e-15)
    assert "costspan.cost.unpriced" not in attributes


def check_counter(otel: Any, spans: list[Any]) -> None:
    """The cost counter's total is the sum of the span costs: it received nothing else."""
    points = otel.metrics().get("costspan.cost", [])
    counted = sum(point.value for point in points)
    costs = sum(span.attributes.get("gen_ai.usage.cost.amount", 0.0) for span in spans)
    assert all(math.isfinite(point.value) and point.value >= 0 for point in points)
    assert math.isclose(counted, costs, rel_tol=1e-9, abs_tol=1e-15), (counted, costs)


def openai_client(server: ProviderServer, cls: type = openai.OpenAI) -> Any:
    return cls(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0)


def anthropic_client(server: ProviderServer, cls: type = anthropic.Anthropic) -> Any:
    return cls(base_url=server.anthropic_base_url, api_key=API_KEY, max_retries=0)
