"""Where the ledger lives: ``COSTSPAN_LEDGER``, the ``ledger=`` option, or a per-user default; and the file's
safety (owner-only, never through a symbolic link).

The default is ``ledger.db`` in the user data directory platformdirs gives for ``costspan``: on Linux
``$XDG_DATA_HOME/costspan/ledger.db`` (``~/.local/share/costspan/ledger.db``), on macOS
``~/Library/Application Support/costspan/ledger.db``, on Windows ``%LOCALAPPDATA%\\costspan\\ledger.db``.
A ``postgresql://`` (or ``postgres://``) URL instead of a path names a PostgreSQL ledger.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "ENV",
    "LedgerOption",
    "Target",
    "check_not_a_word",
    "create_owner_only",
    "default_ledger_path",
    "is_url",
    "ledger_path",
    "parse_env",
    "redacted",
]

ENV = "COSTSPAN_LEDGER"

LedgerOption = str | os.PathLike[str] | bool | None
"""``ledger=``: a path or a ``postgresql://`` URL, ``True`` for the default path, ``False`` for no ledger, ``None``
for the default behaviour (the ledger only when costspan sets up the OpenTelemetry providers itself)."""

Target = Path | str
"""A ledger: an SQLite file's path, or a PostgreSQL URL (a str)."""

_OFF = frozenset({"off", "false", "0", "no", "none"})
_ON = frozenset({"on", "true", "1", "yes", "default"})
_SCHEMES = ("postgresql://", "postgres://")
_OWNER_ONLY = 0o600
_SYMLINK = "it is a symbolic link, which costspan does not follow: name the file itself"

_log = logging.getLogger("costspan")


def is_url(value: object) -> bool:
    """Whether ``value`` is a PostgreSQL URL rather than a path."""
    return isinstance(value, str) and value.strip().lower().startswith(_SCHEMES)


def redacted(url: str) -> str:
    """A PostgreSQL URL fit for a log line or an error: user, host, port and database, never the password or the
    query (which may hold one)."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = (f"{parts.username}@" if parts.username else "") + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def default_ledger_path() -> Path:
    """The per-user default ledger path (which need not exist yet)."""
    from platformdirs import user_data_path

    return user_data_path("costspan", appauthor=False) / "ledger.db"


def parse_env(value: str | None) -> LedgerOption:
    """``COSTSPAN_LEDGER``: unset -> None, ``off`` (``false``, ``0``, ``no``, ``none``) -> False, ``on`` -> True, a
    ``postgresql://`` URL as it is, else a path. Raises ValueError for a bare word that is neither (``of``,
    ``disable``): a misspelt switch, which would otherwise create a file of that name."""
    if value is None or not value.strip():
        return None
    word = value.strip().lower()
    if word in _OFF:
        return False
    if word in _ON:
        return True
    if is_url(value):
        return value.strip()
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


def ledger_path(option: LedgerOption, environ: Mapping[str, str] = os.environ) -> Target | None:
    """The ledger an option (or, when it is None, ``COSTSPAN_LEDGER``) names: a path or a PostgreSQL URL; None when
    the ledger is off."""
    if option is None:
        option = parse_env(environ.get(ENV))
    if option is False:
        return None
    if option is None or option is True:
        return default_ledger_path()
    if is_url(option):
        return str(option).strip()
    return Path(option).expanduser()


def create_owner_only(path: Path, *, make_parent: bool) -> None:
    """Create the ledger file (0600) if missing, and its directory (0700) if asked to; existing ones are kept.

    A symbolic link at the path is refused (OSError ELOOP): the ledger is written where it is named, never where a
    link someone else may have placed points. An existing file (or -wal / -shm file) readable by others is made
    owner-only, with a warning. SQLite gives the -wal and -shm files it creates the database file's permissions, so
    the whole ledger stays owner-only.
    """
    if make_parent and not path.parent.is_dir():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(path, flags, _OWNER_ONLY)
    except OSError as failure:
        if failure.errno == errno.ELOOP or path.is_symlink():
            raise OSError(errno.ELOOP, _SYMLINK, str(path)) from None
        raise
    try:
        _tighten(path, os.fstat(descriptor).st_mode, lambda mode: os.fchmod(descriptor, mode))
    finally:
        os.close(descriptor)
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        try:
            status = os.lstat(extra)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(status.st_mode):
            _tighten(extra, status.st_mode, functools.partial(os.chmod, extra))


def _tighten(path: Path, mode: int, chmod: Callable[[int], None]) -> None:
    loose = stat.S_IMODE(mode) & 0o077
    if not loose or os.name == "nt":
        return
    chmod(_OWNER_ONLY)
    _log.warning(
        "costspan: the ledger file %s was readable or writable by others (mode %o): made owner-only (600)",
        path,
        stat.S_IMODE(mode),
    )
