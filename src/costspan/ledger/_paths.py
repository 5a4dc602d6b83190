"""Where the ledger lives: ``COSTSPAN_LEDGER``, the ``ledger=`` option, or a per-user default.

The default is ``ledger.db`` in the user data directory platformdirs gives for ``costspan``: on Linux
``$XDG_DATA_HOME/costspan/ledger.db`` (``~/.local/share/costspan/ledger.db``), on macOS
``~/Library/Application Support/costspan/ledger.db``, on Windows ``%LOCALAPPDATA%\\costspan\\ledger.db``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "ENV",
    "LedgerOption",
    "check_not_a_word",
    "create_owner_only",
    "default_ledger_path",
    "ledger_path",
    "parse_env",
]

ENV = "COSTSPAN_LEDGER"

LedgerOption = str | os.PathLike[str] | bool | None
"""``ledger=``: a path, ``True`` for the default path, ``False`` for no ledger, ``None`` for the default behaviour
(the ledger only when costspan sets up the OpenTelemetry providers itself)."""

_OFF = frozenset({"off", "false", "0", "no", "none"})
_ON = frozenset({"on", "true", "1", "yes", "default"})


def default_ledger_path() -> Path:
    """The per-user default ledger path (which need not exist yet)."""
    from platformdirs import user_data_path

    return user_data_path("costspan", appauthor=False) / "ledger.db"


def parse_env(value: str | None) -> LedgerOption:
    """``COSTSPAN_LEDGER``: unset -> None, ``off`` (``false``, ``0``, ``no``, ``none``) -> False, ``on`` -> True,
    else a path. Raises ValueError for a bare word that is neither (``of``, ``disable``): a misspelt switch, which
    would otherwise create a file of that name."""
    if value is None or not value.strip():
        return None
    word = value.strip().lower()
    if word in _OFF:
        return False
    if word in _ON:
        return True
    check_not_a_word(value, f"{', '.join(sorted(_OFF))} (no ledger), {', '.join(sorted(_ON))} (the default path)")
    return Path(value).expanduser()


def check_not_a_word(value: str, switches: str) -> None:
    """Raise ValueError when ``value`` is a bare word (no directory, no extension) rather than a file path."""
    path = Path(value.strip())
    if len(path.parts) == 1 and not path.suffix:
        raise ValueError(
            f"got {value!r}, which is neither a switch nor a file path: expected {switches}, or the ledger file's "
            f"path, such as ./{path.name}.db"
        )


def ledger_path(option: LedgerOption, environ: Mapping[str, str] = os.environ) -> Path | None:
    """The path an option (or, when it is None, ``COSTSPAN_LEDGER``) names; None when the ledger is off."""
    if option is None:
        option = parse_env(environ.get(ENV))
    if option is False:
        return None
    if option is None or option is True:
        return default_ledger_path()
    return Path(option).expanduser()


def create_owner_only(path: Path, *, make_parent: bool) -> None:
    """Create the ledger file (0600) if missing, and its directory (0700) if asked to; existing ones are kept.

    SQLite gives the -wal and -shm files the database file's permissions, so the whole ledger stays owner-only.
    """
    if make_parent and not path.parent.is_dir():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(descriptor)
