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

-- Every model fit with the version the ledger numbered it at ingest (unique and gapless per
-- model name), and its lineage node.
CREATE OR REPLACE VIEW model_fits AS
  SELECT fit_event_id, model, version, seq, 'model:' || model || '@' || version AS node
  FROM model_version_numbers;

-- The model version an event is about: its recorded version; else the number of the fit it
-- names (payload.fit: the fit's event id, for events captured before the version was known);
-- else, for an event naming only a model, that model's latest version when it was recorded.
CREATE OR REPLACE MACRO fit_version(event_payload, event_seq) AS
  coalesce(TRY_CAST(event_payload->>'version' AS INTEGER),
           (SELECT numbered.version FROM model_version_numbers numbered
            WHERE numbered.fit_event_id = (event_payload->>'fit')),
           CASE WHEN (event_payload->>'fit') IS NULL THEN
             (SELECT max(numbered.version) FROM model_version_numbers numbered
              WHERE numbered.model = (event_payload->>'model') AND numbered.seq < event_seq) END);

-- A lineage node as queries see it: a fit (fit:<event id>) becomes model:<name>@<version>.
CREATE OR REPLACE MACRO lineage_node(node_id) AS
  CASE WHEN starts_with(node_id, 'fit:')
       THEN coalesce((SELECT 'model:' || numbered.model || '@' || numbered.version
                      FROM model_version_numbers numbered
                      WHERE numbered.fit_event_id = substr(node_id, 5)), node_id)
       ELSE node_id END;
