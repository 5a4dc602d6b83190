"""The collector configuration, checked for what can be checked without an otelcol-contrib binary (CI's
.github/workflows/collector.yml runs `otelcol-contrib validate` on the same file combinations).

The collector merges its --config files: maps merge key by key, a later file's lists replace an earlier one's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from collector.ottl import Span, compile_condition, expand_env
from collector.shipped import CONFIG, load_yaml
from costspan.testing import ProviderServer, Reply
from support import API_KEY

if TYPE_CHECKING:
    from conftest import Otel

# Component types of the otelcol-contrib distribution, version 0.159.0 (opentelemetry-collector-releases,
# distributions/otelcol-contrib/manifest.yaml; each type as its component's metadata.yaml names it). Only the
# components this configuration may use are listed; otlp and otlphttp are the deprecated names of the
# exporters otlp_grpc and otlp_http since 0.144.0.
OTELCOL_CONTRIB_VERSION = "0.159.0"
OTELCOL_CONTRIB_COMPONENTS = {
    "receivers": {"otlp", "prometheus", "hostmetrics", "filelog", "jaeger", "zipkin"},
    "processors": {"batch", "memory_limiter", "tail_sampling", "transform", "filter", "resource", "attributes"},
    "exporters": {"otlp_grpc", "otlp", "otlp_http", "otlphttp", "debug", "nop", "prometheus", "prometheusremotewrite"},
    "extensions": {"health_check", "file_storage", "zpages", "pprof", "memory_limiter"},
    "connectors": {"forward", "spanmetrics", "routing", "count"},
}
BASE = CONFIG / "otelcol.yaml"
BACKENDS = {"jaeger": CONFIG / "otelcol.jaeger.yaml", "honeycomb": CONFIG / "otelcol.honeycomb.yaml"}
COMBINATIONS = [("jaeger",), ("honeycomb",), ("jaeger", "honeycomb")]
ENV_REFERENCE = re.compile(r"^\$\{env:[A-Z][A-Z0-9_]*\}$")
SECRET_KEYS = re.compile(r"key|token|secret|password|authorization|x-honeycomb-team", re.IGNORECASE)


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def merged(*backends: str) -> dict[str, Any]:
    config = load_yaml(BASE)
    for backend in backends:
        config = merge(config, load_yaml(BACKENDS[backend]))
    return config


def component_type(name: str) -> str:
    return name.split("/", 1)[0]


def leaves(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from leaves(value, f"{path}[{i}]")
    else:
        yield path, node


@pytest.mark.parametrize("backends", COMBINATIONS, ids="+".join)
def test_every_pipeline_component_is_defined_and_used(backends: tuple[str, ...]) -> None:
    config = merged(*backends)
    service = config["service"]
    for extension in service["extensions"]:
        assert extension in config["extensions"], extension
    connectors = set(config.get("connectors", {}))
    used_as = {"receivers": set(), "exporters": set()}
    for name, pipeline in service["pipelines"].items():
        assert component_type(name) in {"traces", "metrics", "logs"}, name
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                defined = config.get(kind, {}) if component not in connectors else config["connectors"]
                assert component in defined, f"pipeline {name} uses {kind[:-1]} {component}, defined nowhere"
                if kind != "processors":
                    used_as[kind].add(component)
        assert pipeline["receivers"] and pipeline["exporters"], name
        processors = pipeline.get("processors", [])
        assert not processors or processors[0] == "memory_limiter", f"{name}: memory_limiter must come first"
    for connector in connectors:
        assert connector in used_as["exporters"] and connector in used_as["receivers"], connector
    for kind in ("receivers", "processors", "exporters"):
        unused = set(config.get(kind, {})) - {c for p in service["pipelines"].values() for c in p.get(kind, [])}
        assert not unused, f"{kind} defined but in no pipeline: {unused}"


def test_a_trace_backend_is_required() -> None:
    """Alone, the base file sends sampled traces to a connector nothing reads: the collector refuses that."""
    config = merged()
    readers = [p for p in config["service"]["pipelines"].values() if "forward/sampled_traces" in p["receivers"]]
    assert readers == []


@pytest.mark.parametrize("backends", COMBINATIONS, ids="+".join)
def test_every_component_type_is_in_otelcol_contrib(backends: tuple[str, ...]) -> None:
    config = merged(*backends)
    for kind, known in OTELCOL_CONTRIB_COMPONENTS.items():
        for name in config.get(kind, {}):
            assert component_type(name) in known, f"{kind} {name} is no otelcol-contrib {OTELCOL_CONTRIB_VERSION} type"


def test_no_deprecated_component_names() -> None:
    config = merged(*BACKENDS)
    assert not {component_type(n) for n in config["exporters"]} & {"otlp", "otlphttp"}


def test_every_secret_is_an_environment_reference() -> None:
    for path in [BASE, *BACKENDS.values()]:
        for key, value in leaves(load_yaml(path)):
            if SECRET_KEYS.search(key.rsplit(".", 1)[-1]):
                assert isinstance(value, str) and ENV_REFERENCE.match(value), f"{path.name} {key}: {value!r}"
    exporters = merged("honeycomb")["exporters"]
    assert exporters["otlp_http/honeycomb"]["headers"] == {"x-honeycomb-team": "${env:HONEYCOMB_API_KEY}"}
    assert exporters["otlp_http/honeycomb_metrics"]["headers"]["x-honeycomb-team"] == "${env:HONEYCOMB_API_KEY}"


def test_remote_exporters_use_tls() -> None:
    exporters = merged(*BACKENDS)["exporters"]
    for name in ("otlp_http/honeycomb", "otlp_http/honeycomb_metrics"):
        assert expand_env(exporters[name]["endpoint"], {}).startswith("https://")
        assert exporters[name]["tls"]["insecure"] is False
    # Jaeger: TLS unless JAEGER_OTLP_INSECURE=true, which compose.yaml sets for its in-network Jaeger only.
    assert exporters["otlp_grpc/jaeger"]["tls"]["insecure"] == "${env:JAEGER_OTLP_INSECURE:-false}"
    compose = load_yaml(CONFIG / "compose.yaml")
    assert compose["services"]["otel-collector"]["environment"]["JAEGER_OTLP_ENDPOINT"] == "jaeger:4317"


def test_push_exporters_queue_on_disk_and_retry() -> None:
    config = merged(*BACKENDS)
    for name, exporter in config["exporters"].items():
        if component_type(name) == "prometheus":
            # Pulled by Prometheus: it has no retry_on_failure, and cumulative counters lose nothing to a missed scrape.
            assert "retry_on_failure" not in exporter
            continue
        assert exporter["retry_on_failure"]["enabled"] is True, name
        queue = exporter["sending_queue"]
        assert queue["enabled"] is True and queue["storage"] in config["extensions"], name
        assert component_type(queue["storage"]) == "file_storage"
        assert queue["storage"] in config["service"]["extensions"]


def test_metrics_keep_the_default_prometheus_names() -> None:
    exporter = merged()["exporters"]["prometheus"]
    assert exporter["translation_strategy"] == "UnderscoreEscapingWithSuffixes"
    assert exporter["enable_open_metrics"] is True  # exemplars are only exposed in OpenMetrics


# --- Tail sampling ------------------------------------------------------------------------------------------------


def policies() -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in merged()["processors"]["tail_sampling"]["policies"]}


def keep_condition(environ: dict[str, str]) -> Any:
    (condition,) = policies()["expensive-llm-calls"]["ottl_condition"]["span"]
    return compile_condition(expand_env(condition, environ))


def test_errors_are_always_kept() -> None:
    errors = policies()["errors"]
    assert errors["type"] == "status_code" and errors["status_code"]["status_codes"] == ["ERROR"]
    assert policies()["expensive-llm-calls"]["type"] == "ottl_condition"


def as_span(span: ReadableSpan) -> Span:
    codes = {StatusCode.UNSET: 0, StatusCode.OK: 1, StatusCode.ERROR: 2}
    return Span(dict(span.attributes or {}), span.name, span.kind.value + 1, codes[span.status.status_code])


@pytest.fixture
def spans(otel: Otel, instrumented: None, server: ProviderServer) -> dict[str, Span]:
    """costspan's own spans of an expensive call, a cheap one, an unpriced model and a failure."""
    client = openai.OpenAI(base_url=server.openai_base_url, api_key=API_KEY, max_retries=0)
    messages = [{"role": "user", "content": "Summarise this contract."}]
    usage = {"prompt_tokens": 200_000, "completion_tokens": 4_000, "total_tokens": 204_000}
    server.push(Reply(usage=usage), Reply(), Reply(), Reply(status=429))
    client.chat.completions.create(model="gpt-4.1", messages=messages)
    client.chat.completions.create(model="gpt-4.1-mini", messages=messages)
    client.chat.completions.create(model="my-own-finetune", messages=messages)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4.1", messages=messages)
    client.close()
    names = ["expensive", "cheap", "unpriced", "failed"]
    return dict(zip(names, (as_span(s) for s in otel.spans()), strict=True))


