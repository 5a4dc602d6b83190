"""Every PromQL expression shipped (dashboard panels and alert rules) run by a real Prometheus over costspan's real
metrics: a process instrumented with costspan makes real openai and anthropic SDK calls against the local
provider server, exposes its metrics with the OpenTelemetry Prometheus exporter, Prometheus scrapes it and
evaluates the shipped rules, and each expression must give exactly what the calls' spans say. The process has
costspan budgets (an unscoped daily one, one per user, and a tiny one per team that refuses a call), so the budget
rules run over costspan's real budget gauges and refusal counter too.

The Python exporter and the collector's prometheus exporter give costspan's metrics the same names
(test_metric_names.py), so these are the names the shipped files get through the collector too. What differs
is job and instance: the collector sets them from service.name and service.instance.id; no query uses them.

The official opentelemetry-instrumentation-openai-v2 traces the same openai calls beside costspan (as
``opentelemetry-bootstrap -a install`` sets it up), recording the same gen_ai.* metrics under its own scope: the
expectations come from costspan's spans alone, so every expression must give what it gives without it.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import yaml
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, start_http_server

import costspan
from collector.prometheus_server import Prometheus
from collector.shipped import PROMETHEUS, RULES, Expression, dashboard_expressions, load_yaml, rule_expressions
from costspan.telemetry import DURATION_BUCKETS
from costspan.testing import ProviderServer, Reply
from servers import binary
from support import API_KEY

# The budgets are the user's (collector-config/prometheus/rules/budgets.yml is an example); these are sized so
# that the calls below cross some thresholds and not others.
MODEL_BUDGETS = {("openai", "gpt-4.1"): 1.0}
DEFAULT_MODEL_BUDGET = 0.2
USER_BUDGET = 0.4
SPIKE_FLOOR_PER_HOUR = 0.5
THRESHOLDS = {"50": 0.5, "80": 0.8, "100": 1.0}
# The costspan.Budget's of the instrumented process, name -> (daily limit in USD, scope), as sized for the calls
# below: every call counts in "daily" (about 40% used); each user has "per-user" (alice ends at 89%, frank's
# stream is cut past 100%, the others stay under 80%); "per-team" is tiny, and refuses the interns' second call
# while at 70%. user.id and team are metric attributes, so the scoped budgets report a series per value.
COSTSPAN_BUDGETS = {"daily": (4.0, None), "per-user": (0.5, "user.id"), "per-team": (0.05, "team")}
METRIC_ATTRIBUTES = ["user.id", "team"]
REFUSALS = {"BudgetExceededError", "BudgetStoreError"}  # the error.type of a call a budget refused or cut

SCRAPE_SECONDS = 1
BAR_STEP = 2  # seconds: the $__interval of the bar panels, each bar being the spend of one step
DELAY = 0.1  # every call takes 0.1 s plus a few ms: all durations fall in the (0.08, 0.16] bucket's middle
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


# --- The calls -------------------------------------------------------------------------------------------------


def openai_usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def anthropic_usage(uncached: int, output: int, cache_read: int = 0, cache_write: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": uncached,
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_write,
        "cache_creation": {"ephemeral_5m_input_tokens": cache_write, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output,
    }


def make_calls(server: ProviderServer) -> Counter[str]:
    """What an application does: chat calls and streams, sync and async, from six users and from none, a failure,
    and calls its budgets stop. Streams are read the way users write them: iterated where they are created, with
    no name kept (``for chunk in client.chat.completions.create(..., stream=True)``), and one through the anthropic
    SDK's ``messages.stream`` helper. Returns how many calls each budget refused or cut, as the user saw them."""
    refused: Counter[str] = Counter()
    chat = openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0)
    claude = anthropic.Anthropic(base_url=server.anthropic_base_url, api_key=API_KEY, max_retries=0)
    with costspan.attribution(user_id="alice"):
        for _ in range(3):
            server.push(Reply(usage=openai_usage(100_000, 1_000, cached=40_000), delay=DELAY))
            chat.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    with costspan.attribution(user_id="carol"):
        server.push(Reply(usage=openai_usage(600_000, 2_000), first_chunk_delay=DELAY))
        for chunk in chat.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, stream=True):
            assert chunk.id
    with costspan.attribution(user_id="dave", team="interns"):
        server.push(Reply(usage=openai_usage(20_000, 3_000, reasoning=2_000), delay=DELAY))
        chat.chat.completions.create(model="o4-mini", messages=MESSAGES)
        # What the team's budget has left is less than this call's worst case (it may write 4096 tokens):
        # refused, it never reaches the server.
        sent = len(server.requests)
        with pytest.raises(costspan.BudgetExceededError) as refusal:
            chat.chat.completions.create(model="o4-mini", messages=MESSAGES)
        assert len(server.requests) == sent
        refused[refusal.value.budget] += 1
    with costspan.attribution(user_id="frank"):
        server.push(Reply(usage=openai_usage(200_000, 5_000), delay=DELAY))
        chat.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
        # The stream's first event reports 100,000 input tokens, more than frank's budget has left: the stream is
        # cut, and what it cost so far counts.
        server.push(Reply(usage=anthropic_usage(100_000, 800), first_chunk_delay=DELAY))
        with pytest.raises(costspan.BudgetExceededError) as refusal:
            for event in claude.messages.create(
                model="claude-haiku-4-5", max_tokens=1024, messages=MESSAGES, stream=True
            ):
                assert event.type
        refused[refusal.value.budget] += 1
    with costspan.attribution(user_id="bob"):
        for _ in range(2):
            server.push(Reply(usage=anthropic_usage(50_000, 500, cache_read=100_000, cache_write=20_000), delay=DELAY))
            claude.messages.create(model="claude-haiku-4-5", max_tokens=1024, messages=MESSAGES)
        server.push(Reply(usage=anthropic_usage(30_000, 800, cache_read=200_000), first_chunk_delay=DELAY))
        for event in claude.messages.create(model="claude-haiku-4-5", max_tokens=1024, messages=MESSAGES, stream=True):
            assert event.type
        server.push(Reply(usage=anthropic_usage(30_000, 800, cache_read=200_000), first_chunk_delay=DELAY))
        with claude.messages.stream(model="claude-haiku-4-5", max_tokens=1024, messages=MESSAGES) as stream:
            assert stream.get_final_text()
    asyncio.run(make_async_calls(server))
    server.push(Reply(status=500, delay=DELAY))
    with pytest.raises(openai.InternalServerError):
        chat.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    chat.close()
    claude.close()
    return refused


