"""The files under collector-config/ and the PromQL they ship, read the way Prometheus and Grafana read them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "CONFIG",
    "DASHBOARD",
    "GRAFANA",
    "PROMETHEUS",
    "REPO",
    "RULES",
    "Expression",
    "dashboard_expressions",
    "load_yaml",
    "rule_expressions",
]

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "collector-config"
PROMETHEUS = CONFIG / "prometheus"
RULES = PROMETHEUS / "rules"
GRAFANA = CONFIG / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "costspan.json"


@dataclass(frozen=True)
class Expression:
    key: str
    """What names it: ``record:<name>``, ``alert:<name>[@threshold]`` or ``panel:<title>/<refId>``."""
    expr: str
    range_query: bool = False
    """A Grafana range query (a time series panel), as opposed to an instant one or a rule."""


def load_yaml(path: Path) -> Any:
    with path.open() as f:
        return yaml.safe_load(f)


def rule_expressions(path: Path) -> list[Expression]:
    """Every rule's expression in a Prometheus rule file, named by its record or its alert (and threshold)."""
    found = []
    for group in load_yaml(path)["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                key = f"record:{rule['record']}"
            else:
                threshold = rule.get("labels", {}).get("threshold")
                key = f"alert:{rule['alert']}" + (f"@{threshold}" if threshold else "")
            found.append(Expression(key, rule["expr"]))
    keys = [e.key for e in found]
    duplicates = {k for k in keys if keys.count(k) > 1}
    assert not duplicates, f"{path.name}: rules that cannot be told apart: {duplicates}"
    return found


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_expressions(dashboard: dict[str, Any] | None = None) -> list[Expression]:
    """Every Prometheus query of every panel of the dashboard (rows' collapsed panels included)."""
    if dashboard is None:
        dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            range_query = bool(target.get("range")) or not target.get("instant")
            found.append(Expression(f"panel:{panel['title']}/{target['refId']}", target["expr"], range_query))
    return found
