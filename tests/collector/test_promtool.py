"""promtool accepts the shipped Prometheus configuration and rules, the rules' unit tests pass, and amtool accepts the
Alertmanager configuration."""

from __future__ import annotations

import subprocess

from collector.shipped import PROMETHEUS, RULES
from servers import binary


def promtool(*args: str) -> str:
    done = subprocess.run(
        [binary("promtool"), *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def test_check_config() -> None:
    out = promtool("check", "config", "prometheus.yml")
    assert "SUCCESS: prometheus.yml is valid" in out


def test_check_rules() -> None:
    files = sorted(p.name for p in RULES.glob("*.yml"))
    assert files == ["budgets.yml", "costspan.yml"]
    out = promtool("check", "rules", *(f"rules/{name}" for name in files))
    assert out.count("SUCCESS") == len(files)


def test_rule_unit_tests() -> None:
    out = promtool("test", "rules", "tests/costspan.test.yml")
    assert "SUCCESS" in out


def test_alertmanager_config() -> None:
    done = subprocess.run(
        [binary("amtool"), "check-config", "alertmanager/alertmanager.yml"],
        cwd=PROMETHEUS.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 inhibit rules" in done.stdout
