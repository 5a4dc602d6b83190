"""The committed dashboard JSON is what its generator writes, and the Grafana provisioning points at it."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType

from collector.shipped import DASHBOARD, GRAFANA, dashboard_expressions, load_yaml


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


def test_every_query_uses_the_provisioned_prometheus() -> None:
    datasources = load_yaml(GRAFANA / "provisioning" / "datasources" / "datasources.yml")["datasources"]
    by_uid = {d["uid"]: d for d in datasources}
    dashboard = json.loads(DASHBOARD.read_text())
    targets = [t for p in dashboard["panels"] for t in p.get("targets", [])]
    assert targets
    assert {(t["datasource"]["type"], t["datasource"]["uid"]) for t in targets} == {("prometheus", "prometheus")}
    assert by_uid["prometheus"]["type"] == "prometheus"


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
