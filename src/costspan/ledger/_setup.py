"""Adding the ledger to a TracerProvider as ``instrument()`` was asked to, and saying where it is."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from ._paths import ENV, LedgerOption, default_ledger_path, is_url, ledger_path, redacted
from ._processor import LedgerProcessor

__all__ = ["add_ledger"]

_log = logging.getLogger("costspan")


def add_ledger(
    option: LedgerOption,
    provider: object,
    *,
    embedded: bool,
    from_code: bool,
    **processor_options: Any,
) -> LedgerProcessor | None:
    """Add a :class:`LedgerProcessor` to ``provider`` when the option asks for one, or when ``embedded`` (costspan
    set up the providers itself) and nothing turned it off. Raises for a bad ``ledger=`` given in code."""
    if from_code:
        _check(option)
    if option is False or (option is None and not embedded):
        return None
    if not isinstance(provider, TracerProvider):
        _log.warning(
            "costspan: the ledger needs the OpenTelemetry SDK's TracerProvider, and %r is not one: "
            "no ledger is written",
            provider,
        )
        return None
    default = option is None or option is True
    path = default_ledger_path() if default else ledger_path(option)
    assert path is not None
    try:
        processor = LedgerProcessor(path, create_directory=default, **processor_options)
    except ImportError as missing:  # a postgresql:// ledger without psycopg installed
        if from_code:
            raise
        _log.error("costspan: %s=%s: %s; no ledger is written", ENV, redacted(str(path)), missing)
        return None
    provider.add_span_processor(processor)
    where = processor.engine.where
    if option is None:
        # costspan chose to write a file nobody asked for: say so where it is seen (stderr, with no logging set up).
        _log.warning(
            "costspan: recording LLM calls in the ledger at %s (`costspan report` reads it; %s=off turns it off)",
            where,
            ENV,
        )
    else:
        _log.info("costspan: recording LLM calls in the ledger at %s", where)
    return processor


def _check(option: object) -> None:
    if option is None or isinstance(option, bool):
        return
    if not isinstance(option, (str, os.PathLike)):
        raise TypeError(
            f"ledger={option!r}: expected a path, a postgresql:// URL, True (the default path) or False (no ledger)"
        )
    if is_url(option):
        return
    path = Path(option).expanduser()
    if not path.parent.is_dir():
        raise ValueError(f"ledger={str(option)!r}: directory {str(path.parent)!r} does not exist")
