"""The ledger's tables, as ordered, numbered migrations recorded in ``schema_migrations``.

A ledger made by an older nbgov is upgraded the first time a newer one writes to it; a ledger made
by a newer nbgov is refused rather than guessed at. Migrations only ever add: the ledger's rows
are never updated or deleted, so a migration never rewrites history. Migrations change tables
only; the documented views are applied by :mod:`nbgov.ledger.schema.views` after them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import duckdb

from nbgov._version import __version__
from nbgov.errors import LedgerError, NotALedger, SchemaTooNew
from nbgov.ledger.connection import transaction
from nbgov.ledger.schema.views import apply_views

__all__ = ["LATEST", "MIGRATIONS", "Migration", "ledger_id", "schema_version", "upgrade"]


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    statements: Sequence[str]
    #: Python work after the statements, in the same transaction (e.g. derived data to backfill).
    then: Callable[[duckdb.DuckDBPyConnection], object] | None = None


def _backfill_versions(con: duckdb.DuckDBPyConnection) -> object:
    from nbgov.ledger.derived import number_model_versions

    row = con.execute("SELECT coalesce(max(seq), 0) FROM event_log").fetchone()
    number_model_versions(con, 1, int(row[0]) if row else 0)
    return None


def _backfill_merkle(con: duckdb.DuckDBPyConnection) -> object:
    from nbgov.ledger.integrity.tree_store import backfill

    return backfill(con)


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
)

# Migrations 2 to 6 defined views; the views now live in views/*.sql (see views.py), so these
# numbers stay as records of the ledgers that applied them, with nothing left to do.
MIGRATIONS = (
    *MIGRATIONS,
    Migration(2, "documented views: events, spool_cursors", ()),
    Migration(3, "capture views: sessions, cells, datasets, models, metrics, lineage", ()),
    Migration(4, "governance views: policies, evaluations, model lifecycle, approvals, roles, vendors, "
                 "risks, data access", ()),
    Migration(5, "review views: review runs, schedules, missed runs, alerts", ()),
    Migration(6, "reviewer decisions: rejections in approvals, approval requests", ()),
    Migration(
        7,
        "Merkle tree (RFC 9162): complete subtrees kept at ingest",
        ("""CREATE TABLE merkle_nodes (
            level TINYINT NOT NULL,
            idx BIGINT NOT NULL,
            hash BLOB NOT NULL)""",),
        then=_backfill_merkle,
    ),
    Migration(
        8,
        "views kept apart from migrations: the digest of each application recorded",
        ("""CREATE TABLE IF NOT EXISTS schema_views (
            n INTEGER NOT NULL,
            digest VARCHAR NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL,
            nbgov_version VARCHAR NOT NULL)""",),
    ),
    Migration(
        9,
        "model versions numbered at ingest (unique and gapless per model name)",
        ("""CREATE TABLE model_version_numbers (
            model VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            fit_event_id VARCHAR NOT NULL,
            seq BIGINT NOT NULL)""",),
        then=_backfill_versions,
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


def _is_ducklake(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        "SELECT type FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return row is not None and str(row[0]).lower() == "ducklake"


def _for_catalog(statement: str, lake: bool) -> str:
    """DuckLake (the team backend) chooses its own column compression: drop nbgov's choice."""
    return re.sub(r"\s+USING COMPRESSION \w+", "", statement) if lake else statement


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
    lake = _is_ducklake(con)
    for migration in MIGRATIONS:
        if migration.number <= current or migration.number > target:
            continue
        with transaction(con):
            if migration.number == 1:
                con.execute(_SCHEMA_MIGRATIONS)
            for statement in migration.statements:
                con.execute(_for_catalog(statement, lake))
            if migration.then is not None:
                migration.then(con)
            if migration.number == 1:
                con.execute(
                    "INSERT INTO ledger_meta VALUES ('ledger_id', $id), ('created_by', $v)",
                    {"id": uuid.uuid4().hex, "v": f"nbgov {__version__}"},
                )
            con.execute(
                "INSERT INTO schema_migrations VALUES ($n, $name, now(), $v)",
                {"n": migration.number, "name": migration.name, "v": __version__},
            )
        # DuckDB can report the COMMIT of a failed transaction as success while rolling it back.
        if schema_version(con) != migration.number:
            raise LedgerError(f"migration {migration.number} did not persist; the ledger is unchanged")
        applied.append(migration.number)
    if target >= _VIEWS_RECORDED:
        apply_views(con, force=bool(applied))
    return applied


#: The first schema version that records its views' digest.
_VIEWS_RECORDED = 8


_SCHEMA_MIGRATIONS = """CREATE TABLE schema_migrations (
    version INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL,
    nbgov_version VARCHAR NOT NULL)"""


def ledger_id(con: duckdb.DuckDBPyConnection) -> str | None:
    """The ledger's random id, fixed when it was created."""
    row = con.execute("SELECT value FROM ledger_meta WHERE key = 'ledger_id' LIMIT 1").fetchone()
    return str(row[0]) if row else None


def claim_creation(con: duckdb.DuckDBPyConnection, actor: str) -> bool:
    """Claim the recording of an empty ledger's ``ledger_created`` event (True for one caller only).

    Run under the ingest lock: the claim (a ``ledger_meta`` row) is committed before the event is
    appended to the claimant's spool, so a host whose spool cannot show the pending event still
    sees that another recorded it.
    """
    with transaction(con):
        row = con.execute(
            "SELECT (SELECT count(*) FROM event_log) > 0 "
            "OR EXISTS (SELECT 1 FROM ledger_meta WHERE key = 'creation_claimed_by')").fetchone()
        claimed = row is not None and not row[0]
        if claimed:
            con.execute("INSERT INTO ledger_meta VALUES ('creation_claimed_by', $actor)", {"actor": actor})
    return claimed
