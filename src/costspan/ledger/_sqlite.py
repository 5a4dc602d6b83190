"""The SQLite ledger engine: a file in WAL mode, written by one connection per process, read read-only.

Committed rows survive the process being killed (WAL with ``synchronous = NORMAL`` loses only what the operating
system had not written when the machine itself stopped).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._engine import Trouble
from ._paths import ENV, create_owner_only
from ._rows import Row
from ._schema import COLUMNS, SCHEMA_VERSION, migrate
from ._summary import ReportError

__all__ = ["SQLiteEngine"]

_log = logging.getLogger("costspan")

_INSERT = f"INSERT INTO calls ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_DELETE = "DELETE FROM calls WHERE span_id = ?"
# SQLite primary result codes of failures that pass: busy, locked, I/O error, disk full; and those of a batch that
# may not fit (I/O error, disk full).
_PASSING = frozenset({5, 6, 10, 13})
_NO_ROOM = frozenset({10, 13})
_PASSING_WORDS = ("locked", "busy", "disk is full", "disk i/o")
_NO_ROOM_WORDS = ("disk is full", "disk i/o")


class SQLiteEngine:
    def __init__(self, path: Path, *, create_directory: bool = False, busy_timeout: float = 2.0) -> None:
        self.path = path
        self.where = str(path)
        self.busy_timeout = busy_timeout
        self._create_directory = create_directory

    def open_writer(self) -> SQLiteWriter:
        path = self.path
        if not path.parent.is_dir() and not self._create_directory:
            raise FileNotFoundError(f"directory {str(path.parent)!r} does not exist")
        create_owner_only(path, make_parent=self._create_directory)
        connection = sqlite3.connect(path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            before, after = migrate(connection)
        except BaseException:
            connection.close()
            raise
        connection.isolation_level = "DEFERRED"
        if 0 < before < after:
            _log.info("costspan: migrated the ledger at %s from schema version %d to %d", path, before, after)
        return SQLiteWriter(connection)

    def trouble(self, failure: Exception) -> Trouble:
        if not isinstance(failure, sqlite3.Error):
            return Trouble(reconnect=True)
        code = getattr(failure, "sqlite_errorcode", None)
        text = str(failure).lower()
        if isinstance(code, int):
            passing, no_room = code & 0xFF in _PASSING, code & 0xFF in _NO_ROOM
        else:
            passing, no_room = any(w in text for w in _PASSING_WORDS), any(w in text for w in _NO_ROOM_WORDS)
        return Trouble(smaller=no_room, reconnect=not passing)

    def reason(self, failure: BaseException) -> str:
        if isinstance(failure, sqlite3.DatabaseError) and "not a database" in str(failure):
            return "the file is not an SQLite database"
        if isinstance(failure, OSError) and failure.strerror:
            return f"{failure.strerror}: {failure.filename}" if failure.filename else failure.strerror
        return str(failure)

    def open_reader(self) -> SQLiteReader:
        path = self.path
        if not path.is_file():
            where = "" if path.parent.is_dir() else f" (directory {str(path.parent)!r} does not exist)"
            raise ReportError(
                f"no ledger at {path}{where}: it is written by applications that call costspan.instrument(); "
                f"--ledger PATH or {ENV} names another"
            )
        try:
            connection = _read_only(path, "mode=ro")
        except sqlite3.OperationalError:
            # A WAL ledger in a directory this user cannot write: SQLite cannot make the -shm file a reader needs.
            # No writer can be using it there either, so the file is read as it stands.
            try:
                connection = _read_only(path, "mode=ro&immutable=1")
            except sqlite3.DatabaseError as failure:
                raise ReportError(f"cannot read the ledger at {path}: {failure}") from None
        except sqlite3.DatabaseError as failure:
            if "not a database" in str(failure):
                raise ReportError(f"{path} is not an SQLite database, so not a costspan ledger") from None
            raise ReportError(f"cannot read the ledger at {path}: {failure}") from None
        try:
            return SQLiteReader(connection, path)
        except BaseException:
            connection.close()
            raise


class SQLiteWriter:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def write(self, rows: Sequence[Row], deletes: Sequence[str]) -> None:
        with self._connection as connection:
            connection.executemany(_INSERT, rows)
            if deletes:
                connection.executemany(_DELETE, [(span_id,) for span_id in deletes])

    def close(self) -> None:
        self._connection.close()


def _read_only(path: Path, options: str) -> sqlite3.Connection:
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?{options}", uri=True)
    try:
        connection.execute("PRAGMA user_version").fetchone()
    except BaseException:
        connection.close()
        raise
    return connection


class SQLiteReader:
    mark = "?"

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._connection = connection
        self._path = path
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise ReportError(
                f"the ledger at {path} has schema version {version}, newer than this costspan's "
                f"({SCHEMA_VERSION}): upgrade costspan"
            )
        self.columns = frozenset(row[1] for row in connection.execute("PRAGMA table_info(calls)"))
        if not self.columns:
            raise ReportError(f"{path} is not a costspan ledger: it has no calls table")

    def query(self, sql: str, parameters: Sequence[object]) -> list[tuple[Any, ...]]:
        try:
            return self._connection.execute(sql, parameters).fetchall()
        except sqlite3.Error as failure:
            raise ReportError(f"cannot read the ledger at {self._path}: {failure}") from None

    def day(self, utc: bool) -> tuple[str, Sequence[object]]:
        return ("date(time)" if utc else "date(time, 'localtime')"), ()

    def attribute(self) -> str:
        return "json_extract(attributes, ?)"

    def attribution_keys(self) -> list[str]:
        if "attributes" not in self.columns:
            return []
        rows = self.query(
            "SELECT DISTINCT j.key FROM calls, json_each(calls.attributes) AS j WHERE calls.attributes IS NOT NULL"
            " ORDER BY j.key",
            (),
        )
        return [row[0] for row in rows]

    def key_parameter(self, key: str) -> str:
        return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def moment(self, value: datetime) -> object:
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def close(self) -> None:
        self._connection.close()