def test_the_condition_keeps_expensive_calls_only(spans: dict[str, Span]) -> None:
    keep = keep_condition({})
    assert spans["expensive"].attributes["gen_ai.usage.cost.amount"] > 0.05
    assert spans["cheap"].attributes["gen_ai.usage.cost.amount"] < 0.05
    assert "gen_ai.usage.cost.amount" not in spans["unpriced"].attributes
    assert {name: keep(span) for name, span in spans.items()} == {
        "expensive": True,
        "cheap": False,
        "unpriced": False,  # no amount is nil, and nil > 0.05 is false: never an error
        "failed": False,  # kept by the errors policy instead
    }
    assert spans["failed"].status_code == 2


@pytest.mark.parametrize(
    ("threshold", "cost", "kept"),
    [("0.05", 0.05, False), ("0.05", 0.0500001, True), ("1", 1.5, True), ("1", 0.5, False), ("0", 0.0, False)],
)
def test_the_threshold_comes_from_the_environment(threshold: str, cost: float, kept: bool) -> None:
    """A whole-number threshold is an int literal in OTTL; OTTL compares it with the double cost numerically."""
    keep = keep_condition({"OTELCOL_KEEP_COST_USD": threshold})
    assert keep(Span({"gen_ai.usage.cost.amount": cost})) is kept


