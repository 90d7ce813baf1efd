-- What notebooks did: sessions, cells, datasets read and written, models fitted, metrics,
-- parameters, predictions, and capture's own failures.
-- Documented SQL surface (README lists every view and column; a test keeps it true). Views are
-- applied in the order of the files ledger, capture, lineage, governance, reviews, and again
-- whenever this text changes (nbgov.ledger.schema.views); they are never defined in migrations.

CREATE OR REPLACE VIEW sessions AS
  SELECT s.session->>'session_id' AS session_id, s.seq, s.event_time AS started_at,
         -- a lost session (its kernel killed) ended at the last event of it the ledger holds
         CASE e.type WHEN 'session_lost' THEN (e.payload->>'last_event_at')::TIMESTAMPTZ
                     ELSE e.event_time END AS ended_at,
         CASE e.type WHEN 'session_lost' THEN 'lost' ELSE e.payload->>'reason' END AS end_reason,
         CASE WHEN e.type IS NULL THEN 'open' WHEN e.type = 'session_lost' THEN 'ended: lost'
              ELSE 'ended' END AS status,
         CASE e.type WHEN 'session_lost' THEN e.payload->>'last_event_type' END AS last_event_type,
         (e.payload->>'cells')::BIGINT AS cells, s.actor, s.actor_source,
         s.payload->>'host' AS host, s.payload->>'python' AS python,
         s.payload->>'kernel_id' AS kernel_id, s.payload->>'notebook' AS notebook,
         s.payload->>'notebook_sha256' AS notebook_sha256,
         s.payload->>'git_commit' AS git_commit, (s.payload->>'git_dirty')::BOOLEAN AS git_dirty,
         s.payload->>'packages_sha256' AS packages_sha256,
         s.payload->>'nbgov_version' AS nbgov_version
  FROM events s
  LEFT JOIN (SELECT * FROM events WHERE type IN ('session_ended', 'session_lost')
             QUALIFY row_number() OVER (PARTITION BY session->>'session_id' ORDER BY seq) = 1) e
       ON (e.session->>'session_id') = (s.session->>'session_id')
  WHERE s.type = 'session_started';

CREATE OR REPLACE VIEW cells AS
  SELECT seq, event_time, session->>'session_id' AS session_id, payload->>'node' AS node,
         payload->>'cell_id' AS cell_id, (payload->>'execution_count')::INTEGER AS execution_count,
         session->>'notebook' AS notebook, actor, (payload->>'ok')::BOOLEAN AS ok,
         payload->>'error_type' AS error_type, (payload->>'duration_us')::BIGINT AS duration_us,
         payload->>'started_at' AS started_at, payload->>'source_sha256' AS source_sha256,
         payload->>'source' AS source, (payload->'uses')::VARCHAR[] AS uses,
         (payload->'defines')::VARCHAR[] AS defines, (payload->'inputs')::VARCHAR[] AS inputs,
         (payload->>'redactions')::INTEGER AS redactions
  FROM events WHERE type = 'cell_executed';

-- cell_node is the cell execution the read or write happened in (NULL outside a cell): the
-- event's cell run, else (events recorded without one) a read's own node when it is a cell. A
-- write's inputs are what its data came from, never its cell. sql: the (redacted) DuckDB
-- statement or relation query of the read or write (dataset events of schema version 2).
CREATE OR REPLACE VIEW datasets AS
  SELECT seq, event_time, CASE type WHEN 'dataset_read' THEN 'read' ELSE 'write' END AS direction,
         payload->>'path' AS path, payload->>'fingerprint' AS fingerprint,
         payload->>'algorithm' AS algorithm, payload->>'coverage' AS coverage,
         (payload->>'size_bytes')::BIGINT AS size_bytes, (payload->>'rows')::BIGINT AS rows,
         payload->'columns' AS columns, payload->>'via' AS via, payload->>'sql' AS sql,
         CASE type WHEN 'dataset_read' THEN (payload->'inputs'->>0) ELSE (payload->>'node') END
             AS dataset_node,
         coalesce(CASE WHEN starts_with(session->>'cell_run', 'cell:') THEN session->>'cell_run' END,
                  CASE WHEN type = 'dataset_read' AND starts_with(payload->>'node', 'cell:')
                       THEN payload->>'node' END) AS cell_node,
         session->>'session_id' AS session_id, session->>'notebook' AS notebook, actor
  FROM events WHERE type IN ('dataset_read', 'dataset_written');

CREATE OR REPLACE VIEW dataset_declarations AS
  SELECT seq, event_time, payload->>'path' AS path, payload->>'fingerprint' AS fingerprint,
         payload->>'node' AS dataset_node, payload->>'source' AS source,
         payload->>'license' AS license, payload->>'owner' AS owner,
         (payload->'contains_pii')::VARCHAR[] AS contains_pii,
         payload->>'description' AS description, actor
  FROM events WHERE type = 'dataset_declared';

-- One row per model fit, with the version the ledger numbered it (model_fits) and its node.
CREATE OR REPLACE VIEW models AS
  SELECT e.seq, e.event_time, e.payload->>'model' AS model, f.version, f.node,
         e.payload->>'estimator' AS estimator, e.payload->'params' AS params,
         (e.payload->>'n_samples')::BIGINT AS n_samples, (e.payload->>'n_features')::BIGINT AS n_features,
         (e.payload->'features')::VARCHAR[] AS features, e.payload->'data' AS training_data,
         e.payload->>'model_fingerprint' AS model_fingerprint,
         (e.payload->>'duration_us')::BIGINT AS duration_us,
         (SELECT list(lineage_node(i) ORDER BY i) FROM unnest((e.payload->'inputs')::VARCHAR[]) u(i))
           AS inputs,
         e.payload->>'name_source' AS name_source, e.session->>'session_id' AS session_id,
         e.session->>'cell_run' AS cell_node, e.session->>'notebook' AS notebook, e.actor,
         e.event_id AS fit_event_id
  FROM events e LEFT JOIN model_fits f ON f.fit_event_id = e.event_id
  WHERE e.type = 'model_fitted';

