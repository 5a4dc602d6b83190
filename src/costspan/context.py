"""Attribution: who a call is for, carried in a context variable so it follows sync and async code alike, and,
when asked, across services in W3C baggage.

Baggage comes from outside: any client can send a ``baggage`` header, and OpenTelemetry's server
instrumentations put what it says into the context. So reading attribution from it is off by default
(``attribution_from_baggage``), reads only the keys listed in ``baggage_keys`` (user.id, session.id, team and
feature unless configured otherwise), takes a value only when nothing local set the key, and only a value of
1 to 128 printable characters. Every other entry is ignored and counted (``costspan.baggage.ignored``, by
``costspan.baggage.reason``: ``unlisted`` or ``invalid``). Turn it on where the edge of the system (a gateway,
the web app) sets or strips baggage from clients it does not trust: a client that can set ``user.id`` can spend
in another user's name and budget.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager, ContextDecorator
from contextvars import Token
from types import MappingProxyType, TracebackType
from typing import Any, Final, TypeVar, cast

from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.metrics import Meter

from .attributes import USER_ID

__all__ = [
    "BAGGAGE_IGNORED_METRIC",
    "DEFAULT_BAGGAGE_KEYS",
    "MAX_BAGGAGE_VALUE",
    "BaggageAttribution",
    "attribute_name",
    "attribution",
    "current_attribution",
    "decorate",
]

DEFAULT_BAGGAGE_KEYS: Final = ("user.id", "session.id", "team", "feature")
MAX_BAGGAGE_VALUE: Final = 128
BAGGAGE_IGNORED_METRIC: Final = "costspan.baggage.ignored"
_REASON = "costspan.baggage.reason"
_UNLISTED = {_REASON: "unlisted"}
_INVALID = {_REASON: "invalid"}
# Attribution keywords that name another attribute (a keyword cannot hold a dot).
_KEYWORDS = {"user_id": USER_ID, "session_id": "session.id"}
_log = logging.getLogger("costspan")

_F = TypeVar("_F", bound=Callable[..., Any])
AttributeValue = str | int | float | bool

_EMPTY: Mapping[str, AttributeValue] = MappingProxyType({})
_attribution: contextvars.ContextVar[Mapping[str, AttributeValue]] = contextvars.ContextVar(
    "costspan_attribution", default=_EMPTY
)


def current_attribution() -> Mapping[str, AttributeValue]:
    """The attribution attributes in force here, keyed by span attribute name."""
    return _attribution.get()


class attribution(ContextDecorator):
    """Attribute every provider call made inside to a user, team, feature, ...

    ``user_id`` becomes the ``user.id`` attribute and ``session_id`` ``session.id``; other keywords are set as
    given. Nested blocks add to (and override) the outer ones. Works as a context manager and as a decorator, on
    sync and async functions. ``propagate=True`` also puts them in W3C baggage for the block, so that the
    requests the code makes carry them to other services (with an instrumented HTTP client), where costspan
    reads them when instrumented with ``attribution_from_baggage=True``.
    """

    def __init__(self, *, propagate: bool = False, **attributes: AttributeValue) -> None:
        self._attributes = {attribute_name(key): value for key, value in attributes.items()}
        self._propagate = propagate
        self._token: contextvars.Token[Mapping[str, AttributeValue]] | None = None
        self._baggage_token: Token[Context] | None = None

    def _recreate_cm(self) -> attribution:
        # A decorated function may run concurrently (threads, tasks): each run needs its own reset token.
        fresh = attribution(propagate=self._propagate)
        fresh._attributes = self._attributes
        return fresh

    def __enter__(self) -> attribution:
        self._token = _attribution.set(MappingProxyType({**_attribution.get(), **self._attributes}))
        if self._propagate:
            context = otel_context.get_current()
            for key, value in self._attributes.items():
                context = baggage.set_baggage(key, str(value), context)
            self._baggage_token = otel_context.attach(context)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._baggage_token is not None:
            otel_context.detach(self._baggage_token)
            self._baggage_token = None
        if self._token is not None:
            _attribution.reset(self._token)
            self._token = None

    def __call__(self, func: _F) -> _F:
        return decorate(self, func)


def decorate(manager: ContextDecorator, func: _F) -> _F:
    """``func`` run inside a fresh copy of ``manager`` (``_recreate_cm``) each time it is called: a sync function
    as ContextDecorator does it, a coroutine function around its whole awaited body."""
    if not inspect.iscoroutinefunction(func):
        return ContextDecorator.__call__(manager, func)
    recreate = cast(Callable[[], AbstractContextManager[Any]], manager._recreate_cm)

    @functools.wraps(func)
    async def inner(*args: Any, **kwargs: Any) -> Any:
        with recreate():
            return await func(*args, **kwargs)

    return inner  # type: ignore[return-value]


def attribute_name(key: str) -> str:
    """The span attribute an attribution keyword names: ``user_id`` is ``user.id``."""
    return _KEYWORDS.get(key, key)


class BaggageAttribution:
    """Reads the allowed attribution keys from the W3C baggage in the current context (see the module's doc)."""

    def __init__(self, keys: Collection[str], meter: Meter) -> None:
        self.keys = frozenset(keys)
        self._ignored = meter.create_counter(
            BAGGAGE_IGNORED_METRIC,
            unit="{entry}",
            description="Baggage entries not read as attribution: an unlisted key, or an invalid value.",
        )
        self._warned = False

    def read(self, attributes: dict[str, Any]) -> None:
        """Add to ``attributes`` the allowed keys it lacks, from the baggage in the current context."""
        entries = baggage.get_all()
        if not entries:
            return
        unlisted = invalid = 0
        for key, value in entries.items():
            if key not in self.keys:
                unlisted += 1
            elif key not in attributes:
                if isinstance(value, str) and 0 < len(value) <= MAX_BAGGAGE_VALUE and value.isprintable():
                    attributes[key] = value
                else:
                    invalid += 1
        if unlisted:
            self._ignored.add(unlisted, _UNLISTED)
        if invalid:
            self._ignored.add(invalid, _INVALID)
            if not self._warned:
                self._warned = True
                _log.warning(
                    "costspan: a baggage value of an attribution key was not 1 to %d printable characters, and is "
                    "ignored (counted in %s)",
                    MAX_BAGGAGE_VALUE,
                    BAGGAGE_IGNORED_METRIC,
                )