async def make_async_calls(server: ProviderServer) -> None:
    """An async service's stream: ``async for chunk in await client.chat.completions.create(..., stream=True)``."""
    chat = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0)
    with costspan.attribution(user_id="erin"):
        server.push(Reply(usage=openai_usage(50_000, 500), first_chunk_delay=DELAY))
        async for chunk in await chat.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, stream=True):
            assert chunk.id
    await chat.close()


# --- What the spans say ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    provider: str
    model: str
    user: str
    team: str
    cost: float
    error: str
    duration: float
    first_chunk: float | None
    tokens: dict[str, int]


def read_call(span: ReadableSpan) -> Call:
    a = span.attributes or {}
    assert span.end_time is not None and span.start_time is not None
    tokens = {
        "input": a.get("gen_ai.usage.input_tokens", 0),
        "output": a.get("gen_ai.usage.output_tokens", 0),
        "cache_read": a.get("gen_ai.usage.cache_read.input_tokens", 0),
        "cache_write": a.get("gen_ai.usage.cache_write.input_tokens", 0),
        "reasoning": a.get("gen_ai.usage.reasoning.output_tokens", 0),
    }
    return Call(
        provider=str(a["gen_ai.provider.name"]),
        model=str(a["gen_ai.request.model"]),
        user=str(a.get("user.id", "")),
        team=str(a.get("team", "")),
        cost=float(a.get("gen_ai.usage.cost.amount", 0.0)),  # type: ignore[arg-type]
        error=str(a.get("error.type", "")),
        duration=(span.end_time - span.start_time) / 1e9,
        first_chunk=a.get("gen_ai.response.time_to_first_chunk"),  # type: ignore[arg-type]
        tokens={k: int(v) for k, v in tokens.items()},  # type: ignore[call-overload]
    )


