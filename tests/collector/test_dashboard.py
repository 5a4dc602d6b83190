"""The committed dashboard JSON is what its generator writes, and the Grafana provisioning points at it."""

from __future__ import annotations

import importlib.util
import json
import re
from types import ModuleType
from typing import Any

from collector.shipped import DASHBOARD, GRAFANA, RULES, dashboard_expressions, load_yaml, rule_expressions


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("costspan_dashboard", GRAFANA / "dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_json_is_what_the_generator_writes() -> None:
    assert DASHBOARD.read_text() == generator().render(), (
        "collector-config/grafana/dashboards/costspan.json is stale: run python collector-config/grafana/dashboard.py"
    )


def _panels_and_targets(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    return panels + [t for p in panels for t in p.get("targets", [])]


def test_every_panel_and_query_reads_the_datasource_variable() -> None:
    """No datasource uid is written into a panel: each reads ${datasource}, a Prometheus datasource variable."""
    dashboard = json.loads(DASHBOARD.read_text())
    (variable,) = dashboard["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == ("datasource", "datasource", "prometheus")
    uses = {json.dumps(item["datasource"], sort_keys=True) for item in _panels_and_targets(dashboard)}
    assert uses == {json.dumps({"type": "prometheus", "uid": "${datasource}"}, sort_keys=True)}


def test_the_dashboard_imports_into_an_empty_grafana() -> None:
    """Grafana's import replaces each ${input} with the datasource picked for it; then the variable holds that
    datasource's uid, and every panel resolves to it: nothing refers to a datasource the Grafana lacks."""
    text = DASHBOARD.read_text()
    dashboard = json.loads(text)
    (needed,) = dashboard["__inputs"]
    assert (needed["type"], needed["pluginId"]) == ("datasource", "prometheus")
    imported = json.loads(text.replace(f"${{{needed['name']}}}", "picked-uid"))
    variables = {v["name"]: v["current"]["value"] for v in imported["templating"]["list"]}
    assert variables == {"datasource": "picked-uid"}
    for item in _panels_and_targets(imported):
        uid = re.sub(r"\$\{(\w+)\}", lambda m: variables[m.group(1)], item["datasource"]["uid"])
        assert uid == "picked-uid"
    assert "${DS_" not in json.dumps(imported)


def test_the_provisioned_prometheus_is_one_the_variable_offers() -> None:
    datasources = load_yaml(GRAFANA / "provisioning" / "datasources" / "datasources.yml")["datasources"]
    (default,) = [d for d in datasources if d.get("isDefault")]
    assert default["type"] == "prometheus"  # the variable's choice when provisioned (its import value is unset)


def test_gen_ai_queries_select_costspans_own_series() -> None:
    """The gen_ai.* metrics are semconv names other instrumentations record too: every query of one names
    costspan's instrumentation scope, which is the scope costspan's meter has."""
    from costspan import instrumentor

    scope = f'otel_scope_name="{instrumentor.__name__}"'
    expressions = dashboard_expressions() + rule_expressions(RULES / "costspan.yml")
    for expression in expressions:
        for selector in re.findall(r"gen_ai_client_\w+(?:\{[^}]*\})?", expression.expr):
            assert scope in selector, (expression.key, selector)


def test_exemplars_open_traces_in_jaeger() -> None:
    datasources = load_yaml(GRAFANA / "provisioning" / "datasources" / "datasources.yml")["datasources"]
    by_uid = {d["uid"]: d for d in datasources}
    (destination,) = by_uid["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    # The collector's prometheus exporter (OpenMetrics) labels each exemplar with its trace id as trace_id.
    assert destination == {"name": "trace_id", "datasourceUid": "jaeger"}
    assert by_uid["jaeger"]["type"] == "jaeger"
    range_targets = [e for e in dashboard_expressions() if e.range_query]
    assert range_targets
    dashboard = json.loads(DASHBOARD.read_text())
    spend = next(p for p in dashboard["panels"] if p["title"] == "Spend per model and provider")
    assert all(t["exemplar"] for t in spend["targets"])


def test_provisioning_loads_the_dashboard_directory() -> None:
    compose = load_yaml(GRAFANA.parent / "compose.yaml")
    provider = load_yaml(GRAFANA / "provisioning" / "dashboards" / "dashboards.yml")["providers"][0]
    mounts = dict(volume.split(":")[:2] for volume in compose["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
