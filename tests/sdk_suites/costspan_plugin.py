"""pytest plugin that scripts/sdk-suites loads into an SDK's own test run (``-p costspan_plugin``).

``--costspan=on`` instruments with costspan (``CostspanInstrumentor().instrument(...)`` with in-memory SDK
providers) before the SDK's tests are collected, and at the end counts the spans and metric points costspan
produced, per ``gen_ai.provider.name``, and the warnings it logged (its own failures). The counts are written to
``--costspan-report`` (JSON); under pytest-xdist each worker sends its counts to the controller, which adds them.
``--costspan=off`` is the run without costspan: costspan is not even imported.

Either way the plugin deselects the tests that need what cannot be had here (see scripts/sdk-suites), by the SDK
``--costspan-sdk`` names: openai's and anthropic's API-resource tests that need the SDK's mock server (port 4010),
those that mock the transport with respx staying; google-genai's tests of its replay client.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

_STATE = pytest.StashKey["_Telemetry"]()
_WORKERS = pytest.StashKey[list[dict[str, Any]]]()
_TOTALS = pytest.StashKey[dict[str, Any]]()
_SKIP = pytest.StashKey[frozenset[str]]()
_ONLY = pytest.StashKey[frozenset[str] | None]()
_RESPX_FIXTURES = frozenset({"respx_mock", "respx2_mock"})
_COUNTS = "costspan_counts"


class _Warnings(logging.Handler):
    """Collects the distinct messages costspan logs at WARNING and above (the first line of each)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.messages[record.getMessage().splitlines()[0]] += 1


class _Telemetry:
    """In-memory SDK providers that costspan reports to, and what it logged."""

    def __init__(self) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.warnings = _Warnings()

    def counts(self) -> dict[str, Any]:
        spans: Counter[str] = Counter()
        for span in self.exporter.get_finished_spans():
            if span.instrumentation_scope is not None and span.instrumentation_scope.name.startswith("costspan"):
                spans[str((span.attributes or {}).get("gen_ai.provider.name", "?"))] += 1
        points: Counter[str] = Counter()
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                if scope.scope.name.startswith("costspan"):
                    for metric in scope.metrics:
                        points[metric.name] += len(metric.data.data_points)
        return {
            "spans": dict(spans),
            "metric_points": dict(points),
            "warnings": dict(self.warnings.messages),
            "patched": _patched(),
        }


def _patched() -> dict[str, int]:
    """costspan's patches still in place at the end of the run (1 each): a suite that makes no call costspan
    traces still runs every call of the patched methods through them."""
    import importlib

    import wrapt

    from costspan.instrumentor import CostspanInstrumentor

    found = {}
    for module, name in CostspanInstrumentor()._patched:
        owner: Any = importlib.import_module(module)
        for part in name.split("."):
            owner = getattr(owner, part, None)
        if isinstance(owner, wrapt.BaseObjectProxy):
            found[f"{module}.{name}"] = 1
    return found


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("costspan", "costspan instrumentation of an SDK's own test suite")
    group.addoption("--costspan", choices=("on", "off"), default="off", help="instrument with costspan (on)")
    group.addoption("--costspan-report", metavar="PATH", help="write costspan's span and metric counts to PATH")
    group.addoption("--costspan-sdk", default="", help="the SDK whose tests run (its tests that cannot run here)")
    group.addoption("--costspan-skip", metavar="PATH", help="deselect the tests (or files) whose node ids PATH lists")
    group.addoption("--costspan-only", metavar="PATH", help="run only the tests (or files) whose node ids PATH lists")


def pytest_configure(config: pytest.Config) -> None:
    skip_file = config.getoption("--costspan-skip")
    config.stash[_SKIP] = frozenset(Path(skip_file).read_text().splitlines() if skip_file else ())
    only_file = config.getoption("--costspan-only")
    config.stash[_ONLY] = frozenset(Path(only_file).read_text().splitlines()) if only_file else None
    if config.getoption("--costspan") != "on":
        return
    import costspan

    telemetry = _Telemetry()
    logging.getLogger("costspan").addHandler(telemetry.warnings)
    costspan.CostspanInstrumentor().instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    config.stash[_STATE] = telemetry
    config.stash[_WORKERS] = []


def _needs_mock_server(item: pytest.Item) -> bool:
    """openai's and anthropic's API-resource tests that send their requests to the mock server, not to respx."""
    in_api_resources = "api_resources" in Path(str(item.path)).parts
    return in_api_resources and not _RESPX_FIXTURES.intersection(getattr(item, "fixturenames", ()))


def _replays(item: pytest.Item) -> bool:
    """google-genai's tests of its replay client (its conftest's ``client`` fixture, which takes the replay's
    ``replays_prefix``): they replay recordings that neither its wheel nor its sdist ships, and without them would
    record, calling the real API."""
    return "replays_prefix" in getattr(item, "fixturenames", ())


_CANNOT_RUN = {"openai": _needs_mock_server, "anthropic": _needs_mock_server, "google-genai": _replays}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A test file ``--costspan-skip`` lists (one that could not be collected) is not collected again; with
    ``--costspan-only``, a test module none of whose tests it lists is not collected at all."""
    if not collection_path.is_relative_to(config.rootpath):
        return None
    path = collection_path.relative_to(config.rootpath).as_posix()
    if path in config.stash[_SKIP]:
        return True
    only = config.stash[_ONLY]
    if only is None or not (collection_path.name.startswith("test_") and collection_path.suffix == ".py"):
        return None
    return True if not any(test == path or test.startswith(path + "::") for test in only) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tests that cannot run here, those ``--costspan-skip`` lists, and with ``--costspan-only``
    those it does not list."""
    cannot_run = _CANNOT_RUN.get(config.getoption("--costspan-sdk"), lambda item: False)
    skip, only = config.stash[_SKIP], config.stash[_ONLY]
    keep: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        left_out = cannot_run(item) or item.nodeid in skip or (only is not None and item.nodeid not in only)
        (deselected if left_out else keep).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = keep


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """Under pytest-xdist: a worker's counts, as it sent them from its pytest_sessionfinish."""
    counts = getattr(node, "workeroutput", {}).get(_COUNTS)
    if counts is not None:
        node.config.stash[_WORKERS].append(json.loads(counts))


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    telemetry = config.stash.get(_STATE, None)
    if telemetry is None:
        return
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[_COUNTS] = json.dumps(telemetry.counts())
        return
    totals = _add([telemetry.counts(), *config.stash[_WORKERS]])
    config.stash[_TOTALS] = totals
    report = config.getoption("--costspan-report")
    if report:
        Path(report).write_text(json.dumps(totals, indent=2, sort_keys=True))
    if not totals["spans"] and not totals["patched"]:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    totals = config.stash.get(_TOTALS, None)
    if totals is None:
        return
    spans = ", ".join(f"{name} {count}" for name, count in sorted(totals["spans"].items()))
    if spans:
        terminalreporter.write_line(f"costspan: spans by provider: {spans}")
    else:
        terminalreporter.write_line("costspan: instrumented, but no span was produced: the patches never ran")


def _add(all_counts: list[dict[str, Any]]) -> dict[str, Any]:
    totals: dict[str, Counter[str]] = {k: Counter() for k in ("spans", "metric_points", "warnings", "patched")}
    for counts in all_counts:
        for key, total in totals.items():
            total.update(counts.get(key, {}))
    return {key: dict(total) for key, total in totals.items()}
