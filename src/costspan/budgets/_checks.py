"""The rules a Budget's configuration must follow: each check returns the value to use or raises an error that
names the option and the bad value."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..context import attribute_name
from ._store import MAX_NANOS, NANOS_PER_USD
from ._windows import WINDOWS

__all__ = [
    "check_callable",
    "check_choice",
    "check_count",
    "check_limit",
    "check_name",
    "check_positive",
    "check_scope",
    "check_thresholds",
    "check_timezone",
    "check_window",
]


def check_limit(limit: object) -> float:
    if isinstance(limit, (int, float)) and not isinstance(limit, bool) and math.isfinite(limit) and limit > 0:
        if limit * NANOS_PER_USD > MAX_NANOS:
            raise ValueError(
                f"Budget limit_usd={limit!r} is over the $9,007,199 a budget counts exactly (2**53 nanodollars)"
            )
        return float(limit)
    raise ValueError(f"Budget limit_usd must be a positive, finite number of USD, not {limit!r}")


def check_window(window: object) -> str | None:
    return None if window is None else check_choice("window", window, (*WINDOWS, None))


def check_choice(option: str, value: object, choices: Sequence[str | None]) -> str:
    if isinstance(value, str) and value in choices:
        return value
    listed = ", ".join(repr(choice) for choice in choices)
    raise ValueError(f"Budget {option} must be one of {listed}, not {value!r}")


def check_timezone(timezone: object) -> ZoneInfo:
    if not isinstance(timezone, str):
        raise TypeError(f"Budget timezone must be an IANA time zone name such as 'UTC', not {timezone!r}")
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(
            f"Budget timezone {timezone!r} is not a known IANA time zone (such as 'UTC' or 'America/New_York')"
        ) from error


def check_scope(scope: object) -> str | None:
    if scope is None:
        return None
    if isinstance(scope, str) and scope:
        return attribute_name(scope)  # the attribution keyword user_id sets user.id
    raise TypeError(
        f"Budget scope must be None or the name of an attribution attribute such as 'user.id', not {scope!r}"
    )


def check_thresholds(thresholds: object) -> tuple[float, ...]:
    if isinstance(thresholds, (str, bytes)) or not isinstance(thresholds, Sequence):
        raise TypeError(f"Budget thresholds must be a sequence of fractions in (0, 1], not {thresholds!r}")
    for threshold in thresholds:
        if not (isinstance(threshold, (int, float)) and not isinstance(threshold, bool) and 0 < threshold <= 1):
            raise ValueError(f"Budget thresholds must each be a fraction of the limit in (0, 1], not {threshold!r}")
    return tuple(sorted({float(threshold) for threshold in thresholds}))


def check_callable(option: str, value: Any, optional: bool = False) -> Any:
    if callable(value) or (optional and value is None):
        return value
    raise TypeError(f"Budget {option} must be callable{' or None' if optional else ''}, not {value!r}")


def check_positive(option: str, value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return float(value)
    raise ValueError(f"Budget {option} must be a positive, finite number of seconds, not {value!r}")


def check_count(option: str, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise ValueError(f"Budget {option} must be a positive integer, not {value!r}")


def check_name(name: object) -> str:
    if isinstance(name, str) and name:
        return name
    raise ValueError(f"Budget name must be a non-empty string, not {name!r}")