Key = tuple[str, ...]


def total(calls: list[Call], by: Callable[[Call], Key], value: Callable[[Call], float]) -> dict[Key, float]:
    out: dict[Key, float] = defaultdict(float)
    for call in calls:
        out[by(call)] += value(call)
    return dict(out)


def model(call: Call) -> Key:
    return (call.provider, call.model)


def histogram_quantile(q: float, values: list[float]) -> float:
    """Prometheus' histogram_quantile over costspan's duration buckets, for observations known exactly."""
    bounds = [*DURATION_BUCKETS, math.inf]
    counts = [0] * len(bounds)
    for value in values:
        counts[bisect.bisect_left(bounds, value)] += 1
    rank = q * len(values)
    below = 0
    for i, count in enumerate(counts):
        if below + count >= rank:
            if bounds[i] == math.inf:
                return bounds[i - 1]
            lower = bounds[i - 1] if i else 0.0
            return lower + (bounds[i] - lower) * (rank - below) / count
        below += count
    raise AssertionError("unreachable")


BUDGET_LABELS = ("costspan_budget_name", "user_id", "team")


def budget_spend(calls: list[Call]) -> dict[Key, float]:
    """What each costspan.Budget's spent gauge must say: the settled cost of the calls it counts (a refused call
    costs nothing), per scope value, keyed by its series' labels (BUDGET_LABELS)."""
    out: dict[Key, float] = defaultdict(float)
    for name, (_, scope) in COSTSPAN_BUDGETS.items():
        for call in calls:
            user = call.user if scope == "user.id" else ""
            team = call.team if scope == "team" else ""
            if scope is None or user or team:
                out[(name, user, team)] += call.cost
    return dict(out)


