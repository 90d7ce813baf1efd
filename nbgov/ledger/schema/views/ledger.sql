-- The ledger's own views: every event with its envelope fields and payload, and how far each
-- spool segment has been ingested. Every other view reads `events`.
-- Documented SQL surface (README lists every view and column; a test keeps it true). Views are
-- applied in the order of the files ledger, capture, lineage, governance, reviews, and again
-- whenever this text changes (nbgov.ledger.schema.views); they are never defined in migrations.

CREATE OR REPLACE VIEW events AS
  SELECT seq, ingested_at, event_time, type, version, actor, actor_source, event_id,
         json_extract(decode(body), '$.session') AS session,
         json_extract(decode(body), '$.payload') AS payload,
         lower(hex(leaf_hash)) AS leaf_hash,
         lower(hex(chain_hash)) AS chain_hash
  FROM event_log;

CREATE OR REPLACE VIEW spool_cursors AS
  SELECT segment, max(batch) AS batch, arg_max(lines, batch) AS lines,
         arg_max(byte_offset, batch) AS byte_offset,
         arg_max(last_line_hash, batch) AS last_line_hash
  FROM spool_progress GROUP BY segment;
