"""The OpenTelemetry instrumentor: wires each installed provider's endpoints to the shared machinery."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Collection
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.semconv.schemas import Schemas
from wrapt import wrap_function_wrapper

from ._streams import make_helper_close
from ._tokens import load_tokenizer_in_background
from ._version import __version__
from ._wrap import make_wrapper
from .config import Options
from .pricing import Pricing
from .providers import anthropic as anthropic_provider
from .providers import openai as openai_provider
from .telemetry import Telemetry

__all__ = ["CostspanInstrumentor"]

_PROVIDERS = (openai_provider, anthropic_provider)

_log = logging.getLogger("costspan")


class CostspanInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments every installed provider SDK (openai, anthropic).

    ``CostspanInstrumentor().instrument(tracer_provider=..., meter_provider=..., **options)``; the options are
    those of :class:`costspan.config.Options`.
    """

    _patched: list[tuple[str, str]]

    def instrumentation_dependencies(self) -> Collection[str]:
        """The SDK versions costspan instruments, any of them: each installed SDK is instrumented within its
        range and left untouched, with one warning, outside it (pyproject's extras give the same ranges)."""
        return tuple(provider.REQUIREMENT for provider in _PROVIDERS)

    def _check_dependency_conflicts(self) -> None:
        # BaseInstrumentor requires every listed dependency and otherwise instruments nothing; costspan needs
        # none in particular and checks each SDK on its own in _instrument. (The opentelemetry-instrument
        # launcher reads an "instruments" extra instead, which costspan leaves undeclared for the same reason.)
        return None

    def _instrument(self, **kwargs: Any) -> None:
        options = Options.load(kwargs)
        tracer = trace.get_tracer(
            __name__, __version__, kwargs.get("tracer_provider"), schema_url=Schemas.V1_37_0.value
        )
        meter = metrics.get_meter(__name__, __version__, kwargs.get("meter_provider"), schema_url=Schemas.V1_37_0.value)
        pricing = Pricing(options.prices, options.model_aliases)
        telemetry = Telemetry(
            tracer,
            meter,
            pricing,
            metric_attributes=options.metric_attributes,
            request_stream_usage=options.stream_usage,
        )
        self._patched = []
        for provider in _PROVIDERS:
            if _supported(provider.REQUIREMENT):
                self._patch_provider(provider, telemetry)
        load_tokenizer_in_background()

    def _patch_provider(self, provider: Any, telemetry: Telemetry) -> None:
        for endpoint in provider.endpoints():
            self._patch(endpoint.module, endpoint.name, make_wrapper(endpoint, telemetry), telemetry)
        for module, name, attribute, is_async in provider.helper_closes():
            self._patch(module, name, make_helper_close(attribute, is_async), telemetry)
        # Optional: patches that are not one traced call each (lazy stream helpers, the SDK's own spans).
        wrappers = getattr(provider, "wrappers", None)
        for module, name, wrapper in wrappers(telemetry) if wrappers is not None else ():
            self._patch(module, name, wrapper, telemetry)

    def _patch(self, module: str, name: str, wrapper: Any, telemetry: Telemetry) -> None:
        # An SDK version without this method loses its instrumentation, never the application.
        try:
            wrap_function_wrapper(module, name, wrapper)
        except (ImportError, AttributeError) as failure:
            telemetry.log_failure(f"patching {module}.{name}", failure)
            return
        self._patched.append((module, name))

    def _uninstrument(self, **kwargs: Any) -> None:
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
        _log.warning(
            "costspan: %s is installed, but costspan supports %s only: %s is left uninstrumented",
            found,
            requirement,
            found.split()[0],
        )
    return False