def expectations(calls: list[Call], refused: Counter[str]) -> dict[str, tuple[tuple[str, ...], dict[Key, float]]]:
    """What each shipped expression must give: the labels its result is keyed by, and the value per key."""
    model_labels = ("gen_ai_provider_name", "gen_ai_request_model")
    priced = [c for c in calls if c.cost]
    spend = sum(c.cost for c in priced)
    by_model = total(priced, model, lambda c: c.cost)
    by_user = total([c for c in priced if c.user], lambda c: (c.user,), lambda c: c.cost)
    budgets = {m: MODEL_BUDGETS.get(m, DEFAULT_MODEL_BUDGET) for m in by_model}
    model_ratio = {m: by_model[m] / budgets[m] for m in by_model}
    user_ratio = {u: s / USER_BUDGET for u, s in by_user.items()}
    per_series = total(priced, lambda c: (*model(c), c.user), lambda c: c.cost)
    calls_per_series = total(calls, lambda c: (*model(c), c.error), lambda c: 1)
    sent = [c for c in calls if c.error not in REFUSALS]
    failed = total([c for c in sent if c.error], model, lambda c: 1)
    # Every model called has a ratio, 0 when none of its calls failed.
    error_ratio = {m: failed.get(m, 0) / sum(1 for c in sent if model(c) == m) for m in {model(c) for c in sent}}
    budget_used = {k: spent / COSTSPAN_BUDGETS[k[0]][0] for k, spent in budget_spend(calls).items()}
    blocked = {(name,): float(n) for name, n in refused.items()}
    hourly = spend * 6
    spike = hourly > 3 * spend / 24 and hourly > SPIKE_FLOOR_PER_HOUR
    tokens = {kind: sum(c.tokens[kind] for c in calls) for kind in calls[0].tokens}
    cache_share = {
        (p,): sum(c.tokens["cache_read"] for c in calls if c.provider == p)
        / sum(c.tokens["input"] for c in calls if c.provider == p)
        for p in {c.provider for c in calls}
        if any(c.tokens["cache_read"] for c in calls if c.provider == p)
    }
    out: dict[str, tuple[tuple[str, ...], dict[Key, float]]] = {
        "record:costspan:cost_usd:increase1d": ((*model_labels, "user_id"), per_series),
        "record:costspan:cost_usd:increase10m": ((*model_labels, "user_id"), per_series),
        "record:costspan:calls:increase10m": ((*model_labels, "error_type"), calls_per_series),
        "record:costspan:spend_usd:1d": ((), {(): spend}),
        "record:costspan:spend_usd:1d_by_model": (model_labels, by_model),
        "record:costspan:spend_usd:1d_by_user": (("user_id",), by_user),
        "record:costspan:spend_usd:10m": ((), {(): spend}),
        "record:costspan:budget_usd:daily_model_effective": (model_labels, {**budgets, **MODEL_BUDGETS}),
        "record:costspan:budget_used:ratio_1d_by_model": (model_labels, model_ratio),
        "record:costspan:budget_used:ratio_1d_by_user": (("user_id",), user_ratio),
        "record:costspan:error_ratio:10m_by_model": (model_labels, error_ratio),
        "alert:CostspanSpendSpike": ((), {(): hourly} if spike else {}),
        "alert:CostspanErrorRatio": (model_labels, {m: r for m, r in error_ratio.items() if r > 0.05}),
        "record:costspan:budget_used:ratio": (BUDGET_LABELS, budget_used),
        "panel:costspan budgets/A": (BUDGET_LABELS, budget_used),
        "alert:CostspanBudget@80": (BUDGET_LABELS, {k: r for k, r in budget_used.items() if r >= 0.8}),
        "alert:CostspanBudget@100": (BUDGET_LABELS, {k: r for k, r in budget_used.items() if r >= 1}),
        "record:costspan:budget_blocked:10m": (("costspan_budget_name",), blocked),
        "alert:CostspanBudgetBlocked": (("costspan_budget_name",), blocked),
        "panel:Calls refused by budgets/A": (("costspan_budget_name",), blocked),
        "panel:Spend/A": ((), {(): spend}),
        "panel:Spend per model and provider/A": (model_labels, by_model),
        "panel:Spend by model/A": (model_labels, by_model),
        "panel:Spend by user/A": (("user_id",), by_user),
        "panel:Tokens by type/A": (("gen_ai_token_type",), {(k,): tokens[k] for k in ("input", "output")}),
        "panel:Tokens by type/B": (
            ("gen_ai_token_type",),
            {(k,): tokens[k] for k in ("cache_read", "cache_write", "reasoning") if tokens[k]},
        ),
        "panel:Cache-hit share/A": (("gen_ai_provider_name",), cache_share),
        "panel:Daily budget used per model/A": (model_labels, model_ratio),
        "panel:Error ratio per model/A": (model_labels, error_ratio),
    }
    for name, ratios in (("CostspanModelDailyBudget", model_ratio), ("CostspanUserDailyBudget", user_ratio)):
        labels = model_labels if name == "CostspanModelDailyBudget" else ("user_id",)
        for threshold, fraction in THRESHOLDS.items():
            out[f"alert:{name}@{threshold}"] = (labels, {k: r for k, r in ratios.items() if r >= fraction})
    for panel, observed in (
        ("Operation duration", lambda c: c.duration),
        ("Time to first chunk", lambda c: c.first_chunk),
    ):
        for ref_id, q in (("A", 0.5), ("B", 0.95), ("C", 0.99)):
            values: dict[Key, list[float]] = defaultdict(list)
            for call in calls:
                if (value := observed(call)) is not None:
                    values[model(call)].append(value)
            out[f"panel:{panel}/{ref_id}"] = (model_labels, {m: histogram_quantile(q, v) for m, v in values.items()})
    return out


