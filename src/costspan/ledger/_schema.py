"""The ledger's columns, and its SQLite schema and migrations (PostgreSQL's are in :mod:`._postgres`).

``PRAGMA user_version`` holds the schema version. ``MIGRATIONS[n]`` takes a ledger from version ``n`` to
``n + 1``; a new file gets them all, in order, in one transaction. A ledger of a newer version than
:data:`SCHEMA_VERSION` is never written by this costspan (its columns may mean things this code does not know).

One row per provider call, traced by costspan or by another instrumentation (``scope`` names it). Tokens follow
the span attributes: ``input_tokens`` counts ALL input tokens, cache reads and writes included;
``reasoning_tokens`` is part of ``output_tokens``. ``request_id`` is the span's ``gen_ai.response.id``, else its
``aws.request_id`` (Bedrock's responses have no id of their own). ``cost_usd`` is NULL when the call was not priced
(``unpriced`` = 1) or billed nothing (a failed request, token counting): never a silent 0. ``cost_source`` is the
span's ``gen_ai.usage.cost.source`` (``local``: costspan priced the call) or ``ledger`` when the span carried no
cost and the ledger priced its usage. ``attributes`` is a JSON object of the span's attribution attributes
(``costspan.attribution`` keywords other than ``user_id``, which is the ``user_id`` column). ``request_name`` is
the span's ``costspan.request.name``: the request (the local root span) or ``costspan.track`` run the call was made
in; with ``trace_id`` it names the request in a tracing backend.
"""

from __future__ import annotations

import sqlite3

__all__ = ["COLUMNS", "MIGRATIONS", "SCHEMA_VERSION", "NewerSchema", "migrate", "schema_version"]

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the calls table.
    """
    CREATE TABLE calls (
        id INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        trace_id TEXT NOT NULL,
        span_id TEXT NOT NULL,
        request_id TEXT,
        provider TEXT,
        operation TEXT,
        request_model TEXT,
        response_model TEXT,
        input_tokens INTEGER,
        output_tokens INTEGER,
        cache_read_tokens INTEGER,
        cache_write_tokens INTEGER,
        reasoning_tokens INTEGER,
        cost_usd REAL,
        cost_input REAL,
        cost_output REAL,
        cost_cache_read REAL,
        cost_cache_write REAL,
        cost_other REAL,
        price_model TEXT,
        price_source TEXT,
        unpriced INTEGER NOT NULL DEFAULT 0,
        estimated INTEGER NOT NULL DEFAULT 0,
        stream_completed INTEGER,
        user_id TEXT,
        server_address TEXT,
        server_port INTEGER,
        duration_s REAL,
        time_to_first_chunk_s REAL,
        error_type TEXT
    );
    CREATE INDEX calls_time ON calls (time);
    """,
    # 1 -> 2: who traced the call (calls of other instrumentations get rows too), where its cost came from, and
    # the attribution beyond user.id as JSON (costspan report --by KEY).
    """
    ALTER TABLE calls ADD COLUMN scope TEXT;
    ALTER TABLE calls ADD COLUMN cost_source TEXT;
    ALTER TABLE calls ADD COLUMN attributes TEXT;
    """,
    # 2 -> 3: the name of the request the call was made in (its local root span, or the outermost costspan.track
    # run), beside its trace id (costspan report --by request).
    """
    ALTER TABLE calls ADD COLUMN request_name TEXT;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)

COLUMNS: tuple[str, ...] = (
    "time",
    "trace_id",
    "span_id",
    "request_id",
    "provider",
    "operation",
    "request_model",
    "response_model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
    "cost_input",
    "cost_output",
    "cost_cache_read",
    "cost_cache_write",
    "cost_other",
    "price_model",
    "price_source",
    "unpriced",
    "estimated",
    "stream_completed",
    "user_id",
    "server_address",
    "server_port",
    "duration_s",
    "time_to_first_chunk_s",
    "error_type",
    "scope",
    "cost_source",
    "attributes",
    "request_name",
)
"""The columns a row fills, in the order :mod:`costspan.ledger._rows` builds them (``id`` is SQLite's)."""


class NewerSchema(Exception):
    """The ledger was written by a newer costspan."""

    def __init__(self, version: int, supported: int = SCHEMA_VERSION) -> None:
        super().__init__(f"it has schema version {version}, newer than this costspan's ({supported}): upgrade costspan")
        self.version = version


def schema_version(connection: sqlite3.Connection) -> int:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    return int(version)


def migrate(connection: sqlite3.Connection) -> tuple[int, int]:
    """Bring the ledger to :data:`SCHEMA_VERSION` in one write transaction; (version before, version after).

    The transaction takes the write lock first, so that processes opening a new ledger at the same time
    migrate it once.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        before = schema_version(connection)
        if before > SCHEMA_VERSION:
            raise NewerSchema(before)
        for script in MIGRATIONS[before:]:
            for statement in _statements(script):
                connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return before, SCHEMA_VERSION


def _statements(script: str) -> list[str]:
    # executescript() would commit the open transaction first; one statement at a time keeps the migration atomic.
    return [statement.strip() for statement in script.split(";") if statement.strip()]