def test_a_string_cost_is_never_kept() -> None:
    """Another instrumentation that wrote the cost as a string: OTTL never orders a string against a number."""
    assert keep_condition({})(Span({"gen_ai.usage.cost.amount": "9.99"})) is False


def test_the_evaluator_reads_only_what_it_knows() -> None:
    with pytest.raises(SyntaxError):
        compile_condition('IsMatch(attributes["gen_ai.request.model"], "gpt-.*")')
    with pytest.raises(SyntaxError):
        compile_condition('resource.attributes["service.name"] == "api"')
    assert compile_condition('status.code == STATUS_CODE_ERROR or not (attributes["x"] == nil)')(
        Span({"x": 1}, status_code=0)
    )


def _collector_variables() -> dict[str, str | None]:
    """Every variable the collector files read (comments aside), with its default (None: none)."""
    found: dict[str, str | None] = {}
    for path in [BASE, *BACKENDS.values()]:
        text = json.dumps(load_yaml(path))
        for name, default in re.findall(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}", text):
            found[name] = default or found.get(name)
    return found


def test_the_collectors_variables_are_not_costspans(caplog: pytest.LogCaptureFixture) -> None:
    """An application sharing the collector's environment (one compose file, one .env) reads its own variables
    only: none of the collector's is a COSTSPAN_* one that costspan would call unknown, and each is documented."""
    from costspan.config import Options

    variables = _collector_variables()
    assert {"OTELCOL_STORAGE_DIR", "OTELCOL_KEEP_COST_USD", "OTELCOL_TRACE_SAMPLE_PERCENT"} <= variables.keys()
    Options.load({}, environ=dict.fromkeys(variables, "1"))
    assert not [r for r in caplog.records if r.name == "costspan"], caplog.text
    backends_doc = (CONFIG.parent / "docs" / "backends.md").read_text()
    assert [name for name in variables if f"`{name}`" not in backends_doc] == []


def test_the_queue_directory_defaults_to_one_a_user_can_write(tmp_path: Any) -> None:
    """Run by hand, the collector creates its queue directory relative to where it starts, not under /var/lib;
    the compose stack points it at its volume."""
    directory = load_yaml(BASE)["extensions"]["file_storage/queues"]["directory"]
    assert not expand_env(directory, {}).startswith("/")
    compose = load_yaml(CONFIG / "compose.yaml")["services"]["otel-collector"]
    volume = next(v.split(":")[1] for v in compose["volumes"] if v.startswith("otelcol-queues:"))
    assert expand_env(directory, compose["environment"]) == volume
