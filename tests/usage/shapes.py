"""Each endpoint's usage object, field by field: a hypothesis strategy for any mix of well-formed and malformed
fields, and what costspan must report for a given one (estimated or not, and which counts are exact)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from costspan.usage import MAX_TOKENS

# What a count can be: mostly small, sometimes the largest a call can use, sometimes an integral float.
USABLE = st.one_of(
    st.integers(0, 3000),
    st.integers(0, MAX_TOKENS),
    st.just(MAX_TOKENS),
    st.integers(0, 3000).map(float),
)
UNUSABLE = st.one_of(
    st.integers(max_value=-1),
    st.integers(0, 3000).map(lambda n: n + 0.5),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e30]),
    st.integers(0, 3000).map(str),
    st.text(max_size=4),
    st.booleans(),
    st.integers(MAX_TOKENS + 1, 10**30),
    st.lists(st.integers(0, 9), max_size=2),
)
# A field as a server may send it: absent is the fixed_dictionaries key left out.
FIELD = st.one_of(USABLE, USABLE, USABLE, st.none(), UNUSABLE)
NOT_AN_OBJECT = st.one_of(st.integers(0, 9), st.text(max_size=3), st.lists(st.integers(0, 9), max_size=2))


def usable(value: Any) -> bool:
    if type(value) is int:
        return 0 <= value <= MAX_TOKENS
    return type(value) is float and value.is_integer() and 0 <= value <= MAX_TOKENS


@dataclass(frozen=True)
class Shape:
    """A usage object's fields: required totals, optional top-level parts, details objects of optional parts,
    and fields costspan does not read (whatever they hold, they change nothing)."""

    totals: tuple[str, ...]
    parts: tuple[str, ...] = ()
    details: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()

    def strategy(self) -> st.SearchStrategy[dict[str, Any]]:
        optional: dict[str, st.SearchStrategy[Any]] = {name: FIELD for name in (*self.totals, *self.parts)}
        optional |= {name: st.one_of(FIELD, NOT_AN_OBJECT) for name in self.ignored}
        for name, counts in self.details.items():
            fields = st.fixed_dictionaries({}, optional=dict.fromkeys(counts, FIELD))
            optional[name] = st.one_of(fields, fields, st.none(), NOT_AN_OBJECT)
        return st.fixed_dictionaries({}, optional=optional)


CHAT = Shape(
    ("prompt_tokens", "completion_tokens"),
    details={
        "prompt_tokens_details": ("cached_tokens", "audio_tokens", "cache_write_tokens"),
        "completion_tokens_details": ("reasoning_tokens", "audio_tokens"),
    },
    ignored=("total_tokens",),
)
RESPONSES = Shape(
    ("input_tokens", "output_tokens"),
    details={
        "input_tokens_details": ("cached_tokens", "cache_write_tokens"),
        "output_tokens_details": ("reasoning_tokens",),
    },
    ignored=("total_tokens",),
)
EMBEDDINGS = Shape(("prompt_tokens",), ignored=("total_tokens",))
MESSAGES = Shape(
    ("input_tokens", "output_tokens"),
    parts=("cache_read_input_tokens", "cache_creation_input_tokens"),
    details={
        "cache_creation": ("ephemeral_1h_input_tokens",),
        "output_tokens_details": ("thinking_tokens",),
        "server_tool_use": ("web_search_requests",),
    },
)
SHAPES = {"chat": CHAT, "completions": CHAT, "responses": RESPONSES, "embeddings": EMBEDDINGS, "messages": MESSAGES}


@dataclass
class Expected:
    """What the span must say: whether the usage is estimated; each count that is exact; a floor for each total
    that is estimated."""

    estimated: bool = False
    exact: dict[str, int] = field(default_factory=dict)
    floors: dict[str, int] = field(default_factory=dict)

    def check(self, attributes: dict[str, Any]) -> None:
        assert attributes.get("costspan.usage.estimated", False) is self.estimated, attributes
        for name, value in self.exact.items():
            assert attributes.get(name, 0) == value, (name, value, attributes)
        for name, floor in self.floors.items():
            assert attributes[name] >= max(floor, 1), (name, floor, attributes)


class _Reading:
    """Reads a usage object as the oracle: each count's value (0 when unusable) and whether any was unusable."""

    def __init__(self, usage: dict[str, Any]) -> None:
        self.usage = usage
        self.faulty = False

    def total(self, name: str) -> int | None:
        value = self.usage.get(name)
        if usable(value):
            return int(value)
        self.faulty = True
        return None

    def part(self, name: str, within: dict[str, Any] | None = None) -> tuple[int, bool]:
        """A part's count and whether it is known (absent or null: 0, known)."""
        value = (self.usage if within is None else within).get(name)
        if value is None:
            return 0, True
        if usable(value):
            return int(value), True
        self.faulty = True
        return 0, False

    def details(self, name: str) -> dict[str, Any]:
        value = self.usage.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.faulty = True
            return {}
        return value

    def fit(self, part: int, room: int | None) -> int:
        """A part within what its (exact) total leaves; cutting it is a fault."""
        if room is None or part <= room:
            return part
        self.faulty = True
        return room


