"""Server binaries the tests start themselves (redis-server, prometheus, promtool, amtool).

A test that needs one asks :func:`binary`: on a developer's machine without it the test skips; under
``CI=true`` a missing binary fails the test, so CI never passes by skipping what it was meant to run.
"""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["binary", "in_ci"]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def binary(name: str) -> str:
    """The path of ``name`` on PATH; skips the test without it, or fails it under CI=true."""
    path = shutil.which(name)
    if path is not None:
        return path
    packages = "redis-server, prometheus or prometheus-alertmanager"
    message = f"{name} is not installed (scripts/test installs it with apt: Debian package {packages})"
    if in_ci():
        pytest.fail(f"CI=true and {message}")
    pytest.skip(message)
