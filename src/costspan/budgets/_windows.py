"""Calendar windows in an IANA time zone: the hour, day, ISO week (from Monday) or month containing an instant,
as epoch seconds. Wall-clock boundaries follow the zone's daylight-saving rules, so a day is 23 or 25 hours long
on the days the clocks change, and the repeated hour of a fall-back is two windows."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta, tzinfo
from typing import NamedTuple

__all__ = ["WINDOWS", "Window", "window_at"]

WINDOWS = ("hour", "day", "week", "month")


class Window(NamedTuple):
    start: float  # epoch seconds, -inf without a window
    end: float  # epoch seconds, inf without a window
    id: int | None  # the start as an integer, None without a window


LIFETIME = Window(-math.inf, math.inf, None)


def window_at(kind: str | None, zone: tzinfo, instant: float) -> Window:
    if kind is None:
        return LIFETIME
    local = datetime.fromtimestamp(instant, zone)
    if kind == "hour":
        # Offsets change by whole hours (bar one island), so an hour is 3600 s even across a change.
        start = local.replace(minute=0, second=0, microsecond=0).timestamp()
        return Window(start, start + 3600, int(start))
    first, following = _days(kind, local.date())
    start = _midnight(first, zone).timestamp()
    end = _midnight(following, zone).timestamp()
    if end <= instant:  # a zone that falls back across midnight repeats the evening: the later midnight ends it
        end = _midnight(following, zone).replace(fold=1).timestamp()
    return Window(start, end, int(start))


def _days(kind: str, day: date) -> tuple[date, date]:
    if kind == "day":
        return day, day + timedelta(days=1)
    if kind == "week":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=7)
    first = day.replace(day=1)
    return first, (first + timedelta(days=32)).replace(day=1)


def _midnight(day: date, zone: tzinfo) -> datetime:
    # A midnight skipped by a spring-forward resolves (fold=0) to the instant the clocks jump: the day's start.
    return datetime.combine(day, time(0), zone)
