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

-- Every model loaded from a file, and the recorded version it is: the one this session knew
-- (payload.fit), else the one saved to a file with the same SHA-256, else the fit with the same
-- model fingerprint (a copy saved and loaded elsewhere). NULL version: an unrecorded model.
CREATE OR REPLACE VIEW model_loads AS
  WITH loads AS (SELECT seq, event_id, payload FROM events WHERE type = 'model_loaded'),
  saves AS (
    SELECT s.seq, s.payload->>'file_sha256' AS file_sha256, n.model, n.version
    FROM events s
    JOIN model_version_numbers n ON n.fit_event_id = (s.payload->>'fit')
      OR (n.model = (s.payload->>'model') AND n.version = TRY_CAST(s.payload->>'version' AS INTEGER))
    WHERE s.type = 'model_saved'),
  fitted AS (
    SELECT n.model, n.version, n.seq, f.payload->>'model_fingerprint' AS model_fingerprint
    FROM events f JOIN model_version_numbers n ON n.fit_event_id = f.event_id
    WHERE f.type = 'model_fitted')
  SELECT l.event_id AS load_event_id, l.seq, l.payload->>'file_sha256' AS file_sha256,
         coalesce(known.model, by_file.model, by_state.model) AS model,
         coalesce(known.version, by_file.version, by_state.version) AS version,
         CASE WHEN known.version IS NOT NULL THEN 'session'
              WHEN by_file.version IS NOT NULL THEN 'file'
              WHEN by_state.version IS NOT NULL THEN 'model_fingerprint' END AS matched_by
  FROM loads l
  LEFT JOIN model_version_numbers known ON known.fit_event_id = (l.payload->>'fit')
  LEFT JOIN LATERAL (SELECT model, version FROM saves s WHERE s.file_sha256 = (l.payload->>'file_sha256')
                     ORDER BY s.seq DESC LIMIT 1) by_file ON true
  LEFT JOIN LATERAL (SELECT model, version FROM fitted f
                     WHERE f.model_fingerprint = (l.payload->>'model_fingerprint')
                     ORDER BY f.seq DESC LIMIT 1) by_state ON true;

-- The model version an event is about: its recorded version; else the number of the fit it
-- names (payload.fit: the fit's event id, for events captured before the version was known, or
-- the load of the model from a file); else, for an event naming only a model, that model's
-- latest version when it was recorded.
CREATE OR REPLACE MACRO fit_version(event_payload, event_seq) AS
  coalesce(TRY_CAST(event_payload->>'version' AS INTEGER),
           (SELECT numbered.version FROM model_version_numbers numbered
            WHERE numbered.fit_event_id = (event_payload->>'fit')),
           (SELECT loaded.version FROM model_loads loaded
            WHERE loaded.load_event_id = (event_payload->>'fit')),
           CASE WHEN (event_payload->>'fit') IS NULL THEN
             (SELECT max(numbered.version) FROM model_version_numbers numbered
              WHERE numbered.model = (event_payload->>'model') AND numbered.seq < event_seq) END);

-- The model an event is about: the recorded model a loaded file turned out to be, else the name
-- the event gives.
CREATE OR REPLACE MACRO fit_model(event_payload) AS
  coalesce((SELECT loaded.model FROM model_loads loaded
            WHERE loaded.load_event_id = (event_payload->>'fit')),
           event_payload->>'model');

-- A lineage node as queries see it: a fit (fit:<event id>) becomes model:<name>@<version>, and
-- a model loaded from a file that matches no recorded version unrecorded:<file sha256>.
CREATE OR REPLACE MACRO lineage_node(node_id) AS
  CASE WHEN starts_with(node_id, 'fit:')
       THEN coalesce((SELECT 'model:' || numbered.model || '@' || numbered.version
                      FROM model_version_numbers numbered
                      WHERE numbered.fit_event_id = substr(node_id, 5)),
                     (SELECT CASE WHEN loaded.version IS NOT NULL
                                  THEN 'model:' || loaded.model || '@' || loaded.version
                                  ELSE 'unrecorded:' || coalesce(loaded.file_sha256, loaded.load_event_id) END
                      FROM model_loads loaded WHERE loaded.load_event_id = substr(node_id, 5)),
                     node_id)
       ELSE node_id END;
