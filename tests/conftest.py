"""Shared fixtures: OpenTelemetry SDK providers with in-memory exporters, the instrumentation, the local
provider server and sync/async drivers for the real SDK clients."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from packaging.requirements import Requirement

import costspan
from costspan.testing import ProviderServer


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sdk(requirement): the test pins down behaviour only these releases of an SDK have, as "
        "sdk('anthropic>=2.3'); elsewhere in pyproject's range it is skipped, saying so",
    )
    config.addinivalue_line(
        "markers",
        "heavy: a minutes-long soak or many-process run of costspan's own logic; scripts/lowest-versions leaves "
        "it out (the lower bounds are checked by every other test), the newest-versions pass runs it",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("sdk"):
        requirement = Requirement(marker.args[0])
        installed = version(requirement.name)
        if not requirement.specifier.contains(installed, prereleases=True):
            pytest.skip(f"pins down {requirement}'s behaviour; {requirement.name} {installed} is installed")


class LifecycleCounter(SpanProcessor):
    """Counts on_start and on_end per span, to prove each span ends exactly once."""

    def __init__(self) -> None:
        self.started: Counter[int] = Counter()
        self.ended: Counter[int] = Counter()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.started[span.context.span_id] += 1

    def on_end(self, span: ReadableSpan) -> None:
        assert span.context is not None
        self.ended[span.context.span_id] += 1

    def assert_each_ended_once(self) -> None:
        assert self.started, "no span started"
        assert set(self.started) == set(self.ended), "a span never ended"
        assert all(count == 1 for count in self.ended.values()), f"a span ended twice: {self.ended}"


@dataclass
class Otel:
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    lifecycle: LifecycleCounter
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def spans(self) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.instrumentation_scope.name.startswith("costspan")]

    def span(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name -> its data points (cumulative since the test began)."""
        data = self.reader.get_metrics_data()
        out: dict[str, list[Any]] = {}
        if data is None:
            return out
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    out.setdefault(metric.name, []).extend(metric.data.data_points)
        return out


@pytest.fixture(scope="session", autouse=True)
def _user_data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The per-user default ledger (and anything else under the user's data and state directories, such as the
    demo's ledger) goes to a temporary directory, here and in the subprocesses tests start; a developer's
    COSTSPAN_LEDGER does not apply."""
    saved = {name: os.environ.get(name) for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "COSTSPAN_LEDGER")}
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("user-data"))
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("user-state"))
    os.environ.pop("COSTSPAN_LEDGER", None)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def otel() -> Iterator[Otel]:
    exporter = InMemorySpanExporter()
    lifecycle = LifecycleCounter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(lifecycle)
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Otel(exporter, reader, lifecycle, tracer_provider, meter_provider)
    meter_provider.shutdown()
    tracer_provider.shutdown()


class Instrument:
    """Instruments with the test's providers: ``instrument(**options)``. ``with instrument.paused():`` runs its
    block on the bare SDK, for the tests that compare what a user sees with costspan to what the same SDK
    release gives without it (an exception's class, the chunks), rather than to one release's behaviour."""

    def __init__(self, otel: Otel) -> None:
        self._otel = otel
        self._options: dict[str, Any] | None = None

    def __call__(self, **options: Any) -> None:
        self._options = options
        costspan.CostspanInstrumentor().instrument(
            tracer_provider=self._otel.tracer_provider, meter_provider=self._otel.meter_provider, **options
        )

    @contextmanager
    def paused(self) -> Iterator[None]:
        assert self._options is not None, "instrument() first"
        costspan.CostspanInstrumentor().uninstrument()
        try:
            yield
        finally:
            self(**self._options)


@pytest.fixture
def instrument(otel: Otel) -> Iterator[Instrument]:
    """Instrument with the test's providers; ``instrument(**options)`` to pass options."""
    yield Instrument(otel)
    costspan.CostspanInstrumentor().uninstrument()


@pytest.fixture
def instrumented(instrument: Instrument) -> None:
    instrument()


@pytest.fixture
def bare_then_instrumented(instrument: Instrument) -> Callable[[Callable[[], Any]], tuple[Any, Any]]:
    """``bare_then_instrumented(run)``: the same scripted exchange on the bare SDK, then with costspan."""

    def twice(run: Callable[[], Any]) -> tuple[Any, Any]:
        with instrument.paused():
            bare = run()
        return bare, run()

    return twice


@pytest.fixture(scope="session")
def _server() -> Iterator[ProviderServer]:
    with ProviderServer() as server:
        yield server


@pytest.fixture
def server(_server: ProviderServer) -> ProviderServer:
    _server.reset()
    return _server
