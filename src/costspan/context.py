"""Attribution: who a call is for, carried in a context variable so it follows sync and async code alike."""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Mapping
from contextlib import ContextDecorator
from types import MappingProxyType, TracebackType
from typing import Any, TypeVar

from .attributes import USER_ID

__all__ = ["attribute_name", "attribution", "current_attribution"]

_F = TypeVar("_F", bound=Callable[..., Any])
AttributeValue = str | int | float | bool

_EMPTY: Mapping[str, AttributeValue] = MappingProxyType({})
_attribution: contextvars.ContextVar[Mapping[str, AttributeValue]] = contextvars.ContextVar(
    "costspan_attribution", default=_EMPTY
)


def attribute_name(keyword: str) -> str:
    """The span attribute an attribution keyword sets: ``user_id`` sets ``user.id``; any other, itself. Budget
    scopes and metric attributes accept either spelling."""
    return USER_ID if keyword == "user_id" else keyword


def current_attribution() -> Mapping[str, AttributeValue]:
    """The attribution attributes in force here, keyed by span attribute name."""
    return _attribution.get()


class attribution(ContextDecorator):
    """Attribute every provider call made inside to a user, team, feature, ...

    ``user_id`` becomes the ``user.id`` attribute; other keywords are set as given. Nested blocks add to (and
    override) the outer ones. Works as a context manager and as a decorator, on sync and async functions.
    """

    def __init__(self, **attributes: AttributeValue) -> None:
        self._attributes = {attribute_name(key): value for key, value in attributes.items()}
        self._token: contextvars.Token[Mapping[str, AttributeValue]] | None = None

    def _recreate_cm(self) -> attribution:
        # A decorated function may run concurrently (threads, tasks): each run needs its own reset token.
        fresh = attribution()
        fresh._attributes = self._attributes
        return fresh

    def __enter__(self) -> attribution:
        self._token = _attribution.set(MappingProxyType({**_attribution.get(), **self._attributes}))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _attribution.reset(self._token)
            self._token = None

    def __call__(self, func: _F) -> _F:
        if not inspect.iscoroutinefunction(func):
            return super().__call__(func)

        @functools.wraps(func)
        async def inner(*args: Any, **kwargs: Any) -> Any:
            with self._recreate_cm():
                return await func(*args, **kwargs)

        return inner  # type: ignore[return-value]
