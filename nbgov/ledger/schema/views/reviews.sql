-- Reviews: review runs, schedules and their history, missed runs, alerts and their deliveries.
-- Documented SQL surface (README lists every view and column; a test keeps it true). Views are
-- applied in the order of the files ledger, capture, lineage, governance, reviews, and again
-- whenever this text changes (nbgov.ledger.schema.views); they are never defined in migrations.

CREATE OR REPLACE VIEW review_runs AS
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
  WHERE s.type = 'review_run_started';

CREATE OR REPLACE VIEW schedule_events AS
  SELECT seq, event_time, CASE type WHEN 'schedule_set' THEN 'set' ELSE 'removed' END AS change,
         payload->>'job' AS job, payload->>'notebook' AS notebook, payload->>'cron' AS cron,
         payload->>'tz' AS tz, payload->'parameters' AS parameters, payload->>'catch_up' AS catch_up,
         (payload->>'retries')::INTEGER AS retries, (payload->>'timeout_s')::DOUBLE AS timeout_s,
         (payload->>'grace_s')::DOUBLE AS grace_s,
         TRY_CAST(payload->>'effective_from' AS TIMESTAMPTZ) AS effective_from,
         payload->>'reason' AS reason, actor, event_id
  FROM events WHERE type IN ('schedule_set', 'schedule_removed');

CREATE OR REPLACE VIEW schedules AS
  SELECT job, arg_max(notebook, seq) AS notebook, arg_max(cron, seq) AS cron,
         arg_max(tz, seq) AS tz,
         arg_max(parameters, seq) AS parameters,
         arg_max(catch_up, seq) AS catch_up,
         arg_max(retries, seq) AS retries,
         arg_max(timeout_s, seq) AS timeout_s,
         arg_max(grace_s, seq) AS grace_s,
         arg_max(effective_from, seq) AS effective_from,
         arg_max(actor, seq) AS changed_by, arg_max(event_time, seq) AS changed_at
  FROM schedule_events GROUP BY job HAVING arg_max(change, seq) = 'set';

CREATE OR REPLACE VIEW missed_runs AS
  SELECT seq, event_time AS detected_at, payload->>'job' AS job,
         TRY_CAST(payload->>'scheduled_for' AS TIMESTAMPTZ) AS scheduled_for,
         (payload->>'grace_s')::DOUBLE AS grace_s, payload->>'catch_up' AS catch_up, actor, event_id
  FROM events WHERE type = 'review_missed';

CREATE OR REPLACE VIEW alerts AS
  WITH deliveries AS (
    SELECT payload->>'alert' AS alert, payload->>'sink' AS sink,
           arg_max(type, seq) AS last_type,
           max((payload->>'attempt')::INTEGER) AS attempts,
           arg_max(payload->>'error', seq) AS last_error
    FROM events WHERE type IN ('alert_delivered', 'alert_delivery_failed') GROUP BY ALL)
  SELECT a.seq, a.event_time AS raised_at, a.payload->>'key' AS key, a.payload->>'reason' AS reason,
         a.payload->>'job' AS job, a.payload->>'run_id' AS run_id, a.payload->>'message' AS message,
         (a.payload->'sinks')::VARCHAR[] AS sinks,
         count(d.sink) FILTER (WHERE d.last_type = 'alert_delivered') AS delivered,
         list(d.sink ORDER BY d.sink) FILTER (WHERE d.last_type = 'alert_delivery_failed') AS failing,
         a.event_id
  FROM events a LEFT JOIN deliveries d ON d.alert = a.event_id
  WHERE a.type = 'alert_raised'
  GROUP BY a.seq, a.event_time, a.payload, a.event_id;

CREATE OR REPLACE VIEW alert_deliveries AS
  SELECT seq, event_time, payload->>'alert' AS alert, payload->>'sink' AS sink,
         CASE type WHEN 'alert_delivered' THEN 'delivered' ELSE 'failed' END AS outcome,
         (payload->>'attempt')::INTEGER AS attempt, payload->>'error' AS error,
         TRY_CAST(payload->>'retry_after' AS TIMESTAMPTZ) AS retry_after, actor
  FROM events WHERE type IN ('alert_delivered', 'alert_delivery_failed');
