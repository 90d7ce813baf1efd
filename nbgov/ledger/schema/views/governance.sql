-- Governance: policies and checks, the model lifecycle, approvals and requests, roles and keys,
-- vendors, risks, data classification and access, bias and drift tests, and the findings an
-- auditor should look at.
-- Documented SQL surface (README lists every view and column; a test keeps it true). Views are
-- applied in the order of the files ledger, capture, lineage, governance, reviews, and again
-- whenever this text changes (nbgov.ledger.schema.views); they are never defined in migrations.

CREATE OR REPLACE VIEW policies AS
  SELECT seq, event_time AS recorded_at, payload->>'sha256' AS sha256,
         payload->>'source' AS source, payload->>'previous_sha256' AS previous_sha256,
         payload->'policy' AS policy, actor, event_id
  FROM events WHERE type = 'policy_recorded';

CREATE OR REPLACE VIEW policy_evaluations AS
  SELECT seq, event_time, payload->>'model' AS model, (payload->>'version')::INTEGER AS version,
         payload->>'purpose' AS purpose, payload->>'verdict' AS verdict,
         (SELECT count(*) FROM json_each(payload->'findings') f
           WHERE (f.value->>'status') = 'fail') AS failed,
         payload->'findings' AS findings, payload->>'digest' AS digest,
         payload->>'policy_sha256' AS policy_sha256, actor, event_id
  FROM events WHERE type = 'policy_evaluated';

-- Lifecycle moves: explicit state changes, and approvals that reached the required count.
CREATE OR REPLACE VIEW model_transitions AS
  SELECT seq, event_time, payload->>'model' AS model, (payload->>'version')::INTEGER AS version,
         payload->>'from_state' AS from_state, payload->>'to_state' AS to_state,
         payload->>'reason' AS reason, payload->>'evidence' AS evidence, actor, event_id
  FROM events WHERE type = 'model_state_changed'
  UNION ALL
  SELECT seq, event_time, payload->>'model', (payload->>'version')::INTEGER, 'validated',
         'approved', 'approved by ' || (payload->>'approvals') || ' of '
           || (payload->>'required') || ' required reviewer(s)', event_id, actor, event_id
  FROM events WHERE type = 'approval_granted'
       AND (payload->>'approvals')::INTEGER >= (payload->>'required')::INTEGER;

CREATE OR REPLACE VIEW risk_tiers AS
  SELECT payload->>'model' AS model, arg_max(payload->>'tier', seq) AS tier,
         arg_max(payload->>'reason', seq) AS reason,
         arg_max(actor, seq) AS set_by,
         arg_max(event_time, seq) AS set_at
  FROM events WHERE type = 'risk_tier_set' GROUP BY ALL;

