"""Instrumentation options, from keyword arguments or ``COSTSPAN_*`` environment variables (so that the
``opentelemetry-instrument`` launcher can be configured without code). Keyword arguments win."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .ledger._paths import ENV as LEDGER_ENV
from .ledger._paths import LedgerOption, parse_env

__all__ = ["Options"]

_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class Options:
    """What ``costspan.instrument(...)`` accepts.

    metric_attributes: attribution keys (span attribute names, e.g. ``user.id``) also put on metrics; the
        cardinality is the user's choice. Env: ``COSTSPAN_METRIC_ATTRIBUTES=user.id,team``.
    prices: a prices file (JSON or TOML) or mapping of custom prices, aliases and discounts (see
        ``costspan.pricing``). Env: ``COSTSPAN_PRICES=/path/prices.toml``.
    model_aliases: model or deployment name -> priced model, e.g. an Azure deployment ``{"prod-gpt": "gpt-4.1"}``.
        Env: ``COSTSPAN_MODEL_ALIASES=prod-gpt=gpt-4.1,other=gpt-4.1-mini``.
    stream_usage: ask OpenAI chat and completion streams for their usage chunk when the caller did not, and
        hide that chunk from the caller. Env: ``COSTSPAN_STREAM_USAGE=false`` turns it off.
    ledger: the SQLite usage ledger's path, ``True`` for the default path, ``False`` for none; None (the default)
        writes it at the default path only when costspan sets up the OpenTelemetry providers itself (see
        ``costspan.ledger``). Env: ``COSTSPAN_LEDGER=/path/ledger.db``, ``COSTSPAN_LEDGER=off``.
    """

    metric_attributes: tuple[str, ...] = ()
    prices: Mapping[str, Any] | str | os.PathLike[str] | None = None
    model_aliases: Mapping[str, str] = field(default_factory=dict)
    stream_usage: bool = True
    ledger: LedgerOption = None

    @classmethod
    def load(cls, kwargs: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> Options:
        return cls(
            metric_attributes=tuple(
                kwargs.get("metric_attributes") or _split(environ.get("COSTSPAN_METRIC_ATTRIBUTES", ""))
            ),
            prices=kwargs.get("prices") or _path(environ.get("COSTSPAN_PRICES")),
            model_aliases=dict(kwargs.get("model_aliases") or _pairs(environ.get("COSTSPAN_MODEL_ALIASES", ""))),
            stream_usage=bool(kwargs.get("stream_usage", _flag(environ.get("COSTSPAN_STREAM_USAGE"), True))),
            ledger=kwargs["ledger"] if "ledger" in kwargs else parse_env(environ.get(LEDGER_ENV)),
        )


def _split(value: str) -> Sequence[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _pairs(value: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in _split(value) if "=" in item)
    return {name.strip(): model.strip() for name, model in pairs}


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _flag(value: str | None, default: bool) -> bool:
    return default if value is None else value.strip().lower() not in _FALSE
