"""The storage seam: the little the ledger's writer and its report need from a database engine, one module per
engine behind it (:mod:`._sqlite`, :mod:`._postgres`).

A :class:`Writer` is one connection, used by the writer thread alone: it inserts rows and removes replaced ones in
one transaction per :meth:`Writer.write`. A :class:`Reader` answers the report's one query; the report writes that
query itself, in the SQL both engines speak, and asks the reader only for what differs (parameter marks, a
timestamp's day, an attribution key's value).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from ._paths import Target, is_url
from ._rows import Row

__all__ = ["Engine", "Reader", "Trouble", "Writer", "engine_for"]


class Trouble(NamedTuple):
    """How a failed open or write is met. The rows are kept (within the queue's bound) and tried again;
    ``smaller``: the batch may not fit (disk full), so try fewer rows at once; ``reconnect``: the connection is no
    more use, open another; ``rejected``: the database refuses a row's data, so the batch is split until the row
    that it refuses is found, and that row alone is given up (counted in ``unwritten``)."""

    smaller: bool = False
    reconnect: bool = False
    rejected: bool = False


class Writer(Protocol):
    def write(self, rows: Sequence[Row], deletes: Sequence[str]) -> None:
        """Insert ``rows`` and delete the rows of the span ids ``deletes``, in one transaction."""

    def close(self) -> None: ...


class Reader(Protocol):
    mark: str
    """The engine's parameter mark (``?`` or ``%s``)."""
    columns: frozenset[str]
    """The columns of the ledger's calls table (an older SQLite ledger lacks some)."""

    def query(self, sql: str, parameters: Sequence[object]) -> list[tuple[Any, ...]]: ...

    def day(self, utc: bool) -> tuple[str, Sequence[object]]:
        """An expression of a row's day, ``YYYY-MM-DD`` in UTC or in this machine's local time."""

    def attribute(self) -> str:
        """An expression of an attribution key's value (one parameter, :meth:`key_parameter`), NULL where a row
        has none."""

    def key_parameter(self, key: str) -> str:
        """The parameter :meth:`attribute` takes for the attribution key ``key``."""

    def attribution_keys(self) -> list[str]: ...

    def moment(self, value: datetime) -> object:
        """A period bound as the ``time`` column compares with it."""

    def close(self) -> None: ...


class Engine(Protocol):
    where: str
    """The ledger as a log line or an error names it: a path, or a URL without its password."""

    def open_writer(self) -> Writer:
        """Connect, migrate the schema to this costspan's, and return the writer; raises what failed."""

    def trouble(self, failure: Exception) -> Trouble:
        """How a failure of :meth:`open_writer` or :meth:`Writer.write` is met."""

    def reason(self, failure: BaseException) -> str:
        """The failure in one line for the log, free of credentials."""

    def open_reader(self) -> Reader:
        """A read-only view for a report; raises ReportError saying what is wrong."""


def engine_for(target: Target, *, create_directory: bool = False, busy_timeout: float = 2.0) -> Engine:
    """The engine of a ledger path or URL (PostgreSQL needs psycopg: ``pip install 'costspan[postgresql]'``)."""
    if is_url(target):
        from ._postgres import PostgresEngine

        return PostgresEngine(str(target))
    from ._sqlite import SQLiteEngine

    return SQLiteEngine(Path(target), create_directory=create_directory, busy_timeout=busy_timeout)
