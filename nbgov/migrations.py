"""The ledger's schema, as ordered, numbered migrations recorded in ``schema_migrations``.

A ledger made by an older nbgov is upgraded the first time a newer one writes to it; a ledger made
by a newer nbgov is refused rather than guessed at. Migrations only ever add: the ledger's rows
are never updated or deleted, so a migration never rewrites history.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from nbgov._version import __version__
from nbgov.errors import LedgerError, NotALedger, SchemaTooNew

__all__ = ["LATEST", "MIGRATIONS", "Migration", "ledger_id", "schema_version", "upgrade"]


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    statements: Sequence[str]


_EVENTS_VIEW = """
CREATE OR REPLACE VIEW events AS
SELECT seq, ingested_at, event_time, type, version, actor, actor_source, event_id,
       json_extract(decode(body), '$.session') AS session,
       json_extract(decode(body), '$.payload') AS payload,
       lower(hex(leaf_hash)) AS leaf_hash,
       lower(hex(chain_hash)) AS chain_hash
FROM event_log
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "event log and ingest bookkeeping",
        (
            """CREATE TABLE ledger_meta (
                   key VARCHAR NOT NULL,
                   value VARCHAR NOT NULL)""",
            # The append-only log. body holds the canonical event's bytes exactly as hashed; the
            # other columns are copies of envelope fields for fast filtering (verify checks they
            # agree with the body). Hashes are random bytes: compressing them only costs time.
            """CREATE TABLE event_log (
                   seq BIGINT NOT NULL,
                   ingested_at TIMESTAMPTZ NOT NULL,
                   event_id VARCHAR NOT NULL,
                   type VARCHAR NOT NULL,
                   version INTEGER NOT NULL,
                   event_time TIMESTAMPTZ NOT NULL,
                   actor VARCHAR NOT NULL,
                   actor_source VARCHAR NOT NULL,
                   body BLOB NOT NULL,
                   leaf_hash BLOB NOT NULL USING COMPRESSION uncompressed,
                   chain_hash BLOB NOT NULL USING COMPRESSION uncompressed)""",
            """CREATE TABLE ingest_batches (
                   batch BIGINT NOT NULL,
                   committed_at TIMESTAMPTZ NOT NULL,
                   first_seq BIGINT,
                   last_seq BIGINT,
                   events BIGINT NOT NULL,
                   head_chain BLOB NOT NULL,
                   host VARCHAR NOT NULL,
                   pid INTEGER NOT NULL)""",
            # Append-only too: the newest row per segment (highest batch) is its cursor.
            """CREATE TABLE spool_progress (
                   batch BIGINT NOT NULL,
                   segment VARCHAR NOT NULL,
                   lines BIGINT NOT NULL,
                   byte_offset BIGINT NOT NULL,
                   last_line_hash VARCHAR NOT NULL)""",
        ),
    ),
    Migration(
        2,
        "documented views: events, spool_cursors",
        (
            _EVENTS_VIEW,
            """CREATE OR REPLACE VIEW spool_cursors AS
               SELECT segment, max(batch) AS batch, arg_max(lines, batch) AS lines,
                      arg_max(byte_offset, batch) AS byte_offset,
                      arg_max(last_line_hash, batch) AS last_line_hash
               FROM spool_progress GROUP BY segment""",
        ),
    ),
)

LATEST = MIGRATIONS[-1].number


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The ledger's schema version (0 for an empty database).

    Raises
    ------
    NotALedger
        The database holds tables but no nbgov schema record.
    """
    tables = {
        row[0]
        for row in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
    }
    if "schema_migrations" not in tables:
        if tables:
            raise NotALedger(
                "the database holds tables but is not an nbgov ledger (no schema_migrations)",
                hint="point --home / NBGOV_HOME at an nbgov ledger directory",
            )
        return 0
    row = con.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def upgrade(con: duckdb.DuckDBPyConnection, *, target: int | None = None) -> list[int]:
    """Apply pending migrations up to *target* (default: all); return the numbers applied.

    Each migration runs in its own transaction together with its ``schema_migrations`` row.
    """
    target = LATEST if target is None else target
    current = schema_version(con)
    if current > LATEST:
        raise SchemaTooNew(
            f"the ledger's schema is version {current}; this nbgov ({__version__}) knows up to {LATEST}"
        )
    applied: list[int] = []
    for migration in MIGRATIONS:
        if migration.number <= current or migration.number > target:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            if migration.number == 1:
                con.execute(_SCHEMA_MIGRATIONS)
            for statement in migration.statements:
                con.execute(statement)
            if migration.number == 1:
                con.execute(
                    "INSERT INTO ledger_meta VALUES ('ledger_id', $id), ('created_by', $v)",
                    {"id": uuid.uuid4().hex, "v": f"nbgov {__version__}"},
                )
            con.execute(
                "INSERT INTO schema_migrations VALUES ($n, $name, now(), $v)",
                {"n": migration.number, "name": migration.name, "v": __version__},
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        # DuckDB can report the COMMIT of a failed transaction as success while rolling it back.
        if schema_version(con) != migration.number:
            raise LedgerError(f"migration {migration.number} did not persist; the ledger is unchanged")
        applied.append(migration.number)
    return applied


_SCHEMA_MIGRATIONS = """CREATE TABLE schema_migrations (
    version INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL,
    nbgov_version VARCHAR NOT NULL)"""


def ledger_id(con: duckdb.DuckDBPyConnection) -> str | None:
    """The ledger's random id, fixed when it was created."""
    row = con.execute("SELECT value FROM ledger_meta WHERE key = 'ledger_id' LIMIT 1").fetchone()
    return str(row[0]) if row else None