# --- Prometheus --------------------------------------------------------------------------------------------------


def write_budgets(path: Path) -> None:
    """The budgets of this test, in the shape of budgets.yml."""
    rules: list[dict[str, Any]] = [
        {
            "record": "costspan:budget_usd:daily_model",
            "expr": f"vector({limit})",
            "labels": {"gen_ai_provider_name": provider, "gen_ai_request_model": name},
        }
        for (provider, name), limit in MODEL_BUDGETS.items()
    ]
    rules += [
        {"record": "costspan:budget_usd:daily_model_default", "expr": f"vector({DEFAULT_MODEL_BUDGET})"},
        {"record": "costspan:budget_usd:daily_user", "expr": f"vector({USER_BUDGET})"},
        {"record": "costspan:spend_alert_floor_usd:hourly", "expr": f"vector({SPIKE_FLOOR_PER_HOUR})"},
    ]
    shipped = {rule["record"] for group in load_yaml(RULES / "budgets.yml")["groups"] for rule in group["rules"]}
    assert {rule["record"] for rule in rules} == shipped, "the test's budgets must define what budgets.yml does"
    path.write_text(yaml.safe_dump({"groups": [{"name": "test-budgets", "rules": rules}]}))


def prometheus_config(target: str, budgets: Path) -> dict[str, Any]:
    """The shipped prometheus.yml, scraping ``target`` every second, evaluating every second, with no
    Alertmanager, the shipped rules and the test's budgets."""
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    config["global"] = {"scrape_interval": f"{SCRAPE_SECONDS}s", "evaluation_interval": "1s"}
    config.pop("alerting")
    config["rule_files"] = [str(RULES / "costspan.yml"), str(budgets)]
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [target]}]
    return config


@dataclass
class Run:
    prometheus: Prometheus
    calls: list[Call]
    refused: Counter[str]
    started: float
    settled: float

    def expected(self) -> dict[str, tuple[tuple[str, ...], dict[Key, float]]]:
        return expectations(self.calls, self.refused)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    prometheus_binary = binary("prometheus")
    directory = tmp_path_factory.mktemp("prometheus")
    registry = CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry)
    meter_provider = MeterProvider(metric_readers=[reader])
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    http_server, http_thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    budgets = directory / "budgets.yml"
    write_budgets(budgets)
    target = f"127.0.0.1:{http_server.server_port}"
    prometheus = Prometheus(prometheus_binary, prometheus_config(target, budgets), directory)
    # The budgets' windows are UTC days: a run across midnight would see them start again.
    if (left := 86400 - time.time() % 86400) < 60:
        time.sleep(left)
    # Every call after Prometheus first scraped the process: each bar of a per-step panel covers the calls it
    # should, and none falls before the series' first sample.
    prometheus.wait_scraping()
    started = time.time()
    costspan.CostspanInstrumentor().instrument(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        metric_attributes=METRIC_ATTRIBUTES,
        budgets=[
            costspan.Budget(limit, window="day", scope=scope, name=name)
            for name, (limit, scope) in COSTSPAN_BUDGETS.items()
        ],
    )
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    with warnings.catch_warnings():  # its own deprecations are not costspan's
        warnings.simplefilter("ignore", DeprecationWarning)
        OpenAIInstrumentor().instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        with ProviderServer() as server:
            refused = make_calls(server)
        calls = [
            read_call(s) for s in exporter.get_finished_spans() if s.instrumentation_scope.name.startswith("costspan")
        ]
        settled = wait_for_rules(prometheus, sum(c.cost for c in calls), sum(refused.values()))
        yield Run(prometheus, calls, refused, started, settled)
    finally:
        OpenAIInstrumentor().uninstrument()
        costspan.CostspanInstrumentor().uninstrument()
        prometheus.stop()
        http_server.shutdown()
        http_server.server_close()
        http_thread.join()
        meter_provider.shutdown()
        tracer_provider.shutdown()


