"""The PostgreSQL ledger engine: many processes on many hosts write one ``calls`` table, each through one
connection of its writer thread, with psycopg 3 (``pip install 'costspan[postgresql]'``).

A batch is copied (COPY) into a temporary table and moved into ``calls`` with ``ON CONFLICT DO NOTHING`` on the
span's ids, in one transaction: a batch whose commit succeeded but whose answer was lost (the server restarting) is
tried again without writing a row twice. The schema's version is a row of ``costspan_schema``; migrations run in
one transaction under an advisory lock, so processes starting together migrate once. The URL's password is never
logged: messages name the ledger by :func:`._paths.redacted`.
"""

from __future__ import annotations

import os
import time as clock
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ._engine import Trouble
from ._paths import redacted
from ._rows import Row
from ._schema import COLUMNS, NewerSchema
from ._summary import ReportError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "PostgresEngine"]

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the calls table, with the columns of the SQLite ledger's version 2.
    """
    CREATE TABLE calls (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        time timestamptz NOT NULL,
        trace_id text NOT NULL,
        span_id text NOT NULL,
        request_id text,
        provider text,
        operation text,
        request_model text,
        response_model text,
        input_tokens bigint,
        output_tokens bigint,
        cache_read_tokens bigint,
        cache_write_tokens bigint,
        reasoning_tokens bigint,
        cost_usd double precision,
        cost_input double precision,
        cost_output double precision,
        cost_cache_read double precision,
        cost_cache_write double precision,
        cost_other double precision,
        price_model text,
        price_source text,
        unpriced smallint NOT NULL DEFAULT 0,
        estimated smallint NOT NULL DEFAULT 0,
        stream_completed smallint,
        user_id text,
        server_address text,
        server_port integer,
        duration_s double precision,
        time_to_first_chunk_s double precision,
        error_type text,
        scope text,
        cost_source text,
        attributes jsonb,
        UNIQUE (trace_id, span_id)
    );
    CREATE INDEX calls_time ON calls (time);
    """,
    # 1 -> 2: the request the call was made in, as the SQLite ledger's version 3 (costspan report --by request).
    """
    ALTER TABLE calls ADD COLUMN request_name text;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)

_NAMES = ", ".join(COLUMNS)
_INCOMING = f"CREATE TEMP TABLE costspan_incoming ON COMMIT DELETE ROWS AS SELECT {_NAMES} FROM calls WITH NO DATA"
_COPY = f"COPY costspan_incoming ({_NAMES}) FROM STDIN"
_MOVE = (
    f"INSERT INTO calls ({_NAMES}) SELECT {_NAMES} FROM costspan_incoming ON CONFLICT (trace_id, span_id) DO NOTHING"
)
_DELETE = "DELETE FROM calls WHERE span_id = ANY(%s)"
# Every process migrating takes this transaction-scoped advisory lock first ("costspan" in ASCII).
_MIGRATION_LOCK = 0x636F73747370616E
# A writer whose server vanished (a host down, a network cut) learns it within seconds, not at TCP's own timeouts.
_CONNECT: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
    "application_name": "costspan-ledger",
}
_NO_ROOM = ("53100", "53200")  # disk_full, out_of_memory


class PostgresEngine:
    def __init__(self, url: str) -> None:
        try:
            import psycopg  # noqa: F401  (a configuration error, found when the ledger is set up)
        except ImportError:
            raise ImportError(
                f"the ledger {redacted(url)} is a PostgreSQL URL, which needs psycopg: "
                "pip install 'costspan[postgresql]'"
            ) from None
        self._url = url
        self.where = redacted(url)

    def _connect(self, **options: Any) -> Any:
        import psycopg

        return psycopg.connect(self._url, autocommit=True, **_CONNECT, **options)

    def open_writer(self) -> PostgresWriter:
        connection = self._connect()
        try:
            migrate(connection)
            connection.execute(_INCOMING)
        except BaseException:
            connection.close()
            raise
        return PostgresWriter(connection)

    def trouble(self, failure: Exception) -> Trouble:
        import psycopg

        if not isinstance(failure, psycopg.Error):
            return Trouble(reconnect=True)  # NewerSchema, or a failure of our own: start afresh
        state = failure.sqlstate or ""
        broken = isinstance(failure, psycopg.OperationalError) or state.startswith(("08", "57"))
        rejected = state.startswith(("22", "23"))  # data exception, integrity violation
        return Trouble(smaller=state in _NO_ROOM, reconnect=broken, rejected=rejected)

    def reason(self, failure: BaseException) -> str:
        text = str(failure).strip().splitlines()[0] if str(failure).strip() else type(failure).__name__
        return _scrub(text, self._url)

    def open_reader(self) -> PostgresReader:
        import psycopg

        try:
            connection = self._connect(options="-c default_transaction_read_only=on")
        except psycopg.Error as failure:
            raise ReportError(f"cannot read the ledger at {self.where}: {self.reason(failure)}") from None
        try:
            return PostgresReader(connection, self)
        except BaseException:
            connection.close()
            raise


class PostgresWriter:
    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def write(self, rows: Sequence[Row], deletes: Sequence[str]) -> None:
        connection = self._connection
        with connection.transaction(), connection.cursor() as cursor:
            with cursor.copy(_COPY) as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(_MOVE)
            if deletes:
                cursor.execute(_DELETE, [list(deletes)])

    def close(self) -> None:
        self._connection.close()


def migrate(connection: Any) -> tuple[int, int]:
    """Bring the database's ledger to :data:`SCHEMA_VERSION` in one transaction; (version before, after)."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATION_LOCK])
        connection.execute("CREATE TABLE IF NOT EXISTS costspan_schema (version integer NOT NULL)")
        found = connection.execute("SELECT version FROM costspan_schema").fetchone()
        before = int(found[0]) if found else 0
        if before > SCHEMA_VERSION:
            raise NewerSchema(before, SCHEMA_VERSION)
        for script in MIGRATIONS[before:]:
            connection.execute(script)
        if found is None:
            connection.execute("INSERT INTO costspan_schema (version) VALUES (%s)", [SCHEMA_VERSION])
        elif before < SCHEMA_VERSION:
            connection.execute("UPDATE costspan_schema SET version = %s", [SCHEMA_VERSION])
    return before, SCHEMA_VERSION


