"""compose.yaml starts the whole stack from the files in collector-config/, with pinned images, on loopback ports.
(The workflow runs `docker compose config` on it; no Docker engine runs here.)"""

from __future__ import annotations

import re
from typing import Any

import pytest

from collector.shipped import CONFIG, load_yaml

SERVICES = {"otel-collector", "jaeger", "prometheus", "alertmanager", "grafana"}
PINNED = re.compile(r"^[\w./-]+:v?\d+\.\d+\.\d+$")


def compose(*overrides: str) -> dict[str, Any]:
    config: dict[str, Any] = load_yaml(CONFIG / "compose.yaml")
    for name in overrides:
        for service, settings in load_yaml(CONFIG / name)["services"].items():
            config["services"][service] = {**config["services"][service], **settings}
    return config


def test_the_stack_is_there_with_pinned_images() -> None:
    services = compose()["services"]
    assert set(services) >= SERVICES
    for name, service in services.items():
        assert PINNED.match(service["image"]), f"{name}: {service['image']} is not a pinned version"


def test_bind_mounts_are_shipped_files() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (CONFIG / source).exists(), f"{name} mounts {source}, which collector-config/ lacks"


def test_ports_are_loopback_only() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"


@pytest.mark.parametrize(
    ("overrides", "backends"), [((), ["jaeger"]), (("compose.honeycomb.yaml",), ["jaeger", "honeycomb"])]
)
def test_the_collector_runs_the_shipped_configuration(overrides: tuple[str, ...], backends: list[str]) -> None:
    collector = compose(*overrides)["services"]["otel-collector"]
    mounted = dict(v.split(":")[:2] for v in collector["volumes"])
    files = [arg.removeprefix("--config=") for arg in collector["command"]]
    assert files == ["/etc/otelcol/otelcol.yaml", *(f"/etc/otelcol/otelcol.{b}.yaml" for b in backends)]
    shipped = {target: source for source, target in mounted.items()}
    for file in files:
        assert file in shipped and (CONFIG / shipped[file]).is_file(), file


def test_secrets_come_from_the_environment() -> None:
    honeycomb = compose("compose.honeycomb.yaml")["services"]["otel-collector"]["environment"]
    assert honeycomb["HONEYCOMB_API_KEY"].startswith("${HONEYCOMB_API_KEY:?")
    config = compose()
    assert config["secrets"]["grafana_admin_password"] == {"environment": "GRAFANA_ADMIN_PASSWORD"}
    grafana = config["services"]["grafana"]["environment"]
    assert not any("PASSWORD" in key and not key.endswith("__FILE") for key in grafana)


def test_prometheus_stores_exemplars_and_loads_the_rules() -> None:
    prometheus = compose()["services"]["prometheus"]
    assert "--enable-feature=exemplar-storage" in prometheus["command"]
    mounted = dict(v.split(":")[:2] for v in prometheus["volumes"])
    assert mounted["./prometheus/rules"] == "/etc/prometheus/rules"
    assert load_yaml(CONFIG / "prometheus" / "prometheus.yml")["rule_files"] == ["rules/*.yml"]