def wait_for_rules(prometheus: Prometheus, spend: float, blocked: int, timeout: float = 30.0) -> float:
    """Waits until Prometheus has scraped every call and evaluated the rules over them (the spend rules and the
    budget rules, which may be evaluated in other groups); returns that time."""
    deadline = time.monotonic() + timeout
    seen: dict[str, float | None] = {}
    wanted = {"sum(costspan:spend_usd:1d)": spend, "sum(costspan:budget_blocked:10m)": float(blocked)}
    while time.monotonic() < deadline:
        now = time.time()
        seen = {query: _scalar(prometheus.query(query, now)) for query in wanted}
        if all(seen[query] == pytest.approx(value, rel=1e-12) for query, value in wanted.items()):
            # One more evaluation, so that every rule of the groups has seen this data (they run in order).
            time.sleep(1.5)
            return time.time()
        time.sleep(0.2)
    raise AssertionError(f"the rules never reached {wanted}: {seen}")


def _scalar(result: list[dict[str, Any]]) -> float | None:
    return float(result[0]["value"][1]) if result else None


# --- The tests ---------------------------------------------------------------------------------------------------


def shipped_expressions() -> list[Expression]:
    return rule_expressions(RULES / "costspan.yml") + dashboard_expressions()


def grafana(expr: str, interval: str, range_: str) -> str:
    """The expression as Grafana sends it: its built-in variables replaced."""
    return expr.replace("$__rate_interval", range_).replace("$__interval", interval).replace("$__range", range_)


def keyed(result: list[dict[str, Any]], labels: tuple[str, ...], values: Callable[[dict[str, Any]], float]) -> dict:
    out: dict[Key, float] = defaultdict(float)
    for series in result:
        out[tuple(series["metric"].get(label, "") for label in labels)] += values(series)
    return dict(out)


def evaluate(run: Run, expression: Expression, labels: tuple[str, ...]) -> dict[Key, float]:
    if "$__interval" in expression.expr:
        # A bar per step over the whole run: the bars must add up to the run's totals.
        expr = grafana(expression.expr, f"{BAR_STEP}s", "1h")
        start = math.floor(run.started) - 2 * BAR_STEP
        # Steps run from start; the last must be at or after the last sample, which may be a step's length
        # later than the last step before run.settled.
        result = run.prometheus.query_range(expr, start, run.settled + BAR_STEP, BAR_STEP)
        return keyed(result, labels, lambda s: sum(float(v) for _, v in s["values"]))
    result = run.prometheus.query(grafana(expression.expr, f"{BAR_STEP}s", "1h"), run.settled)
    return keyed(result, labels, lambda s: float(s["value"][1]))


def test_the_calls_cross_some_thresholds_and_not_others(run: Run) -> None:
    """The scenario shows each budget alert firing for some and not for others, a budget refusing calls while
    under 80% (which only the blocked alert tells), and the error alert firing."""
    expected = run.expected()
    for name, spenders in (
        ("CostspanModelDailyBudget", "Spend by model"),
        ("CostspanUserDailyBudget", "Spend by user"),
    ):
        everyone = set(expected[f"panel:{spenders}/A"][1])
        for threshold in THRESHOLDS:
            firing = set(expected[f"alert:{name}@{threshold}"][1])
            assert firing, f"{name} at {threshold}% fires for none of {everyone}"
            assert firing < everyone, f"{name} at {threshold}% fires for all of {everyone}"
    used = expected["record:costspan:budget_used:ratio"][1]
    for threshold in ("80", "100"):
        firing = set(expected[f"alert:CostspanBudget@{threshold}"][1])
        assert firing, f"CostspanBudget at {threshold}% fires for none of {set(used)}"
        assert firing < set(used), f"CostspanBudget at {threshold}% fires for all of {set(used)}"
    blocking = {name for (name,) in expected["alert:CostspanBudgetBlocked"][1]}
    assert any(name in blocking and ratio < 0.8 for (name, *_), ratio in used.items())
    assert expected["alert:CostspanErrorRatio"][1], "no model's error ratio is high enough to show the alert"


