"""Options given in code: a wrong name or value fails at ``instrument()`` with a message naming the option and what
it accepts, through both ways of instrumenting; keywords win over the environment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import fields
from typing import Any

import openai
import pytest

import costspan
from costspan.config import Options
from costspan.testing import ProviderServer
from support import API_KEY

MESSAGES = [{"role": "user", "content": "hi"}]
# Every option, as the error lists them: Options' fields in order, then the providers.
VALID = ", ".join([*(f.name for f in fields(Options)), "tracer_provider", "meter_provider"])


def _costspan_instrument(otel: Any, **options: Any) -> None:
    costspan.instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, **options)


def _instrumentor_instrument(otel: Any, **options: Any) -> None:
    costspan.CostspanInstrumentor().instrument(
        tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, **options
    )


@pytest.fixture(params=[_costspan_instrument, _instrumentor_instrument], ids=["instrument", "CostspanInstrumentor"])
def instrument_with(request: pytest.FixtureRequest, otel: Any) -> Iterator[Callable[..., None]]:
    def start(**options: Any) -> None:
        request.param(otel, **options)

    yield start
    if costspan.CostspanInstrumentor().is_instrumented_by_opentelemetry:
        costspan.uninstrument()


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        pytest.param(
            {"metric_atributes": ["user.id"]},
            TypeError,
            f"costspan: unknown option 'metric_atributes' (did you mean 'metric_attributes'?); the options are {VALID}",
            id="unknown keyword",
        ),
        pytest.param(
            {"metric_attributes": "user.id"},
            TypeError,
            "costspan: option metric_attributes: got 'user.id', expected a list of attribute names such as "
            "['user.id', 'team']",
            id="metric_attributes string",
        ),
        pytest.param(
            {"stream_usage": "no"},
            TypeError,
            "costspan: option stream_usage: got 'no', expected True or False",
            id="stream_usage string",
        ),
        pytest.param(
            {"prices": 123},
            TypeError,
            "costspan: option prices: got 123, expected the path of a JSON or TOML price file, or a mapping with the "
            "sections aliases, models, discounts",
            id="prices number",
        ),
        pytest.param(
            {"model_aliases": "a=b"},
            TypeError,
            "costspan: option model_aliases: got 'a=b', expected a mapping of name to priced model such as "
            "{'prod-gpt': 'gpt-4.1'}",
            id="model_aliases string",
        ),
        pytest.param(
            {"model_aliases": {"prod-gpt": None}},
            TypeError,
            "costspan: option model_aliases: got the entry ('prod-gpt', None), expected names and models as "
            "non-empty strings",
            id="model_aliases value",
        ),
        pytest.param(
            {"prices": {"models": {"my-finetune": {"input": 3.0, "output": "12"}}}},
            ValueError,
            "costspan: option prices: model 'my-finetune': output = '12': expected a number of USD per million "
            "tokens, finite and not negative",
            id="prices mapping value",
        ),
        pytest.param(
            {"budgets": 10.0},
            TypeError,
            "costspan: option budgets: got 10.0, expected a list of costspan.Budget objects",
            id="budgets number",
        ),
        pytest.param(
            {"budgets": [costspan.Budget(5.0), {"limit_usd": 5}]},
            TypeError,
            "costspan: option budgets: got {'limit_usd': 5} in the list, expected costspan.Budget objects",
            id="budgets entry",
        ),
        pytest.param(
            {"budgets": [costspan.Budget(5.0), costspan.Budget(5.0)]},
            ValueError,
            "costspan: option budgets: got two budgets of the same name in ['day:global:5usd', 'day:global:5usd'], "
            "expected distinct names (Budget(name=...))",
            id="budgets same name",
        ),
        pytest.param(
            {"default_max_output_tokens": 0},
            TypeError,
            "costspan: option default_max_output_tokens: got 0, expected a positive whole number of tokens",
            id="default_max_output_tokens zero",
        ),
    ],
)
def test_a_bad_option_fails_at_instrument(
    instrument_with: Callable[..., None], options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        instrument_with(**options)

    assert str(raised.value) == message
    assert not costspan.CostspanInstrumentor().is_instrumented_by_opentelemetry


def test_instrument_works_once_the_option_is_fixed(
    instrument_with: Callable[..., None], server: ProviderServer, otel: Any
) -> None:
    with pytest.raises(TypeError):
        instrument_with(metric_atributes=["user.id"])
    instrument_with(metric_attributes=["user.id"])
    client = openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0)

    with costspan.attribution(user_id="u-1"):
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)

    assert otel.span().attributes["gen_ai.usage.cost.amount"] > 0
    (cost,) = otel.metrics()["costspan.cost"]
    assert cost.attributes["user.id"] == "u-1"


def test_keywords_win_over_the_environment(
    instrument: Callable[..., None], server: ProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COSTSPAN_STREAM_USAGE", "false")
    instrument(stream_usage=True)
    client = openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0)

    for _ in client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True):
        pass

    assert server.requests[-1].body["stream_options"] == {"include_usage": True}


def test_once_instrumented_options_are_still_checked_and_ignoring_them_is_said(
    instrument_with: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    """As under opentelemetry-instrument, where the application's own instrument() call comes second."""
    instrument_with()

    with pytest.raises(TypeError, match="unknown option 'metric_atributes'"):
        instrument_with(metric_atributes=["user.id"])
    instrument_with(metric_attributes=["user.id"])

    assert [r.getMessage() for r in caplog.records if r.name == "costspan"] == [
        "costspan: already instrumented (by opentelemetry-instrument or an earlier instrument() call): "
        "tracer_provider, meter_provider, metric_attributes not applied; call costspan.uninstrument() first, or set "
        "options as COSTSPAN_* variables",
    ]
