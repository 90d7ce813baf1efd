-- The lineage graph: nodes (datasets, cells, variables, models, evaluations, predictions) and
-- edges input -> node, with recursive upstream/downstream macros over them.
-- Documented SQL surface (README lists every view and column; a test keeps it true). Views are
-- applied in the order of the files ledger, capture, lineage, governance, reviews, and again
-- whenever this text changes (nbgov.ledger.schema.views); they are never defined in migrations.

-- Every event with payload.inputs adds edges input -> node (its payload.node, or the event),
-- and every variable a cell bound adds edges input -> variable.
CREATE OR REPLACE VIEW lineage_edges AS
  SELECT lineage_node(src) AS src, lineage_node(dst) AS dst, kind, seq, event_time FROM (
    SELECT i.value->>'$' AS src,
           CASE WHEN e.type = 'model_fitted' THEN 'fit:' || e.event_id
                ELSE coalesce(e.payload->>'node', 'event:' || e.event_id) END AS dst,
           e.type AS kind, e.seq, e.event_time
    FROM events e, json_each(e.payload->'inputs') i
    WHERE json_type(e.payload->'inputs') = 'ARRAY'
    UNION ALL
    SELECT i.value->>'$', b.value->>'node', 'binding', e.seq, e.event_time
    FROM events e, json_each(e.payload->'bindings') b, json_each(b.value->'inputs') i
    WHERE e.type = 'cell_executed' AND json_type(e.payload->'bindings') = 'ARRAY');

CREATE OR REPLACE VIEW lineage_nodes AS
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
    SELECT b.value->>'node', coalesce(b.value->>'kind', 'variable'),
           (b.value->>'name') || CASE WHEN (b.value->>'kind') = 'function' THEN '()' ELSE '' END
             || ' (' || coalesce(regexp_extract(e.session->>'notebook',
             '[^/]+$'), 'session ' || (e.session->>'session_id')) || ' ['
             || coalesce(e.payload->>'execution_count', '?') || '])', e.seq
      FROM events e, json_each(e.payload->'bindings') b
      WHERE e.type = 'cell_executed' AND json_type(e.payload->'bindings') = 'ARRAY'
    UNION ALL
    SELECT node, 'model', model || ' v' || version || ' (' || estimator || ')', seq
      FROM models
    UNION ALL
    SELECT 'modelfile:' || file_sha256, 'model file', path, seq
      FROM model_files WHERE direction = 'saved' AND file_sha256 IS NOT NULL
    UNION ALL
    SELECT node, 'unrecorded model', path || ' (unrecorded model)', seq FROM unrecorded_models
    UNION ALL
    SELECT 'event:' || event_id, 'evaluation',
           coalesce(payload->>'via', 'metrics') || ' ' || (payload->'metrics')::VARCHAR, seq
      FROM events WHERE type = 'metrics_logged'
    UNION ALL
    SELECT 'event:' || event_id, 'prediction',
           (payload->>'method') || ' of ' || (payload->>'rows') || ' rows', seq
      FROM events WHERE type = 'prediction_made')
  WHERE node IS NOT NULL GROUP BY node;

-- Upstream and downstream of a node. A dataset node is content-addressed, so many sessions
-- meet there; time is respected at it: walking upstream through a dataset reached by a read at
-- seq r follows only the writes recorded up to r, and walking downstream through a dataset
-- reached by a write at seq w follows only the reads recorded from w on. Nothing recorded after
-- a node can be its upstream.
CREATE OR REPLACE MACRO lineage_upstream(start_node) AS TABLE
  WITH RECURSIVE edges AS MATERIALIZED (SELECT src, dst, seq FROM lineage_edges),
  walk(node, depth, bound) AS (
    SELECT start_node, 0, 9223372036854775807::BIGINT
    UNION
    SELECT e.src, w.depth + 1, e.seq FROM edges e JOIN walk w ON e.dst = w.node
    WHERE w.depth < 64 AND (w.node NOT LIKE 'dataset:%' OR e.seq <= w.bound))
  SELECT w.node, min(w.depth) AS depth, any_value(n.kind) AS kind, any_value(n.label) AS label
  FROM walk w LEFT JOIN lineage_nodes n ON n.node = w.node
  GROUP BY w.node ORDER BY depth, w.node;

CREATE OR REPLACE MACRO lineage_downstream(start_node) AS TABLE
  WITH RECURSIVE edges AS MATERIALIZED (SELECT src, dst, seq FROM lineage_edges),
  walk(node, depth, bound) AS (
    SELECT start_node, 0, 0::BIGINT
    UNION
    SELECT e.dst, w.depth + 1, e.seq FROM edges e JOIN walk w ON e.src = w.node
    WHERE w.depth < 64 AND (w.node NOT LIKE 'dataset:%' OR e.seq >= w.bound))
  SELECT w.node, min(w.depth) AS depth, any_value(n.kind) AS kind, any_value(n.label) AS label
  FROM walk w LEFT JOIN lineage_nodes n ON n.node = w.node
  GROUP BY w.node ORDER BY depth, w.node;