def expect(endpoint: str, views: list[dict[str, Any]]) -> Expected:
    """What costspan must report for the usage objects of one call, as the SDK handed them to the user (it
    coerces a field such as ``"12"`` when the whole object validates, and keeps every value as sent when not):
    one object, or for an Anthropic stream message_start's and then each message_delta's."""
    if endpoint == "messages":
        finals = [(view, True) for view in views]
        if len(views) > 1:  # a stream: message_start's usage, then each message_delta's
            finals[0] = (views[0], False)
        return _expect_messages(finals)
    (usage,) = views if views else ({},)
    if endpoint == "embeddings":
        reading = _Reading(usage)
        prompt = reading.total("prompt_tokens")
        floors = {"gen_ai.usage.input_tokens": 0}
        return _expected(reading, {"gen_ai.usage.input_tokens": prompt}, {"gen_ai.usage.output_tokens": 0}, floors)
    return _expect_openai(endpoint, usage)


def _expect_openai(endpoint: str, usage: dict[str, Any]) -> Expected:
    names = ("input_tokens", "output_tokens") if endpoint == "responses" else ("prompt_tokens", "completion_tokens")
    reading = _Reading(usage)
    prompt, completion = reading.total(names[0]), reading.total(names[1])
    inputs = reading.details(f"{names[0]}_details")
    outputs = reading.details(f"{names[1]}_details")
    cached = reading.fit(reading.part("cached_tokens", inputs)[0], prompt)
    written = reading.fit(reading.part("cache_write_tokens", inputs)[0], None if prompt is None else prompt - cached)
    audio_in = reading.fit(reading.part("audio_tokens", inputs)[0], prompt) if endpoint != "responses" else 0
    reasoning = reading.fit(reading.part("reasoning_tokens", outputs)[0], completion)
    audio_out = reading.fit(reading.part("audio_tokens", outputs)[0], completion) if endpoint != "responses" else 0
    parts = {
        "gen_ai.usage.cache_read.input_tokens": cached,
        "gen_ai.usage.cache_write.input_tokens": written,
        "gen_ai.usage.reasoning.output_tokens": reasoning,
    }
    floors = {
        "gen_ai.usage.input_tokens": cached + written + audio_in,
        "gen_ai.usage.output_tokens": max(reasoning, audio_out),
    }
    totals = {"gen_ai.usage.input_tokens": prompt, "gen_ai.usage.output_tokens": completion}
    return _expected(reading, totals, parts, floors)


def _expect_messages(views: list[tuple[dict[str, Any], bool]]) -> Expected:
    """Anthropic's usage as costspan reads it: each view is a usage object and whether it is a final one (a
    message's, message_delta's: output required) or message_start's (input required, output a placeholder).
    A part given unusable stays unknown until a later view gives it usable; input is exact when none is."""
    reading = _Reading({})
    known: dict[str, int] = {}
    unknown: set[str] = set()
    output: int | None = None
    thinking = 0
    for view, final in views:
        reading.usage = view
        for name in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
            required = name == "input_tokens" and (not final or len(views) == 1)
            if view.get(name) is None and not required:
                continue
            value = reading.total(name)
            if value is None:
                unknown.add(name)
            else:
                known[name] = value
                unknown.discard(name)
        one_hour = reading.part("ephemeral_1h_input_tokens", reading.details("cache_creation"))[0]
        reading.fit(one_hour, known.get("cache_creation_input_tokens", 0))
        if final:
            output = reading.total("output_tokens")
            thinking = reading.part("thinking_tokens", reading.details("output_tokens_details"))[0]
            reading.part("web_search_requests", reading.details("server_tool_use"))
    thinking = reading.fit(thinking, output)
    read, written = known.get("cache_read_input_tokens", 0), known.get("cache_creation_input_tokens", 0)
    exact_input = sum(known.values()) if "input_tokens" in known and not unknown else None
    parts = {
        "gen_ai.usage.cache_read.input_tokens": read,
        "gen_ai.usage.cache_write.input_tokens": written,
        "gen_ai.usage.reasoning.output_tokens": thinking,
    }
    floors = {"gen_ai.usage.input_tokens": sum(known.values()), "gen_ai.usage.output_tokens": thinking}
    totals = {"gen_ai.usage.input_tokens": exact_input, "gen_ai.usage.output_tokens": output}
    return _expected(reading, totals, parts, floors)


def _expected(
    reading: _Reading, totals: dict[str, int | None], parts: dict[str, int], floors: dict[str, int]
) -> Expected:
    exact = {name: value for name, value in totals.items() if value is not None} | parts
    floors = {name: floor for name, floor in floors.items() if totals.get(name) is None}
    return Expected(estimated=reading.faulty, exact=exact, floors=floors)
