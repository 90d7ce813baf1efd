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

_CAPTURE_VIEWS = (
    """CREATE OR REPLACE VIEW sessions AS
       SELECT s.session->>'session_id' AS session_id, s.seq, s.event_time AS started_at,
              e.event_time AS ended_at, e.payload->>'reason' AS end_reason,
              (e.payload->>'cells')::BIGINT AS cells, s.actor, s.actor_source,
              s.payload->>'host' AS host, s.payload->>'python' AS python,
              s.payload->>'kernel_id' AS kernel_id, s.payload->>'notebook' AS notebook,
              s.payload->>'notebook_sha256' AS notebook_sha256,
              s.payload->>'git_commit' AS git_commit, (s.payload->>'git_dirty')::BOOLEAN AS git_dirty,
              s.payload->>'packages_sha256' AS packages_sha256,
              s.payload->>'nbgov_version' AS nbgov_version
       FROM events s
       LEFT JOIN events e ON e.type = 'session_ended'
            AND (e.session->>'session_id') = (s.session->>'session_id')
       WHERE s.type = 'session_started'""",
    """CREATE OR REPLACE VIEW cells AS
       SELECT seq, event_time, session->>'session_id' AS session_id, payload->>'node' AS node,
              payload->>'cell_id' AS cell_id, (payload->>'execution_count')::INTEGER AS execution_count,
              session->>'notebook' AS notebook, actor, (payload->>'ok')::BOOLEAN AS ok,
              payload->>'error_type' AS error_type, (payload->>'duration_us')::BIGINT AS duration_us,
              payload->>'started_at' AS started_at, payload->>'source_sha256' AS source_sha256,
              payload->>'source' AS source, (payload->'uses')::VARCHAR[] AS uses,
              (payload->'defines')::VARCHAR[] AS defines, (payload->'inputs')::VARCHAR[] AS inputs,
              (payload->>'redactions')::INTEGER AS redactions
       FROM events WHERE type = 'cell_executed'""",
    """CREATE OR REPLACE VIEW datasets AS
       SELECT seq, event_time, CASE type WHEN 'dataset_read' THEN 'read' ELSE 'write' END AS direction,
              payload->>'path' AS path, payload->>'fingerprint' AS fingerprint,
              payload->>'algorithm' AS algorithm, payload->>'coverage' AS coverage,
              (payload->>'size_bytes')::BIGINT AS size_bytes, (payload->>'rows')::BIGINT AS rows,
              payload->'columns' AS columns, payload->>'via' AS via,
              CASE type WHEN 'dataset_read' THEN (payload->'inputs'->>0) ELSE (payload->>'node') END
                  AS dataset_node,
              CASE type WHEN 'dataset_read' THEN (payload->>'node') ELSE (payload->'inputs'->>0) END
                  AS cell_node,
              session->>'session_id' AS session_id, session->>'notebook' AS notebook, actor
       FROM events WHERE type IN ('dataset_read', 'dataset_written')""",
    """CREATE OR REPLACE VIEW dataset_declarations AS
       SELECT seq, event_time, payload->>'path' AS path, payload->>'fingerprint' AS fingerprint,
              payload->>'node' AS dataset_node, payload->>'source' AS source,
              payload->>'license' AS license, payload->>'owner' AS owner,
              (payload->'contains_pii')::VARCHAR[] AS contains_pii,
              payload->>'description' AS description, actor
       FROM events WHERE type = 'dataset_declared'""",
    """CREATE OR REPLACE VIEW models AS
       SELECT seq, event_time, payload->>'model' AS model, (payload->>'version')::INTEGER AS version,
              payload->>'node' AS node, payload->>'estimator' AS estimator, payload->'params' AS params,
              (payload->>'n_samples')::BIGINT AS n_samples, (payload->>'n_features')::BIGINT AS n_features,
              (payload->'features')::VARCHAR[] AS features, payload->'data' AS training_data,
              payload->>'model_fingerprint' AS model_fingerprint,
              (payload->>'duration_us')::BIGINT AS duration_us, (payload->'inputs')::VARCHAR[] AS inputs,
              payload->>'name_source' AS name_source, session->>'session_id' AS session_id,
              session->>'cell_run' AS cell_node, session->>'notebook' AS notebook, actor
       FROM events WHERE type = 'model_fitted'""",
    """CREATE OR REPLACE VIEW metrics AS
       SELECT e.seq, e.event_time, e.payload->>'model' AS model,
              (e.payload->>'version')::INTEGER AS version, m.key AS metric,
              TRY_CAST(m.value->>'$' AS DOUBLE) AS value, m.value AS value_json,
              e.payload->>'dataset' AS dataset, e.payload->>'via' AS via,
              'event:' || e.event_id AS node, e.session->>'session_id' AS session_id, e.actor
       FROM events e, json_each(e.payload->'metrics') m
       WHERE e.type = 'metrics_logged'""",
    """CREATE OR REPLACE VIEW params AS
       SELECT seq, event_time, payload->>'model' AS model, (payload->>'version')::INTEGER AS version,
              payload->'params' AS params, session->>'session_id' AS session_id, actor
       FROM events WHERE type = 'params_logged'""",
    """CREATE OR REPLACE VIEW predictions AS
       SELECT seq, event_time, payload->>'model' AS model, (payload->>'version')::INTEGER AS version,
              payload->>'method' AS method, (payload->>'rows')::BIGINT AS rows,
              payload->>'input_fingerprint' AS input_fingerprint,
              payload->>'output_fingerprint' AS output_fingerprint,
              session->>'session_id' AS session_id, actor
       FROM events WHERE type = 'prediction_made'""",
    """CREATE OR REPLACE VIEW capture_failures AS
       SELECT seq, event_time, payload->>'hook' AS hook, payload->>'error_type' AS error_type,
              payload->>'message' AS message, session->>'session_id' AS session_id, actor
       FROM events WHERE type = 'capture_failed'""",
    # Every event with payload.inputs adds edges input -> node (its payload.node, or the event).
    # (and every variable a cell bound adds edges input -> variable).
    """CREATE OR REPLACE VIEW lineage_edges AS
       SELECT i.value->>'$' AS src, coalesce(e.payload->>'node', 'event:' || e.event_id) AS dst,
              e.type AS kind, e.seq, e.event_time
       FROM events e, json_each(e.payload->'inputs') i
       WHERE json_type(e.payload->'inputs') = 'ARRAY'
       UNION ALL
       SELECT i.value->>'$', b.value->>'node', 'binding', e.seq, e.event_time
       FROM events e, json_each(e.payload->'bindings') b, json_each(b.value->'inputs') i
       WHERE e.type = 'cell_executed' AND json_type(e.payload->'bindings') = 'ARRAY'""",
    """CREATE OR REPLACE VIEW lineage_nodes AS
       SELECT node, arg_max(kind, seq) AS kind, arg_max(label, seq) AS label, max(seq) AS seq FROM (
         SELECT payload->'inputs'->>0 AS node, 'dataset' AS kind, payload->>'path' AS label, seq
           FROM events WHERE type = 'dataset_read'
         UNION ALL
         SELECT payload->>'node', 'dataset', payload->>'path', seq
           FROM events WHERE type IN ('dataset_written', 'dataset_declared')
         UNION ALL
         SELECT payload->>'node', 'cell',
                coalesce(regexp_extract(session->>'notebook', '[^/]+$'),
                  'session ' || (session->>'session_id'))
                  || ' [' || coalesce(payload->>'execution_count', '?') || ']', seq
           FROM events WHERE type = 'cell_executed'
         UNION ALL
         SELECT b.value->>'node', 'variable',
                (b.value->>'name') || ' (' || coalesce(regexp_extract(e.session->>'notebook',
                  '[^/]+$'), 'session ' || (e.session->>'session_id')) || ' ['
                  || coalesce(e.payload->>'execution_count', '?') || '])', e.seq
           FROM events e, json_each(e.payload->'bindings') b
           WHERE e.type = 'cell_executed' AND json_type(e.payload->'bindings') = 'ARRAY'
         UNION ALL
         SELECT payload->>'node', 'model',
                (payload->>'model') || ' v' || (payload->>'version') || ' ('
                  || (payload->>'estimator') || ')', seq
           FROM events WHERE type = 'model_fitted'
         UNION ALL
         SELECT 'event:' || event_id, 'evaluation',
                coalesce(payload->>'via', 'metrics') || ' ' || (payload->'metrics')::VARCHAR, seq
           FROM events WHERE type = 'metrics_logged'
         UNION ALL
         SELECT 'event:' || event_id, 'prediction',
                (payload->>'method') || ' of ' || (payload->>'rows') || ' rows', seq
           FROM events WHERE type = 'prediction_made')
       WHERE node IS NOT NULL GROUP BY node""",
    """CREATE OR REPLACE MACRO lineage_upstream(start_node) AS TABLE
       WITH RECURSIVE edges AS MATERIALIZED (SELECT src, dst FROM lineage_edges),
       walk(node, depth) AS (
         SELECT start_node, 0
         UNION
         SELECT e.src, w.depth + 1 FROM edges e JOIN walk w ON e.dst = w.node WHERE w.depth < 64)
       SELECT w.node, min(w.depth) AS depth, any_value(n.kind) AS kind, any_value(n.label) AS label
       FROM walk w LEFT JOIN lineage_nodes n ON n.node = w.node
       GROUP BY w.node ORDER BY depth, w.node""",
    """CREATE OR REPLACE MACRO lineage_downstream(start_node) AS TABLE
       WITH RECURSIVE edges AS MATERIALIZED (SELECT src, dst FROM lineage_edges),
       walk(node, depth) AS (
         SELECT start_node, 0
         UNION
         SELECT e.dst, w.depth + 1 FROM edges e JOIN walk w ON e.src = w.node WHERE w.depth < 64)
       SELECT w.node, min(w.depth) AS depth, any_value(n.kind) AS kind, any_value(n.label) AS label
       FROM walk w LEFT JOIN lineage_nodes n ON n.node = w.node
       GROUP BY w.node ORDER BY depth, w.node""",
)

MIGRATIONS = (
    *MIGRATIONS,
    Migration(
        3,
        "capture views: sessions, cells, datasets, models, metrics, lineage",
        _CAPTURE_VIEWS,
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