class PostgresReader:
    mark = "%s"

    def __init__(self, connection: Any, engine: PostgresEngine) -> None:
        self._connection = connection
        self._engine = engine
        where = engine.where
        version = self.query("SELECT to_regclass('costspan_schema') IS NOT NULL", ())[0][0]
        found = self.query("SELECT max(version) FROM costspan_schema", ()) if version else [(None,)]
        if found[0][0] is None:
            raise ReportError(f"no costspan ledger in {where}: it is written by applications whose ledger is this URL")
        if int(found[0][0]) > SCHEMA_VERSION:
            raise ReportError(str(NewerSchema(int(found[0][0]), SCHEMA_VERSION)).replace("it has", f"{where} has"))
        self.columns = frozenset(
            row[0]
            for row in self.query(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = 'calls'",
                (),
            )
        )

    def query(self, sql: str, parameters: Sequence[object]) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            return list(self._connection.execute(sql, list(parameters)).fetchall())
        except psycopg.Error as failure:
            engine = self._engine
            raise ReportError(f"cannot read the ledger at {engine.where}: {engine.reason(failure)}") from None

    def day(self, utc: bool) -> tuple[str, Sequence[object]]:
        if utc:
            return "to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD')", ()
        zone = _local_zone()
        if zone is not None:
            return "to_char(time AT TIME ZONE %s, 'YYYY-MM-DD')", (zone,)
        offset = datetime.now().astimezone().utcoffset()
        seconds = int(offset.total_seconds()) if offset is not None else 0
        return "to_char((time AT TIME ZONE 'UTC') + make_interval(secs => %s), 'YYYY-MM-DD')", (seconds,)

    def attribute(self) -> str:
        return "(attributes ->> %s)"

    def key_parameter(self, key: str) -> str:
        return key

    def attribution_keys(self) -> list[str]:
        if "attributes" not in self.columns:
            return []
        rows = self.query("SELECT DISTINCT jsonb_object_keys(attributes) AS key FROM calls ORDER BY key", ())
        return [row[0] for row in rows]

    def moment(self, value: datetime) -> object:
        return value

    def close(self) -> None:
        self._connection.close()


def _local_zone() -> str | None:
    """This machine's time zone as PostgreSQL names zones (an IANA name), when it can be told."""
    named = os.environ.get("TZ", "").lstrip(":")
    if (named and "/" in named) or named == "UTC":
        return named
    try:
        target = str(Path("/etc/localtime").resolve())
    except OSError:
        return None
    _, found, zone = target.partition("zoneinfo/")
    if found:
        return zone
    return "UTC" if clock.timezone == 0 and clock.daylight == 0 else None


def _scrub(text: str, url: str) -> str:
    from urllib.parse import unquote, urlsplit

    password = urlsplit(url).password
    return text.replace(unquote(password), "***").replace(password, "***") if password else text
