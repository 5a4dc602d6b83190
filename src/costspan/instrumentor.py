"""The OpenTelemetry instrumentor: wires each installed provider's endpoints to the shared machinery."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Collection
from dataclasses import replace
from types import ModuleType
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.semconv.schemas import Schemas
from wrapt import register_post_import_hook, wrap_function_wrapper

from ._content import capture_enabled
from ._guard import Guard
from ._peers import PeerCheck, checking_first_call
from ._pipeline import Pipeline
from ._request import activate, deactivate
from ._setup import configure_default_providers
from ._streams import make_helper_close
from ._tokens import load_tokenizer_in_background
from ._version import __version__
from ._wrap import make_wrapper
from .config import Options
from .ledger import LedgerProcessor
from .ledger._setup import add_ledger
from .pricing import Pricing
from .providers import anthropic as anthropic_provider
from .providers import bedrock as bedrock_provider
from .providers import google_genai as google_genai_provider
from .providers import openai as openai_provider
from .telemetry import Telemetry

__all__ = ["CostspanInstrumentor"]

_PROVIDERS = (openai_provider, anthropic_provider, google_genai_provider, bedrock_provider)
# BaseInstrumentor.instrument's own keywords, which it takes before _instrument sees the others.
_BASE_KEYWORDS = ("skip_dep_check", "raise_exception_on_conflict")
_logger = logging.getLogger("costspan")


class CostspanInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments every installed provider SDK (openai, anthropic, google-genai, boto3's bedrock-runtime), each
    as the application imports it (at once for those it has imported already).

    ``CostspanInstrumentor().instrument(tracer_provider=..., meter_provider=..., **options)``; the options are
    those of :class:`costspan.config.Options`.
    """

    _patched: list[tuple[str, str]]
    _pending: dict[str, tuple[Any, Pipeline, PeerCheck]]
    _guard: Guard | None = None
    _ledger: LedgerProcessor | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        """The SDK versions costspan instruments, any of them: each installed SDK is instrumented within its
        range and left untouched, with one warning, outside it (pyproject's extras give the same ranges)."""
        return tuple(provider.REQUIREMENT for provider in _PROVIDERS)

    def _check_dependency_conflicts(self) -> None:
        # BaseInstrumentor requires every listed dependency and otherwise instruments nothing; costspan needs
        # none in particular and checks each SDK on its own in _instrument. (The opentelemetry-instrument
        # launcher reads an "instruments" extra instead, which costspan leaves undeclared for the same reason.)
        return None

    def instrument(self, **kwargs: Any) -> None:
        """Instrument (once: BaseInstrumentor's singleton). Once instrumented, by the launcher or an earlier call,
        options are still checked, and those that cannot apply any more are named in a warning."""
        if self.is_instrumented_by_opentelemetry:
            keywords = {name: value for name, value in kwargs.items() if name not in _BASE_KEYWORDS}
            Options.load(keywords, environ={})
            if ignored := [name for name, value in keywords.items() if value is not None]:
                _logger.warning(
                    "costspan: already instrumented (by opentelemetry-instrument or an earlier instrument() call): "
                    "%s not applied; call costspan.uninstrument() first, or set options as COSTSPAN_* variables",
                    ", ".join(ignored),
                )
        super().instrument(**kwargs)

    def _instrument(self, **kwargs: Any) -> None:
        options = Options.load(kwargs)
        options = replace(options, capture_content=capture_enabled(options.capture_content))
        tracer_provider, meter_provider = kwargs.get("tracer_provider"), kwargs.get("meter_provider")
        # The launcher without a distro (and instrument() in an application that configured nothing) leaves the
        # global providers unset: costspan sets them up, with the ledger as the embedded default.
        embedded = configure_default_providers() if tracer_provider is None or meter_provider is None else False
        tracer = trace.get_tracer(__name__, __version__, tracer_provider, schema_url=Schemas.V1_37_0.value)
        meter = metrics.get_meter(__name__, __version__, meter_provider, schema_url=Schemas.V1_37_0.value)
        pricing = Pricing(options.prices, options.model_aliases)
        self._ledger = add_ledger(
            options.ledger,
            tracer_provider or trace.get_tracer_provider(),
            embedded=embedded and tracer_provider is None,
            from_code="ledger" in kwargs,
            pricing=pricing,
        )
        activate(tracer_provider or trace.get_tracer_provider())
        telemetry = Telemetry(
            tracer,
            meter,
            metric_attributes=options.metric_attributes,
            baggage_keys=options.baggage_keys if options.attribution_from_baggage else None,
        )
        guard = None
        if options.budgets:
            guard = Guard(
                options.budgets,
                pricing,
                meter,
                metric_attributes=options.metric_attributes,
                default_max_output_tokens=options.default_max_output_tokens,
            )
        pipeline = Pipeline(options, pricing, telemetry, guard)
        self._guard = guard
        self._patched = []
        # Another instrumentation of the same methods, loaded before costspan or after it (then it wraps over
        # costspan's wrappers, seen at the first call), is named in a warning.
        peers = PeerCheck(self._patched)
        # Each SDK is patched when the application imports it (at once if it has): instrument() imports none it
        # never uses, each of which costs seconds of start-up. What patching one needs waits here until then.
        self._pending = {
            provider.PACKAGE: (provider, pipeline, peers) for provider in _PROVIDERS if _supported(provider.REQUIREMENT)
        }
        for package in list(self._pending):
            register_post_import_hook(self._imported, package)
        peers()
        load_tokenizer_in_background(options.tokenizer_download)

    def _imported(self, package: ModuleType) -> None:
        """The post-import hook of an SDK's package. wrapt keeps every hook registered until its package is
        imported, so a hook holds nothing but the instrumentor: after uninstrument() (or once another hook of a
        later instrument() patched the SDK) it finds nothing pending and does nothing."""
        pending = self._pending.pop(package.__name__, None)
        if pending is None:
            return
        provider, pipeline, peers = pending
        try:
            self._patch_provider(provider, pipeline, peers)
        except Exception as failure:  # the hook runs inside the application's import: it must never fail it
            pipeline.log_failure(f"patching {package.__name__}", failure)
        peers.done = False  # a wrapper of another instrumentation is looked for again at the next call

    def _patch_provider(self, provider: Any, pipeline: Pipeline, peers: PeerCheck) -> None:
        for endpoint in provider.endpoints():
            wrapper = checking_first_call(make_wrapper(endpoint, pipeline), peers)
            self._patch(endpoint.module, endpoint.name, wrapper, pipeline)
        for module, name, attribute, is_async in provider.helper_closes():
            self._patch(module, name, make_helper_close(attribute, is_async), pipeline)
        # Optional: patches that are not one traced call each (lazy stream helpers, the SDK's own spans).
        wrappers = getattr(provider, "wrappers", None)
        for module, name, wrapper in wrappers(pipeline) if wrappers is not None else ():
            self._patch(module, name, wrapper, pipeline)

    def _patch(self, module: str, name: str, wrapper: Any, pipeline: Pipeline) -> None:
        # An SDK version without this method loses its instrumentation, never the application.
        try:
            wrap_function_wrapper(module, name, wrapper)
        except (ImportError, AttributeError) as failure:
            pipeline.log_failure(f"patching {module}.{name}", failure)
            return
        self._patched.append((module, name))

    def _uninstrument(self, **kwargs: Any) -> None:
        self._pending = {}  # the SDKs not imported yet stay unpatched
        deactivate()
        if self._guard is not None:
            self._guard.closed = True
        if self._ledger is not None:
            self._ledger.shutdown()
            self._ledger = None
        for module_name, name in reversed(self._patched):
            owner_name, _, attribute = name.rpartition(".")
            owner: Any = importlib.import_module(module_name)
            for part in owner_name.split(".") if owner_name else ():  # "" for a module-level function
                owner = getattr(owner, part)
            unwrap(owner, attribute)
        self._patched = []


def _supported(requirement: str) -> bool:
    """Whether the SDK is installed in a version costspan supports; one installed outside them is left
    unpatched, with a warning naming both."""
    conflict = get_dependency_conflicts([requirement])
    if conflict is None:
        return True
    found = conflict.found  # "openai 1.99.0": installed in another version; None when not installed at all
    if found:
        _logger.warning(
            "costspan: %s is installed, but costspan supports %s only: %s is left uninstrumented",
            found,
            requirement,
            found.split()[0],
        )
    return False