CREATE OR REPLACE VIEW model_versions AS
  WITH last AS (
    SELECT model, version, arg_max(to_state, seq) AS state, arg_max(event_time, seq) AS state_since
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
  LEFT JOIN risk_tiers t ON t.model = m.model;

-- Reviewers' decisions: approvals granted, rejections, and refused attempts.
CREATE OR REPLACE VIEW approvals AS
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
  FROM events WHERE type = 'approval_denied';

CREATE OR REPLACE VIEW approval_requests AS
  SELECT r.seq, r.event_time AS requested_at, r.payload->>'model' AS model,
         (r.payload->>'version')::INTEGER AS version, r.actor AS requested_by,
         r.payload->>'note' AS note,
         (SELECT arg_min(a.decision, a.seq) FROM approvals a
           WHERE a.model = (r.payload->>'model') AND a.version = (r.payload->>'version')::INTEGER
             AND a.seq > r.seq AND a.decision IN ('granted', 'rejected')) AS decision,
         r.event_id
  FROM events r WHERE r.type = 'approval_requested';

CREATE OR REPLACE VIEW role_events AS
  SELECT seq, event_time, CASE type WHEN 'role_granted' THEN 'granted' ELSE 'revoked' END AS change,
         payload->>'subject' AS subject, payload->>'role' AS role, payload->>'reason' AS reason,
         coalesce((payload->>'bootstrap')::BOOLEAN, false) AS bootstrap, actor AS by_actor, event_id
  FROM events WHERE type IN ('role_granted', 'role_revoked');

CREATE OR REPLACE VIEW roles AS
  SELECT subject, role, arg_max(by_actor, seq) AS granted_by, arg_max(event_time, seq) AS granted_at
  FROM role_events GROUP BY subject, role HAVING arg_max(change, seq) = 'granted';

CREATE OR REPLACE VIEW signing_keys AS
  SELECT seq, event_time AS registered_at, actor, payload->>'key_id' AS key_id,
         payload->>'algorithm' AS algorithm, payload->>'public_key' AS public_key, event_id
  FROM events WHERE type = 'key_registered';

CREATE OR REPLACE VIEW vendors AS
  SELECT payload->>'name' AS vendor, arg_max(payload->>'service', seq) AS service,
         arg_max(payload->'certifications', seq) AS certifications,
         arg_max(payload->'evidence'->>'path', seq) AS evidence_path,
         arg_max(payload->'evidence'->>'fingerprint', seq) AS evidence_fingerprint,
         arg_max(payload->>'contact', seq) AS contact,
         arg_max(actor, seq) AS registered_by,
         arg_max(event_time, seq) AS updated_at, max(seq) AS seq
  FROM events WHERE type = 'vendor_registered' GROUP BY ALL;

CREATE OR REPLACE VIEW vendor_certifications AS
  SELECT v.vendor, c.value->>'name' AS certification,
         TRY_CAST(c.value->>'period_end' AS DATE) AS period_end, c.value->>'issuer' AS issuer,
         v.evidence_fingerprint
  FROM vendors v, json_each(v.certifications) c;

CREATE OR REPLACE VIEW model_vendors AS
  SELECT seq, event_time AS linked_at, payload->>'vendor' AS vendor, payload->>'model' AS model,
         (payload->>'version')::INTEGER AS version, payload->>'purpose' AS purpose,
         actor AS linked_by
  FROM events WHERE type = 'vendor_linked';

CREATE OR REPLACE VIEW risks AS
  SELECT payload->>'model' AS model, payload->>'risk_id' AS risk_id,
         arg_max(payload->>'category', seq) AS category,
         arg_max(payload->>'description', seq) AS description,
         arg_max(payload->>'likelihood', seq) AS likelihood,
         arg_max(payload->>'impact', seq) AS impact,
         arg_max(payload->>'treatment', seq) AS treatment,
         arg_max(payload->>'owner', seq) AS owner,
         arg_max(TRY_CAST(payload->>'next_review' AS DATE), seq) AS next_review,
         arg_max(payload->>'status', seq) AS status,
         arg_max(actor, seq) AS recorded_by,
         arg_max(event_time, seq) AS updated_at
  FROM events WHERE type = 'risk_recorded' GROUP BY ALL;

CREATE OR REPLACE VIEW dataset_classifications AS
  SELECT payload->>'path' AS path,
  arg_max(payload->>'classification', seq) AS classification,
         arg_max(payload->>'fingerprint', seq) AS fingerprint,
         arg_max(payload->>'reason', seq) AS reason,
         arg_max(actor, seq) AS classified_by,
         arg_max(event_time, seq) AS classified_at
  FROM events WHERE type = 'dataset_classified' GROUP BY ALL;

CREATE OR REPLACE VIEW data_access_grants AS
  SELECT payload->>'subject' AS subject, payload->>'path' AS path,
         arg_max(TRY_CAST(payload->>'expires' AS DATE), seq) AS expires,
         arg_max(actor, seq) AS granted_by, arg_max(event_time, seq) AS granted_at
  FROM events WHERE type IN ('data_access_granted', 'data_access_revoked')
  GROUP BY ALL HAVING arg_max(type, seq) = 'data_access_granted';

-- Every read of a classified dataset (matched by path, or by the content fingerprint recorded
-- when it was classified, so a copy stays classified), with the classification in force at
-- the time of the read and whether the reader held a grant then. "When" is event time: the
-- ledger's seq orders ingestion, and events of different processes can be ingested in any
-- order. The policy in force is the latest recorded one (its data_access rules decide which
-- reads need a grant; with no policy recorded, restricted data does).
CREATE OR REPLACE VIEW data_access AS
  WITH cls AS (
    SELECT seq, event_time, payload->>'path' AS cpath, payload->>'fingerprint' AS cfp,
           payload->>'classification' AS classification
    FROM events WHERE type = 'dataset_classified'),
  reads AS (
    SELECT seq, event_time, actor, payload->>'path' AS path, payload->>'fingerprint' AS fingerprint,
           payload->>'via' AS via, session->>'notebook' AS notebook,
           session->>'session_id' AS session_id,
           coalesce(CASE WHEN starts_with(session->>'cell_run', 'cell:') THEN session->>'cell_run' END,
                    CASE WHEN starts_with(payload->>'node', 'cell:') THEN payload->>'node' END) AS cell_node,
           payload->'inputs'->>0 AS dataset_node
    FROM events WHERE type = 'dataset_read'),
  matched AS (
    SELECT r.seq AS rseq, c.cpath,
           arg_max(c.classification, c.seq) AS current_class,
           -- judged at the time of the read (the writers' clocks: see the README's limits)
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
         (j.class_at_read IS NOT NULL AND list_contains(coalesce((SELECT (payload->'policy'->'data_access'->'grant_required')::VARCHAR[]
            FROM events WHERE type = 'policy_recorded' ORDER BY seq DESC LIMIT 1),
            ['restricted']), j.class_at_read)
           AND NOT j.granted) AS violation,
         r.via, r.notebook, r.session_id, r.cell_node, r.dataset_node
  FROM judged j JOIN reads r ON r.seq = j.rseq;

-- One row per attribute (and intersection) of each bias test.
CREATE OR REPLACE VIEW fairness_results AS
  SELECT e.seq, e.event_time, fit_model(e.payload) AS model,
         fit_version(e.payload, e.seq) AS version, a.value->>'attribute' AS attribute,
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
  WHERE e.type = 'fairness_evaluated';

CREATE OR REPLACE VIEW fairness_groups AS
  SELECT e.seq, fit_model(e.payload) AS model, fit_version(e.payload, e.seq) AS version,
         g.value->>'attribute' AS attribute, g.value->>'group' AS "group",
         (g.value->>'n')::BIGINT AS n, (g.value->>'selection_rate')::DOUBLE AS selection_rate,
         (g.value->>'true_positive_rate')::DOUBLE AS true_positive_rate,
         (g.value->>'false_positive_rate')::DOUBLE AS false_positive_rate,
         (g.value->>'accuracy')::DOUBLE AS accuracy, (g.value->>'base_rate')::DOUBLE AS base_rate,
         (g.value->>'sufficient')::BOOLEAN AS sufficient, g.value->>'reason' AS reason, e.event_id
  FROM events e, json_each(e.payload->'report'->'groups') g
  WHERE e.type = 'fairness_evaluated';

-- One row per feature (and one for model scores) of each drift test.
CREATE OR REPLACE VIEW drift_results AS
  WITH tests AS (
    SELECT e.seq, e.event_time, e.payload, e.actor, e.event_id, f.value AS r, false AS is_scores
    FROM events e, json_each(e.payload->'report'->'features') f WHERE e.type = 'drift_evaluated'
    UNION ALL
    SELECT e.seq, e.event_time, e.payload, e.actor, e.event_id, e.payload->'report'->'scores', true
    FROM events e WHERE e.type = 'drift_evaluated'
         AND json_type(e.payload->'report'->'scores') = 'OBJECT')
  SELECT seq, event_time, fit_model(payload) AS model, fit_version(payload, seq) AS version,
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
  FROM tests;

-- Everything an auditor should look at: failed rules of recorded checks and tests, denied
-- approvals, reads of classified data without a grant, vendors without a current attestation
-- (judged today against the latest recorded policy), and models loaded from files that match no
-- recorded version.
CREATE OR REPLACE VIEW findings AS
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
  SELECT e.seq, e.event_time, 'fairness', fit_model(e.payload), fit_version(e.payload, e.seq),
         f.value->>'rule', 'fail', f.value->>'attribute', f.value->>'message', NULL, e.actor,
         e.payload->>'policy_sha256', e.event_id
  FROM events e, json_each(e.payload->'failures') f WHERE e.type = 'fairness_evaluated'
  UNION ALL
  SELECT e.seq, e.event_time, 'drift', fit_model(e.payload), fit_version(e.payload, e.seq),
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
  FROM vendors v JOIN current_vendor c USING (vendor) WHERE NOT coalesce(c.current, false)
  UNION ALL
  SELECT u.seq, u.loaded_at, 'model_file', NULL, NULL, 'unrecorded_model', 'fail', u.path,
         u.actor || ' loaded ' || u.path || ', a model that matches no recorded version (trained '
           || 'outside the record)',
         'train it under nbgov, or record where it came from', u.actor, NULL, u.event_id
  FROM unrecorded_models u;
