"""Other instrumentations wrapping the SDK methods costspan patched (opentelemetry-instrumentation-openai-v2,
OpenLLMetry's openai and anthropic instrumentations): each call would then make two spans and two sets of the
GenAI semantic-convention metrics. Each is named in one warning, with how to turn one of them off.

They are found by what they did, not by what is installed: a wrapt wrapper, on a method costspan patched, whose
code comes from a module of an ``opentelemetry_instrumentor`` entry point other than costspan's. The check runs at
``instrument()`` and again at the first call (an instrumentor loaded after costspan wraps over it), and again at
the first call after an SDK imported later has been patched. The anthropic SDK's own tracing needs no warning:
costspan's span replaces the SDK's for every call it instruments.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import entry_points
from typing import Any

__all__ = ["PeerCheck", "checking_first_call"]

_logger = logging.getLogger("costspan")
_lock = threading.Lock()
_warned: set[str] = set()
_MAX_DEPTH = 16  # wrappers around one method; a loop in __wrapped__ must not hang the check


class PeerCheck:
    """``check()`` warns once about each other instrumentation found wrapping the ``patched`` methods."""

    def __init__(self, patched: Sequence[tuple[str, str]]) -> None:
        self._patched = patched
        self.done = False
        """Whether a call has run the check (set by :func:`checking_first_call`)."""
        # Read now (instrument() time): the first call's check must do no disk I/O on the request thread.
        self._instrumentors = {
            entry.module: (entry.name, entry.dist.name if entry.dist else entry.module)
            for entry in entry_points(group="opentelemetry_instrumentor")
            if entry.name != "costspan"
        }

    def __call__(self) -> None:
        try:
            found: dict[tuple[str, str], list[str]] = {}
            for module, name in self._patched:
                for peer in self._peers_of(module, name):
                    found.setdefault(peer, []).append(name)
            for (entry_point, distribution), methods in found.items():
                _warn(entry_point, distribution, methods)
        except Exception as failure:  # the check is advice: it never breaks instrument() or a call
            _logger.debug("costspan: looking for other instrumentations failed: %r", failure)

    def _peers_of(self, module_name: str, name: str) -> Iterator[tuple[str, str]]:
        owner_name, _, attribute = name.rpartition(".")
        owner: Any = importlib.import_module(module_name)
        for part in owner_name.split(".") if owner_name else ():
            owner = getattr(owner, part)
        function = vars(owner).get(attribute)
        for _ in range(_MAX_DEPTH):
            wrapper = getattr(function, "_self_wrapper", None)
            if wrapper is None:
                return
            peer = self._instrumentor_of(getattr(wrapper, "__module__", None) or type(wrapper).__module__)
            if peer is not None:
                yield peer
            function = getattr(function, "__wrapped__", None)

    def _instrumentor_of(self, module: str) -> tuple[str, str] | None:
        for package, peer in self._instrumentors.items():
            if module == package or module.startswith(f"{package}."):
                return peer
        return None


def _warn(entry_point: str, distribution: str, methods: list[str]) -> None:
    with _lock:
        if distribution in _warned:
            return
        _warned.add(distribution)
    more = f" and {len(methods) - 1} more" if len(methods) > 1 else ""
    _logger.warning(
        "costspan: %s also instruments %s%s, so each call is traced and measured twice (two spans, and two sets "
        "of the gen_ai.* metrics in backends that sum every scope). Turn one off: "
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=%s (or =costspan) under opentelemetry-instrument, or leave out its "
        "instrument() call. costspan's dashboard and alert rules count only costspan's series, and its ledger one "
        "row per call.",
        distribution,
        methods[0],
        more,
        entry_point,
    )


Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def checking_first_call(wrapper: Wrapper, check: PeerCheck) -> Wrapper:
    """``wrapper``, running ``check`` before the first call it sees (afterwards a flag test per call)."""

    def checked(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not check.done:
            check.done = True
            check()
        return wrapper(wrapped, instance, args, kwargs)

    return checked