CREATE OR REPLACE VIEW metrics AS
  SELECT e.seq, e.event_time, fit_model(e.payload) AS model,
         fit_version(e.payload, e.seq) AS version, m.key AS metric,
         TRY_CAST(m.value->>'$' AS DOUBLE) AS value, m.value AS value_json,
         e.payload->>'dataset' AS dataset, e.payload->>'via' AS via,
         'event:' || e.event_id AS node, e.session->>'session_id' AS session_id, e.actor
  FROM events e, json_each(e.payload->'metrics') m
  WHERE e.type = 'metrics_logged';

CREATE OR REPLACE VIEW params AS
  SELECT seq, event_time, fit_model(payload) AS model, fit_version(payload, seq) AS version,
         payload->'params' AS params, session->>'session_id' AS session_id, actor
  FROM events WHERE type = 'params_logged';

CREATE OR REPLACE VIEW predictions AS
  SELECT seq, event_time, fit_model(payload) AS model, fit_version(payload, seq) AS version,
         payload->>'method' AS method, (payload->>'rows')::BIGINT AS rows,
         payload->>'input_fingerprint' AS input_fingerprint,
         payload->>'output_fingerprint' AS output_fingerprint,
         session->>'session_id' AS session_id, actor
  FROM events WHERE type = 'prediction_made';

-- One row per hyperparameter search, with the model version of its refitted best estimator.
CREATE OR REPLACE VIEW model_searches AS
  SELECT e.seq, e.event_time, e.payload->>'model' AS model, f.version, e.payload->>'search' AS search,
         e.payload->>'estimator' AS estimator, (e.payload->>'candidates')::INTEGER AS candidates,
         (e.payload->>'folds')::INTEGER AS folds, e.payload->'space' AS space,
         e.payload->'scoring' AS scoring, e.payload->'best_params' AS best_params,
         TRY_CAST(e.payload->>'best_score' AS DOUBLE) AS best_score, e.payload->'results' AS results,
         e.session->>'session_id' AS session_id, e.actor, e.event_id
  FROM events e
  LEFT JOIN events b ON b.type = 'model_fitted' AND (b.payload->>'search') = e.event_id
  LEFT JOIN model_fits f ON f.fit_event_id = b.event_id
  WHERE e.type = 'model_searched';

-- One row per cross-validation: every score per fold (scores, by name) and the test score's
-- folds (test_scores).
CREATE OR REPLACE VIEW cross_validations AS
  SELECT seq, event_time, payload->>'function' AS function, payload->>'estimator' AS estimator,
         payload->'params' AS params, (payload->>'folds')::INTEGER AS folds,
         payload->'scoring' AS scoring, payload->'scores' AS scores,
         payload->'scores'->'test_score' AS test_scores, payload->'means' AS means,
         fit_model(payload) AS model, fit_version(payload, seq) AS version,
         session->>'session_id' AS session_id, actor, event_id
  FROM events WHERE type = 'cross_validated';

-- Every model file saved or loaded, with the recorded version it holds (see model_loads).
CREATE OR REPLACE VIEW model_files AS
  SELECT e.seq, e.event_time, 'saved' AS direction, e.payload->>'path' AS path,
         e.payload->>'file_sha256' AS file_sha256, (e.payload->>'size_bytes')::BIGINT AS size_bytes,
         e.payload->>'model_fingerprint' AS model_fingerprint, e.payload->>'estimator' AS estimator,
         fit_model(e.payload) AS model, fit_version(e.payload, e.seq) AS version,
         NULL::VARCHAR AS matched_by, e.payload->>'via' AS via, e.session->>'session_id' AS session_id,
         e.session->>'notebook' AS notebook, e.actor, e.event_id
  FROM events e WHERE e.type = 'model_saved'
  UNION ALL
  SELECT e.seq, e.event_time, 'loaded', e.payload->>'path', e.payload->>'file_sha256',
         (e.payload->>'size_bytes')::BIGINT, e.payload->>'model_fingerprint', e.payload->>'estimator',
         l.model, l.version, l.matched_by, e.payload->>'via', e.session->>'session_id',
         e.session->>'notebook', e.actor, e.event_id
  FROM events e LEFT JOIN model_loads l ON l.load_event_id = e.event_id
  WHERE e.type = 'model_loaded';

-- Models loaded from files that match no recorded version: trained outside the record.
CREATE OR REPLACE VIEW unrecorded_models AS
  SELECT seq, event_time AS loaded_at, path, file_sha256, model_fingerprint, estimator, via,
         session_id, notebook, actor, event_id,
         'unrecorded:' || coalesce(file_sha256, event_id) AS node
  FROM model_files WHERE direction = 'loaded' AND version IS NULL;

CREATE OR REPLACE VIEW capture_failures AS
  SELECT seq, event_time, payload->>'hook' AS hook, payload->>'error_type' AS error_type,
         payload->>'message' AS message, session->>'session_id' AS session_id, actor
  FROM events WHERE type = 'capture_failed';
