"""The ledger's schema, as ordered, numbered migrations recorded in ``schema_migrations``.

A ledger made by an older nbgov is upgraded the first time a newer one writes to it; a ledger made
by a newer nbgov is refused rather than guessed at. Migrations only ever add: the ledger's rows
are never updated or deleted, so a migration never rewrites history.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import duckdb

from nbgov._version import __version__
from nbgov.errors import LedgerError, NotALedger, SchemaTooNew
from nbgov.ledger.store import transaction

__all__ = ["LATEST", "MIGRATIONS", "Migration", "ledger_id", "schema_version", "upgrade"]


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    statements: Sequence[str]
    #: Python work after the statements, in the same transaction (e.g. derived data to backfill).
    then: Callable[[duckdb.DuckDBPyConnection], object] | None = None


def _backfill_merkle(con: duckdb.DuckDBPyConnection) -> object:
    from nbgov.ledger.integrity.tree_store import backfill

    return backfill(con)


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


# The policy in force in SQL: the latest recorded one (its data_access rules decide which reads
# need a grant; with no policy recorded, restricted data does).
_GRANT_REQUIRED = """coalesce((SELECT (payload->'policy'->'data_access'->'grant_required')::VARCHAR[]
                 FROM events WHERE type = 'policy_recorded' ORDER BY seq DESC LIMIT 1),
                 ['restricted'])"""

_GOVERNANCE_VIEWS = (
    """CREATE OR REPLACE VIEW policies AS
       SELECT seq, event_time AS recorded_at, payload->>'sha256' AS sha256,
              payload->>'source' AS source, payload->>'previous_sha256' AS previous_sha256,
              payload->'policy' AS policy, actor, event_id
       FROM events WHERE type = 'policy_recorded'""",
    """CREATE OR REPLACE VIEW policy_evaluations AS
       SELECT seq, event_time, payload->>'model' AS model, (payload->>'version')::INTEGER AS version,
              payload->>'purpose' AS purpose, payload->>'verdict' AS verdict,
              (SELECT count(*) FROM json_each(payload->'findings') f
                WHERE (f.value->>'status') = 'fail') AS failed,
              payload->'findings' AS findings, payload->>'digest' AS digest,
              payload->>'policy_sha256' AS policy_sha256, actor, event_id
       FROM events WHERE type = 'policy_evaluated'""",
    # Lifecycle moves: explicit state changes, and approvals that reached the required count.
    """CREATE OR REPLACE VIEW model_transitions AS
       SELECT seq, event_time, payload->>'model' AS model, (payload->>'version')::INTEGER AS version,
              payload->>'from_state' AS from_state, payload->>'to_state' AS to_state,
              payload->>'reason' AS reason, payload->>'evidence' AS evidence, actor, event_id
       FROM events WHERE type = 'model_state_changed'
       UNION ALL
       SELECT seq, event_time, payload->>'model', (payload->>'version')::INTEGER, 'validated',
              'approved', 'approved by ' || (payload->>'approvals') || ' of '
                || (payload->>'required') || ' required reviewer(s)', event_id, actor, event_id
       FROM events WHERE type = 'approval_granted'
            AND (payload->>'approvals')::INTEGER >= (payload->>'required')::INTEGER""",
    """CREATE OR REPLACE VIEW risk_tiers AS
       SELECT payload->>'model' AS model, arg_max(payload->>'tier', (event_time, seq)) AS tier,
              arg_max(payload->>'reason', (event_time, seq)) AS reason,
              arg_max(actor, (event_time, seq)) AS set_by,
              max(event_time) AS set_at
       FROM events WHERE type = 'risk_tier_set' GROUP BY ALL""",
    """CREATE OR REPLACE VIEW model_versions AS
       WITH last AS (
         SELECT model, version, arg_max(to_state, (event_time, seq)) AS state, max(event_time) AS state_since
         FROM model_transitions GROUP BY ALL),
       approved AS (
         SELECT payload->>'model' AS model, (payload->>'version')::INTEGER AS version,
                count(DISTINCT actor) AS approvals, list(DISTINCT actor ORDER BY actor) AS approvers
         FROM events WHERE type = 'approval_granted' GROUP BY ALL)
       SELECT m.model, m.version, m.node, m.estimator, m.actor AS author, m.event_time AS trained_at,
              coalesce(l.state, 'trained') AS state, coalesce(l.state_since, m.event_time) AS state_since,
              coalesce(a.approvals, 0) AS approvals, coalesce(a.approvers, []) AS approvers,
              t.tier, m.model_fingerprint, m.notebook
       FROM models m
       LEFT JOIN last l USING (model, version)
       LEFT JOIN approved a USING (model, version)
       LEFT JOIN risk_tiers t ON t.model = m.model""",
    """CREATE OR REPLACE VIEW approvals AS
       SELECT seq, event_time, payload->>'model' AS model, (payload->>'version')::INTEGER AS version,
              'granted' AS decision, actor AS reviewer, actor_source, payload->>'role' AS role,
              NULL::VARCHAR[] AS reasons, NULL AS message, (payload->>'approvals')::INTEGER AS approvals,
              (payload->>'required')::INTEGER AS required, payload->>'key_id' AS key_id,
              payload->>'signature' AS signature, payload->'statement' AS statement,
              payload->>'policy_sha256' AS policy_sha256, payload->>'evidence' AS evidence, event_id
       FROM events WHERE type = 'approval_granted'
       UNION ALL
       SELECT seq, event_time, payload->>'model', (payload->>'version')::INTEGER, 'denied', actor,
              actor_source, NULL, (payload->'reasons')::VARCHAR[], payload->>'message', NULL, NULL,
              NULL, NULL, NULL, payload->>'policy_sha256', payload->>'evidence', event_id
       FROM events WHERE type = 'approval_denied'""",
    """CREATE OR REPLACE VIEW role_events AS
       SELECT seq, event_time, CASE type WHEN 'role_granted' THEN 'granted' ELSE 'revoked' END AS change,
              payload->>'subject' AS subject, payload->>'role' AS role, payload->>'reason' AS reason,
              coalesce((payload->>'bootstrap')::BOOLEAN, false) AS bootstrap, actor AS by_actor, event_id
       FROM events WHERE type IN ('role_granted', 'role_revoked')""",
    """CREATE OR REPLACE VIEW roles AS
       SELECT subject, role, arg_max(by_actor, (event_time, seq)) AS granted_by, max(event_time) AS granted_at
       FROM role_events GROUP BY subject, role HAVING arg_max(change, (event_time, seq)) = 'granted'""",
    """CREATE OR REPLACE VIEW signing_keys AS
       SELECT seq, event_time AS registered_at, actor, payload->>'key_id' AS key_id,
              payload->>'algorithm' AS algorithm, payload->>'public_key' AS public_key, event_id
       FROM events WHERE type = 'key_registered'""",
    """CREATE OR REPLACE VIEW vendors AS
       SELECT payload->>'name' AS vendor, arg_max(payload->>'service', (event_time, seq)) AS service,
              arg_max(payload->'certifications', (event_time, seq)) AS certifications,
              arg_max(payload->'evidence'->>'path', (event_time, seq)) AS evidence_path,
              arg_max(payload->'evidence'->>'fingerprint', (event_time, seq)) AS evidence_fingerprint,
              arg_max(payload->>'contact', (event_time, seq)) AS contact,
              arg_max(actor, (event_time, seq)) AS registered_by,
              max(event_time) AS updated_at, max(seq) AS seq
       FROM events WHERE type = 'vendor_registered' GROUP BY ALL""",
    """CREATE OR REPLACE VIEW vendor_certifications AS
       SELECT v.vendor, c.value->>'name' AS certification,
              TRY_CAST(c.value->>'period_end' AS DATE) AS period_end, c.value->>'issuer' AS issuer,
              v.evidence_fingerprint
       FROM vendors v, json_each(v.certifications) c""",
    """CREATE OR REPLACE VIEW model_vendors AS
       SELECT seq, event_time AS linked_at, payload->>'vendor' AS vendor, payload->>'model' AS model,
              (payload->>'version')::INTEGER AS version, payload->>'purpose' AS purpose,
              actor AS linked_by
       FROM events WHERE type = 'vendor_linked'""",
    """CREATE OR REPLACE VIEW risks AS
       SELECT payload->>'model' AS model, payload->>'risk_id' AS risk_id,
              arg_max(payload->>'category', (event_time, seq)) AS category,
              arg_max(payload->>'description', (event_time, seq)) AS description,
              arg_max(payload->>'likelihood', (event_time, seq)) AS likelihood,
              arg_max(payload->>'impact', (event_time, seq)) AS impact,
              arg_max(payload->>'treatment', (event_time, seq)) AS treatment,
              arg_max(payload->>'owner', (event_time, seq)) AS owner,
              arg_max(TRY_CAST(payload->>'next_review' AS DATE), (event_time, seq)) AS next_review,
              arg_max(payload->>'status', (event_time, seq)) AS status,
              arg_max(actor, (event_time, seq)) AS recorded_by,
              max(event_time) AS updated_at
       FROM events WHERE type = 'risk_recorded' GROUP BY ALL""",
    """CREATE OR REPLACE VIEW dataset_classifications AS
       SELECT payload->>'path' AS path,
       arg_max(payload->>'classification', (event_time, seq)) AS classification,
              arg_max(payload->>'fingerprint', (event_time, seq)) AS fingerprint,
              arg_max(payload->>'reason', (event_time, seq)) AS reason,
              arg_max(actor, (event_time, seq)) AS classified_by,
              max(event_time) AS classified_at
       FROM events WHERE type = 'dataset_classified' GROUP BY ALL""",
    """CREATE OR REPLACE VIEW data_access_grants AS
       SELECT payload->>'subject' AS subject, payload->>'path' AS path,
              arg_max(TRY_CAST(payload->>'expires' AS DATE), (event_time, seq)) AS expires,
              arg_max(actor, (event_time, seq)) AS granted_by, max(event_time) AS granted_at
       FROM events WHERE type IN ('data_access_granted', 'data_access_revoked')
       GROUP BY ALL HAVING arg_max(type, (event_time, seq)) = 'data_access_granted'""",
    # Every read of a classified dataset (matched by path, or by the content fingerprint recorded
    # when it was classified, so a copy stays classified), with the classification in force at
    # the time of the read and whether the reader held a grant then. "When" is event time: the
    # ledger's seq orders ingestion, and events of different processes can be ingested in any
    # order.
    """CREATE OR REPLACE VIEW data_access AS
       WITH cls AS (
         SELECT seq, event_time, payload->>'path' AS cpath, payload->>'fingerprint' AS cfp,
                payload->>'classification' AS classification
         FROM events WHERE type = 'dataset_classified'),
       reads AS (
         SELECT seq, event_time, actor, payload->>'path' AS path, payload->>'fingerprint' AS fingerprint,
                payload->>'via' AS via, session->>'notebook' AS notebook,
                session->>'session_id' AS session_id, payload->>'node' AS cell_node,
                payload->'inputs'->>0 AS dataset_node
         FROM events WHERE type = 'dataset_read'),
       matched AS (
         SELECT r.seq AS rseq, c.cpath,
                arg_max(c.classification, (c.event_time, c.seq)) AS current_class,
                arg_max(c.classification, (c.event_time, c.seq))
                  FILTER (WHERE c.event_time <= r.event_time) AS class_at_read
         FROM reads r JOIN cls c ON c.cpath = r.path OR (c.cfp IS NOT NULL AND c.cfp = r.fingerprint)
         GROUP BY ALL),
       access AS (
         SELECT seq, event_time, payload->>'subject' AS subject, payload->>'path' AS gpath, type,
                TRY_CAST(payload->>'expires' AS DATE) AS expires
         FROM events WHERE type IN ('data_access_granted', 'data_access_revoked')),
       judged AS (
         SELECT m.rseq, m.cpath, m.current_class, m.class_at_read,
                coalesce((SELECT arg_max(a.type = 'data_access_granted'
                                         AND (a.expires IS NULL OR r.event_time::DATE <= a.expires),
                                         (a.event_time, a.seq))
                          FROM access a
                          WHERE a.subject = r.actor AND a.gpath = m.cpath
                                AND a.event_time <= r.event_time), false) AS granted
         FROM matched m JOIN reads r ON r.seq = m.rseq)
       SELECT r.seq, r.event_time AS read_at, r.actor, r.path, r.fingerprint, j.cpath AS classified_path,
              j.current_class AS classification, j.class_at_read AS classification_at_read, j.granted,
              (j.class_at_read IS NOT NULL AND list_contains(""" + _GRANT_REQUIRED + """, j.class_at_read)
                AND NOT j.granted) AS violation,
              r.via, r.notebook, r.session_id, r.cell_node, r.dataset_node
       FROM judged j JOIN reads r ON r.seq = j.rseq""",
    # One row per attribute (and intersection) of each bias test.
    """CREATE OR REPLACE VIEW fairness_results AS
       SELECT e.seq, e.event_time, e.payload->>'model' AS model,
              (e.payload->>'version')::INTEGER AS version, a.value->>'attribute' AS attribute,
              json_array_length(a.value->'groups_compared') AS groups_compared,
              json_array_length(a.value->'groups_excluded') AS groups_excluded,
              (a.value->>'demographic_parity_difference')::DOUBLE AS demographic_parity_difference,
              (a.value->>'demographic_parity_ratio')::DOUBLE AS demographic_parity_ratio,
              (a.value->>'four_fifths_violated')::BOOLEAN AS four_fifths_violated,
              (a.value->>'equalized_odds_difference')::DOUBLE AS equalized_odds_difference,
              (a.value->>'equal_opportunity_difference')::DOUBLE AS equal_opportunity_difference,
              a.value->>'reference_group' AS reference_group,
              (SELECT min((c.value->>'p_value')::DOUBLE) FROM json_each(a.value->'comparisons') c)
                AS min_p_value,
              (SELECT count(*) FROM json_each(a.value->'comparisons') c
                WHERE (c.value->>'significant')::BOOLEAN) AS significant_gaps,
              a.value->>'reason' AS reason, (e.payload->'report'->>'n')::BIGINT AS n,
              (e.payload->'report'->>'min_group_size')::INTEGER AS min_group_size,
              (e.payload->'report'->>'alpha')::DOUBLE AS alpha,
              e.payload->>'verdict' AS verdict, e.payload->'failures' AS failures,
              e.payload->>'policy_sha256' AS policy_sha256, e.payload->'data' AS data, e.actor,
              e.event_id
       FROM events e, json_each(e.payload->'report'->'attributes') a
       WHERE e.type = 'fairness_evaluated'""",
    """CREATE OR REPLACE VIEW fairness_groups AS
       SELECT e.seq, e.payload->>'model' AS model, (e.payload->>'version')::INTEGER AS version,
              g.value->>'attribute' AS attribute, g.value->>'group' AS "group",
              (g.value->>'n')::BIGINT AS n, (g.value->>'selection_rate')::DOUBLE AS selection_rate,
              (g.value->>'true_positive_rate')::DOUBLE AS true_positive_rate,
              (g.value->>'false_positive_rate')::DOUBLE AS false_positive_rate,
              (g.value->>'accuracy')::DOUBLE AS accuracy, (g.value->>'base_rate')::DOUBLE AS base_rate,
              (g.value->>'sufficient')::BOOLEAN AS sufficient, g.value->>'reason' AS reason, e.event_id
       FROM events e, json_each(e.payload->'report'->'groups') g
       WHERE e.type = 'fairness_evaluated'""",
    # One row per feature (and one for model scores) of each drift test.
    """CREATE OR REPLACE VIEW drift_results AS
       WITH tests AS (
         SELECT e.seq, e.event_time, e.payload, e.actor, e.event_id, f.value AS r, false AS is_scores
         FROM events e, json_each(e.payload->'report'->'features') f WHERE e.type = 'drift_evaluated'
         UNION ALL
         SELECT e.seq, e.event_time, e.payload, e.actor, e.event_id, e.payload->'report'->'scores', true
         FROM events e WHERE e.type = 'drift_evaluated'
              AND json_type(e.payload->'report'->'scores') = 'OBJECT')
       SELECT seq, event_time, payload->>'model' AS model, (payload->>'version')::INTEGER AS version,
              CASE WHEN is_scores THEN '(scores)' ELSE r->>'feature' END AS feature,
              CASE WHEN is_scores THEN 'scores' ELSE r->>'kind' END AS kind,
              r->>'test' AS test, (r->>'statistic')::DOUBLE AS statistic,
              (r->>'p_value')::DOUBLE AS p_value, (r->>'test_alpha')::DOUBLE AS test_alpha,
              CASE WHEN is_scores THEN 'psi' ELSE r->>'effect_size_name' END AS effect_size_name,
              (CASE WHEN is_scores THEN r->>'psi' ELSE r->>'effect_size' END)::DOUBLE AS effect_size,
              (r->>'threshold')::DOUBLE AS threshold, r->>'threshold_source' AS threshold_source,
              r->>'decided_by' AS decided_by, (r->>'drifted')::BOOLEAN AS drifted,
              (r->>'bins')::INTEGER AS bins, (r->>'log_base')::DOUBLE AS log_base,
              (r->>'n_reference')::BIGINT AS n_reference, (r->>'n_current')::BIGINT AS n_current,
              (payload->'report'->>'drifted')::BOOLEAN AS dataset_drifted,
              (payload->'report'->>'alpha')::DOUBLE AS alpha, payload->>'verdict' AS verdict,
              payload->>'policy_sha256' AS policy_sha256, payload->'data' AS data, actor, event_id
       FROM tests""",
    # Everything an auditor should look at: failed rules of recorded checks and tests, denied
    # approvals, reads of classified data without a grant, and vendors without a current
    # attestation (judged today against the latest recorded policy).
    """CREATE OR REPLACE VIEW findings AS
       WITH pol AS (SELECT payload->'policy' AS p FROM events WHERE type = 'policy_recorded'
                    ORDER BY seq DESC LIMIT 1),
       accepted AS (SELECT lower(unnest(coalesce((SELECT (p->'vendors'->'accepted_certifications')
                              ::VARCHAR[] FROM pol), ['SOC 2 Type II', 'ISO 27001']))) AS name),
       grace AS (SELECT coalesce((SELECT (p->'vendors'->>'max_age_days')::INTEGER FROM pol), 365) AS days),
       current_vendor AS (
         SELECT c.vendor, bool_or(lower(c.certification) IN (SELECT name FROM accepted)
                                  AND c.period_end + to_days((SELECT days FROM grace)) >= current_date)
                  AS current,
                max(c.period_end) FILTER (WHERE lower(c.certification) IN (SELECT name FROM accepted))
                  AS last_end
         FROM vendors v LEFT JOIN vendor_certifications c USING (vendor) GROUP BY c.vendor)
       SELECT e.seq, e.event_time, 'policy_check' AS origin, e.payload->>'model' AS model,
              (e.payload->>'version')::INTEGER AS version, f.value->>'code' AS code,
              f.value->>'status' AS status, f.value->>'subject' AS subject,
              f.value->>'message' AS message, f.value->>'remedy' AS remedy, e.actor,
              e.payload->>'policy_sha256' AS policy_sha256, e.event_id
       FROM events e, json_each(e.payload->'findings') f
       WHERE e.type = 'policy_evaluated' AND (f.value->>'status') IN ('fail', 'warn')
       UNION ALL
       SELECT e.seq, e.event_time, 'fairness', e.payload->>'model', (e.payload->>'version')::INTEGER,
              f.value->>'rule', 'fail', f.value->>'attribute', f.value->>'message', NULL, e.actor,
              e.payload->>'policy_sha256', e.event_id
       FROM events e, json_each(e.payload->'failures') f WHERE e.type = 'fairness_evaluated'
       UNION ALL
       SELECT e.seq, e.event_time, 'drift', e.payload->>'model', (e.payload->>'version')::INTEGER,
              'drift', 'fail', f.value->>'feature', f.value->>'message', NULL, e.actor,
              e.payload->>'policy_sha256', e.event_id
       FROM events e, json_each(e.payload->'failures') f WHERE e.type = 'drift_evaluated'
       UNION ALL
       SELECT e.seq, e.event_time, 'approval', e.payload->>'model', (e.payload->>'version')::INTEGER,
              'approval_denied', 'fail', array_to_string((e.payload->'reasons')::VARCHAR[], ', '),
              e.payload->>'message', NULL, e.actor, e.payload->>'policy_sha256', e.event_id
       FROM events e WHERE e.type = 'approval_denied'
       UNION ALL
       SELECT d.seq, d.read_at, 'data_access', NULL, NULL, 'restricted_read_without_grant', 'fail',
              d.path, d.actor || ' read ' || d.classification_at_read || ' data ' || d.path
                || ' without a recorded grant', 'nbgov data grant ' || d.actor || ' ' || d.classified_path,
              d.actor, NULL, NULL
       FROM data_access d WHERE d.violation
       UNION ALL
       SELECT v.seq, v.updated_at, 'vendor', NULL, NULL, 'vendor_attestation', 'fail', v.vendor,
              'vendor ' || v.vendor || CASE WHEN c.last_end IS NULL
                THEN ': no accepted attestation recorded'
                ELSE ': attestation expired (latest period ended ' || c.last_end::VARCHAR || ')' END,
              'nbgov vendor register ' || v.vendor || ' --cert ...', v.registered_by, NULL, NULL
       FROM vendors v JOIN current_vendor c USING (vendor) WHERE NOT coalesce(c.current, false)""",
)


_REVIEW_VIEWS = (
    """CREATE OR REPLACE VIEW review_runs AS
       SELECT s.payload->>'run_id' AS run_id, s.event_time AS started_at, f.event_time AS finished_at,
              s.payload->>'notebook' AS notebook, s.payload->>'notebook_sha256' AS notebook_sha256,
              s.payload->'parameters' AS parameters, s.payload->>'job' AS job,
              TRY_CAST(s.payload->>'scheduled_for' AS TIMESTAMPTZ) AS scheduled_for,
              (s.payload->>'attempt')::INTEGER AS attempt,
              coalesce(f.payload->>'status', 'running') AS status,
              (f.payload->>'cell_index')::INTEGER AS cell_index, f.payload->>'error_type' AS error_type,
              f.payload->>'error_message' AS error_message,
              (f.payload->>'cells_executed')::INTEGER AS cells_executed,
              (f.payload->>'cells_total')::INTEGER AS cells_total,
              (f.payload->>'duration_us')::BIGINT / 1e6 AS seconds,
              (s.payload->>'timeout_s')::DOUBLE AS timeout_s, s.payload->>'output' AS output,
              f.payload->>'output_fingerprint' AS output_fingerprint, s.payload->>'host' AS host,
              s.actor, s.seq
       FROM events s
       LEFT JOIN events f ON f.type = 'review_run_finished'
            AND (f.payload->>'run_id') = (s.payload->>'run_id')
       WHERE s.type = 'review_run_started'""",
    """CREATE OR REPLACE VIEW schedule_events AS
       SELECT seq, event_time, CASE type WHEN 'schedule_set' THEN 'set' ELSE 'removed' END AS change,
              payload->>'job' AS job, payload->>'notebook' AS notebook, payload->>'cron' AS cron,
              payload->>'tz' AS tz, payload->'parameters' AS parameters, payload->>'catch_up' AS catch_up,
              (payload->>'retries')::INTEGER AS retries, (payload->>'timeout_s')::DOUBLE AS timeout_s,
              (payload->>'grace_s')::DOUBLE AS grace_s,
              TRY_CAST(payload->>'effective_from' AS TIMESTAMPTZ) AS effective_from,
              payload->>'reason' AS reason, actor, event_id
       FROM events WHERE type IN ('schedule_set', 'schedule_removed')""",
    """CREATE OR REPLACE VIEW schedules AS
       SELECT job, arg_max(notebook, (event_time, seq)) AS notebook, arg_max(cron, (event_time, seq)) AS cron,
              arg_max(tz, (event_time, seq)) AS tz,
              arg_max(parameters, (event_time, seq)) AS parameters,
              arg_max(catch_up, (event_time, seq)) AS catch_up,
              arg_max(retries, (event_time, seq)) AS retries,
              arg_max(timeout_s, (event_time, seq)) AS timeout_s,
              arg_max(grace_s, (event_time, seq)) AS grace_s,
              arg_max(effective_from, (event_time, seq)) AS effective_from,
              arg_max(actor, (event_time, seq)) AS changed_by, max(event_time) AS changed_at
       FROM schedule_events GROUP BY job HAVING arg_max(change, (event_time, seq)) = 'set'""",
    """CREATE OR REPLACE VIEW missed_runs AS
       SELECT seq, event_time AS detected_at, payload->>'job' AS job,
              TRY_CAST(payload->>'scheduled_for' AS TIMESTAMPTZ) AS scheduled_for,
              (payload->>'grace_s')::DOUBLE AS grace_s, payload->>'catch_up' AS catch_up, actor, event_id
       FROM events WHERE type = 'review_missed'""",
    """CREATE OR REPLACE VIEW alerts AS
       WITH deliveries AS (
         SELECT payload->>'alert' AS alert, payload->>'sink' AS sink,
                arg_max(type, (event_time, seq)) AS last_type,
                max((payload->>'attempt')::INTEGER) AS attempts,
                arg_max(payload->>'error', (event_time, seq)) AS last_error
         FROM events WHERE type IN ('alert_delivered', 'alert_delivery_failed') GROUP BY ALL)
       SELECT a.seq, a.event_time AS raised_at, a.payload->>'key' AS key, a.payload->>'reason' AS reason,
              a.payload->>'job' AS job, a.payload->>'run_id' AS run_id, a.payload->>'message' AS message,
              (a.payload->'sinks')::VARCHAR[] AS sinks,
              count(d.sink) FILTER (WHERE d.last_type = 'alert_delivered') AS delivered,
              list(d.sink ORDER BY d.sink) FILTER (WHERE d.last_type = 'alert_delivery_failed') AS failing,
              a.event_id
       FROM events a LEFT JOIN deliveries d ON d.alert = a.event_id
       WHERE a.type = 'alert_raised'
       GROUP BY a.seq, a.event_time, a.payload, a.event_id""",
    """CREATE OR REPLACE VIEW alert_deliveries AS
       SELECT seq, event_time, payload->>'alert' AS alert, payload->>'sink' AS sink,
              CASE type WHEN 'alert_delivered' THEN 'delivered' ELSE 'failed' END AS outcome,
              (payload->>'attempt')::INTEGER AS attempt, payload->>'error' AS error,
              TRY_CAST(payload->>'retry_after' AS TIMESTAMPTZ) AS retry_after, actor
       FROM events WHERE type IN ('alert_delivered', 'alert_delivery_failed')""",
)

# Reviewers' decisions: rejections join the approvals view; requests get a view of their own.
_DECISION_VIEWS = (
    """CREATE OR REPLACE VIEW approvals AS
       SELECT seq, event_time, payload->>'model' AS model, (payload->>'version')::INTEGER AS version,
              'granted' AS decision, actor AS reviewer, actor_source, payload->>'role' AS role,
              NULL::VARCHAR[] AS reasons, NULL AS message, (payload->>'approvals')::INTEGER AS approvals,
              (payload->>'required')::INTEGER AS required, payload->>'key_id' AS key_id,
              payload->>'signature' AS signature, payload->'statement' AS statement,
              payload->>'policy_sha256' AS policy_sha256, payload->>'evidence' AS evidence, event_id
       FROM events WHERE type = 'approval_granted'
       UNION ALL
       SELECT seq, event_time, payload->>'model', (payload->>'version')::INTEGER, 'rejected', actor,
              actor_source, payload->>'role', NULL, payload->>'reason', NULL, NULL, payload->>'key_id',
              payload->>'signature', payload->'statement', payload->>'policy_sha256',
              payload->>'evidence', event_id
       FROM events WHERE type = 'approval_rejected'
       UNION ALL
       SELECT seq, event_time, payload->>'model', (payload->>'version')::INTEGER,
              CASE WHEN (payload->>'action') = 'reject' THEN 'rejection denied' ELSE 'denied' END, actor,
              actor_source, NULL, (payload->'reasons')::VARCHAR[], payload->>'message', NULL, NULL,
              NULL, NULL, NULL, payload->>'policy_sha256', payload->>'evidence', event_id
       FROM events WHERE type = 'approval_denied'""",
    """CREATE OR REPLACE VIEW approval_requests AS
       SELECT r.seq, r.event_time AS requested_at, r.payload->>'model' AS model,
              (r.payload->>'version')::INTEGER AS version, r.actor AS requested_by,
              r.payload->>'note' AS note,
              (SELECT arg_min(a.decision, a.seq) FROM approvals a
                WHERE a.model = (r.payload->>'model') AND a.version = (r.payload->>'version')::INTEGER
                  AND a.seq > r.seq AND a.decision IN ('granted', 'rejected')) AS decision,
              r.event_id
       FROM events r WHERE r.type = 'approval_requested'""",
)

MIGRATIONS = (
    *MIGRATIONS,
    Migration(
        3,
        "capture views: sessions, cells, datasets, models, metrics, lineage",
        _CAPTURE_VIEWS,
    ),
    Migration(
        4,
        "governance views: policies, evaluations, model lifecycle, approvals, roles, vendors, "
        "risks, data access",
        _GOVERNANCE_VIEWS,
    ),
    Migration(
        5,
        "review views: review runs, schedules, missed runs, alerts",
        _REVIEW_VIEWS,
    ),
    Migration(
        6,
        "reviewer decisions: rejections in approvals, approval requests",
        _DECISION_VIEWS,
    ),
    Migration(
        7,
        "Merkle tree (RFC 9162): complete subtrees kept at ingest",
        ("""CREATE TABLE merkle_nodes (
            level TINYINT NOT NULL,
            idx BIGINT NOT NULL,
            hash BLOB NOT NULL)""",),
        then=_backfill_merkle,
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
