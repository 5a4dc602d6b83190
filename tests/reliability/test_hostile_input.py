"""Hostile input from a server: what a response says is data, and costspan's memory and logs stay bounded however
many distinct values it sends. (Hostile usage fields and SSE event orders: tests/usage/test_usage_objects.py and
tests/usage/test_event_sequences.py; hostile price files: tests/config/test_price_files.py and below; hostile
attribution values: below.)"""

from __future__ import annotations

import gc
import json
import logging
import os
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability.conftest import Figures

import costspan
from costspan.pricing import UNPRICED_LOG_LIMIT, Pricing
from costspan.testing import ProviderServer, Reply
from ledger_support import rows
from support import API_KEY

NAMES = int(os.environ.get("COSTSPAN_HOSTILE_NAMES", "3000"))
MESSAGES = [{"role": "user", "content": "hi"}]
# Allocations still held, over the last calls, by the code that prices a call and keeps its model names.
PRICING_FILES = ("costspan/pricing.py", "costspan/_price_data.py", "costspan/_pipeline.py", "genai_prices/")
PRICING_GROWTH_BOUND = 64 * 1024


def _pricing() -> Pricing:
    """The instrumentation's Pricing: the one that has priced the made-up models (earlier tests' may linger)."""
    made_up = [o for o in gc.get_objects() if type(o) is Pricing and any("made-up-model-" in k[1] for k in o._cache)]
    (pricing,) = made_up
    return pricing


@pytest.mark.heavy
def test_model_names_chosen_by_the_server_are_bounded(
    instrumented: None, server: ProviderServer, otel: object, caplog: pytest.LogCaptureFixture, figures: Figures
) -> None:
    """Defect 4 of issue 18: 3,000 model names a server made up left 6,002 price-cache entries, 6,000 WARNING
    lines and +38 MB. Now: the cache keeps at most 1,024 entries, the first 20 names are logged and then a count
    at each power of ten, and what pricing holds stops growing."""
    caplog.set_level(logging.WARNING, logger="costspan")
    client = openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0)
    measured = NAMES // 4
    for index in range(NAMES):
        if index == NAMES - measured:
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.take_snapshot()
        server.push(Reply(model=f"made-up-model-{index}"))
        client.chat.completions.create(model="made-up-model", messages=MESSAGES)
        if index % 500 == 0:
            server.reset()
            otel.exporter.clear()  # type: ignore[attr-defined]
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    client.close()

    growth = sum(
        stat.size_diff
        for stat in after.compare_to(before, "filename")
        if any(part in stat.traceback[0].filename for part in PRICING_FILES)
    )
    assert len(_pricing()._cache) <= 1024
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) <= UNPRICED_LOG_LIMIT + 1 + len(str(NAMES)), lines[-5:]
    assert "more lookups found no price for a model" in lines[-1]
    assert not any("made-up-model-2999" in line for line in lines)
    assert growth < PRICING_GROWTH_BOUND, f"pricing kept {growth} bytes over the last {measured} names"
    figures.count("hostile inputs: model names from the server", NAMES)
    figures.count("calls", NAMES)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=30,
)
SECTIONS = st.fixed_dictionaries(
    {},
    optional={
        "aliases": st.dictionaries(st.text(max_size=12), JSON, max_size=3),
        "models": st.dictionaries(
            st.text(max_size=12),
            st.dictionaries(st.sampled_from(["input", "output", "cache_read", "provider", "per_request", "x"]), JSON),
            max_size=3,
        ),
        "discounts": st.dictionaries(st.text(max_size=12), JSON, max_size=3),
    },
)
HOSTILE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@HOSTILE
@given(document=JSON | SECTIONS, suffix=st.sampled_from([".json", ".toml"]))
def test_a_hostile_price_file_is_usable_or_one_value_error(
    tmp_path_factory: pytest.TempPathFactory, figures: Figures, document: object, suffix: str
) -> None:
    """Whatever a price file holds (any JSON value, or TOML text that is not), reading it gives a configuration
    or a ValueError naming the file: never another exception, never a hang."""
    import json

    figures.count("hostile inputs: price files", 1)
    path = Path(tmp_path_factory.mktemp("prices")) / f"prices{suffix}"
    path.write_text(json.dumps(document), encoding="utf-8")
    try:
        costspan.pricing.read_prices(path)
    except ValueError as error:
        assert str(error).startswith(f"price file {str(path)!r}: ")


@HOSTILE
@given(name=st.text(min_size=1, max_size=200))
def test_any_model_name_from_the_server_is_data(
    instrumented: None, server: ProviderServer, otel: object, figures: Figures, name: str
) -> None:
    """A response model of any text (markup, control characters, lone surrogates escaped by JSON) is recorded
    as given and the call is unchanged."""
    figures.count("hostile inputs: model names from the server", 1)
    figures.count("calls", 1)
    otel.exporter.clear()  # type: ignore[attr-defined]
    server.push(Reply(model=name))
    with openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0) as client:
        reply = client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)
    assert reply.model == name
    (span,) = otel.spans()  # type: ignore[attr-defined]
    assert span.attributes["gen_ai.response.model"] == name


@settings(HOSTILE, max_examples=25)  # each example instruments with a ledger of its own
@given(user=st.text(min_size=1, max_size=100), team=st.text(max_size=100))
def test_any_attribution_value_round_trips(
    instrument: Callable[..., None],
    server: ProviderServer,
    otel: object,
    tmp_path_factory: pytest.TempPathFactory,
    figures: Figures,
    user: str,
    team: str,
) -> None:
    """Attribution values of any text (markup, quotes, SQL, control characters) reach the span and the ledger
    exactly as given."""
    figures.count("hostile inputs: attribution values", 2)
    figures.count("calls", 1)
    ledger_file = Path(tmp_path_factory.mktemp("ledger")) / "ledger.db"
    instrument(ledger=ledger_file)
    try:
        with (
            openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0) as client,
            costspan.attribution(user_id=user, team=team),
        ):
            client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)
        assert costspan.CostspanInstrumentor()._ledger.force_flush()
        (row,) = rows(ledger_file)
    finally:
        costspan.CostspanInstrumentor().uninstrument()
    assert (row["user_id"], json.loads(row["attributes"])) == (user, {"team": team})