def test_every_shipped_expression_has_an_expectation(run: Run) -> None:
    keys = [e.key for e in shipped_expressions()]
    assert sorted(keys) == sorted(run.expected()), "a new panel or rule needs its expected values here"


@pytest.mark.parametrize("expression", shipped_expressions(), ids=lambda e: e.key)
def test_expression(run: Run, expression: Expression) -> None:
    labels, expected = run.expected()[expression.key]
    got = evaluate(run, expression, labels)
    assert got.keys() == expected.keys(), f"{expression.expr}\n-> {got}"
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9), f"{expression.key} {key}: {got[key]} != {value}"


def test_the_other_instrumentations_series_reach_prometheus(run: Run) -> None:
    """The double the shipped queries leave out is there: openai-v2's own series of the same metrics."""
    selector = 'gen_ai_client_operation_duration_seconds_count{otel_scope_name!="costspan.instrumentor"}'
    theirs = run.prometheus.query(f"sum({selector})", run.settled)
    openai_calls = [c for c in run.calls if c.provider == "openai"]
    assert theirs and float(theirs[0]["value"][1]) == len(openai_calls)


def test_spend_is_the_spans_cost_to_the_cent(run: Run) -> None:
    """The headline number: what Prometheus says was spent is what the spans say, per model and in total."""
    spend = run.prometheus.query("sum(costspan_cost_USD_total)", run.settled)
    assert round(float(spend[0]["value"][1]), 2) == round(sum(c.cost for c in run.calls), 2)
    assert sum(c.cost for c in run.calls) > 0.5  # dollars, not fractions of a cent


def test_budget_metrics_are_what_the_budgets_did(run: Run) -> None:
    """costspan's budget series as Prometheus has them: each budget's spent is the settled cost of the calls it
    counted (what their spans say), per user and per team for the scoped ones; its limit is the configured one;
    blocked counts the calls refused or cut, as the application saw them; no store failed."""
    spend = budget_spend(run.calls)
    query = run.prometheus.query
    spent = keyed(query("costspan_budget_spent_USD", run.settled), BUDGET_LABELS, lambda s: float(s["value"][1]))
    assert spent.keys() == spend.keys()
    for key, value in spend.items():
        assert spent[key] == pytest.approx(value, rel=1e-9), key
    limits = keyed(query("costspan_budget_limit_USD", run.settled), BUDGET_LABELS, lambda s: float(s["value"][1]))
    assert limits == {key: COSTSPAN_BUDGETS[key[0]][0] for key in spend}
    names = ("costspan_budget_name",)
    blocked = keyed(query("costspan_budget_blocked_total", run.settled), names, lambda s: float(s["value"][1]))
    assert blocked == {(name,): n for name, n in run.refused.items()}
    assert sum(run.refused.values()) == sum(1 for c in run.calls if c.error in REFUSALS) == 2
    errors = keyed(query("costspan_budget_store_errors_total", run.settled), names, lambda s: float(s["value"][1]))
    assert errors == {(name,): 0 for name in COSTSPAN_BUDGETS}


def test_increase_would_have_lost_spend(run: Run) -> None:
    """Why the shipped queries do not use increase(): over the same data it misses every series' first calls."""
    naive = run.prometheus.query("sum(increase(costspan_cost_USD_total[1h]))", run.settled)
    spend = sum(c.cost for c in run.calls)
    assert not naive or float(naive[0]["value"][1]) < spend * 0.99
