"""The evidence tables of a period: what an auditor reads, each with the exact SQL that made it.

:func:`evidence_tables` runs one read-only query per table over the documented views (and
``events``) with the period bound as ``$from`` / ``$to`` (ISO dates, inclusive, compared with the
UTC date of each event), so the same SQL run later with ``nbgov sql -f TABLE.sql -p from=...
-p to=...`` gives the same rows. Two kinds of table:

- *activity*: one row per event in the period (or per element of one event: a metric, an
  attribute of a bias test, a feature of a drift test);
- *in force*: the state at the end of the period, one row per thing (a vendor, a risk, a role),
  taken from the latest event about it up to then, which may lie before the period.

A row that comes from one ledger event carries that event's ``seq`` in the column ``seq`` (so it
can be proved with a Merkle inclusion proof); other columns ending in ``_seq`` name further events
the row draws on (the end of a session, the finish of a review run, a dataset's declaration).
Aggregates have no ``seq``. Nested values are JSON text, so every table is flat.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from nbgov.errors import EvidenceError

if TYPE_CHECKING:
    from nbgov.ledger.facade import Ledger

__all__ = ["EvidenceTable", "evidence_tables", "period_params"]

ACTIVITY, IN_FORCE, AGGREGATE = "activity", "in force", "aggregate"


@dataclass(frozen=True)
class EvidenceTable:
    """One table of evidence.

    Attributes
    ----------
    name, title, description
        A file-safe name (``approvals``), a heading and what the rows are.
    sql, params
        The exact SQL run and its bound parameters (``from``/``to`` as ISO dates).
    data
        The rows (flat: nested values are JSON text).
    kind
        ``"activity"`` (events in the period), ``"in force"`` (state at the period's end) or
        ``"aggregate"`` (no ``seq``).
    event_types
        The event types a row's ``seq`` names (empty for aggregates).
    section
        The group the table belongs to in the report.
    computed
        Columns added after the SQL ran, and how they were computed (not reproduced by the SQL).
    """

    name: str
    title: str
    description: str
    sql: str
    params: dict[str, Any]
    data: pa.Table
    kind: str = ACTIVITY
    event_types: tuple[str, ...] = ()
    section: str = ""
    computed: dict[str, str] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return int(self.data.num_rows)

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts (timestamps as aware datetimes)."""
        return list(self.data.to_pylist())

    def seqs(self) -> list[int]:
        """The ``seq`` of every row, in order (empty for an aggregate)."""
        if "seq" not in self.data.column_names:
            return []
        return [int(v) for v in self.data.column("seq").to_pylist() if v is not None]


def _day(column: str) -> str:
    return f"CAST(timezone('UTC', {column}) AS DATE)"


def _period(column: str) -> str:
    return f"{_day(column)} BETWEEN CAST($from AS DATE) AND CAST($to AS DATE)"


def _by_end(column: str) -> str:
    return f"{_day(column)} <= CAST($to AS DATE)"


def _json(column: str, alias: str | None = None) -> str:
    """A list column as JSON text."""
    return f"CAST(to_json({column}) AS VARCHAR) AS {alias or column.rsplit('.', 1)[-1]}"


def _text(column: str, alias: str | None = None) -> str:
    """A JSON column as JSON text (a JSON null as NULL)."""
    return f"nullif(CAST({column} AS VARCHAR), 'null') AS {alias or column.rsplit('.', 1)[-1]}"


def _latest(partition: str) -> str:
    return f"QUALIFY row_number() OVER (PARTITION BY {partition} ORDER BY seq DESC) = 1"


@dataclass(frozen=True)
class _Spec:
    name: str
    title: str
    description: str
    sql: str
    kind: str
    event_types: tuple[str, ...]
    section: str


_SPECS: list[_Spec] = []


def _table(name: str, title: str, description: str, sql: str, *, kind: str = ACTIVITY,
           types: tuple[str, ...] = (), section: str) -> None:
    _SPECS.append(_Spec(name, title, description, " ".join(sql.split()), kind, types, section))


# -- the ledger and its policy ------------------------------------------------------------------

_table("event_counts", "Events by type",
       "How many events of each type the ledger recorded in the period, and the first and last of them.",
       f"SELECT type, count(*) AS events, min(seq) AS first_seq, max(seq) AS last_seq FROM events "
       f"WHERE {_period('event_time')} GROUP BY type ORDER BY events DESC, type", kind=AGGREGATE,
       section="Ledger")
_table("checkpoints", "Signed checkpoints",
       "Signed checkpoints of the ledger's Merkle tree recorded in the period (size, root, signer).",
       f"""SELECT seq, event_time, payload->>'origin' AS origin, (payload->>'size')::BIGINT AS size,
           payload->>'root' AS root, payload->>'key_id' AS key_id, payload->>'reason' AS reason, actor
           FROM events WHERE type = 'checkpoint_signed' AND {_period('event_time')} ORDER BY seq""",
       types=("checkpoint_signed",), section="Ledger")
_table("policies", "Policies in force",
       "The policy in force when the period began and every policy put in force during it "
       "(effective values, defaults included).",
       f"""SELECT seq, recorded_at, sha256, source, previous_sha256, {_text('policy')}, actor, event_id
           FROM policies WHERE {_period('recorded_at')}
             OR seq = (SELECT max(seq) FROM policies WHERE {_day('recorded_at')} < CAST($from AS DATE))
           ORDER BY seq""", kind=IN_FORCE, types=("policy_recorded",), section="Ledger")

# -- what was captured ----------------------------------------------------------------------------

_table("sessions", "Notebook sessions",
       "Sessions started in the period: notebook, its SHA-256, actor, host, git commit, packages; "
       "ended_seq is the session's end.",
       f"""SELECT s.seq, s.session_id, s.started_at, s.ended_at, s.end_reason, s.cells, s.actor,
           s.actor_source,
           s.host, s.python, s.kernel_id, s.notebook, s.notebook_sha256, s.git_commit, s.git_dirty,
           s.packages_sha256, s.nbgov_version,
           (SELECT min(e.seq) FROM events e WHERE e.type = 'session_ended'
             AND (e.session->>'session_id') = s.session_id) AS ended_seq
           FROM sessions s WHERE {_period('s.started_at')} ORDER BY s.seq""",
       types=("session_started",), section="Capture")
_table("datasets", "Datasets read and written",
       "Every dataset read or written in the period with its content fingerprint, and the "
       "provenance declared for it by the period's end (declaration_seq; NULL when none).",
       f"""WITH declared AS (SELECT seq, event_time, path, dataset_node, source, license, owner, contains_pii
           FROM dataset_declarations WHERE {_by_end('event_time')})
           SELECT d.seq, d.event_time, d.direction, d.path, d.fingerprint, d.algorithm, d.coverage,
           d.size_bytes, d.rows, {_text('d.columns')}, d.via, d.dataset_node, d.cell_node, d.session_id,
           d.notebook, d.actor, p.seq AS declaration_seq, p.source AS declared_source,
           p.license AS declared_license, p.owner AS declared_owner, {_json('p.contains_pii', 'declared_pii')}
           FROM datasets d LEFT JOIN declared p ON p.dataset_node = d.dataset_node OR p.path = d.path
           WHERE {_period('d.event_time')}
           QUALIFY row_number() OVER (PARTITION BY d.seq ORDER BY p.event_time DESC NULLS LAST,
             p.seq DESC NULLS LAST) = 1
           ORDER BY d.seq""", types=("dataset_read", "dataset_written"), section="Capture")
_table("dataset_declarations", "Declared provenance",
       "Provenance declared in the period: source, licence, owner, columns holding personal data.",
       f"""SELECT seq, event_time, path, fingerprint, dataset_node, source, license, owner,
           {_json('contains_pii')}, description, actor FROM dataset_declarations
           WHERE {_period('event_time')} ORDER BY seq""", types=("dataset_declared",), section="Capture")
_table("models", "Models fitted",
       "Model versions fitted in the period: estimator, parameters, training data fingerprints, "
       "model fingerprint, notebook and actor.",
       f"""SELECT seq, event_time, model, version, model || '@' || version AS ref, estimator,
           {_text('params')}, n_samples, n_features, {_json('features')}, {_text('training_data')},
           model_fingerprint, duration_us, {_json('inputs')}, name_source, session_id, cell_node, notebook,
           actor
           FROM models WHERE {_period('event_time')} ORDER BY seq""", types=("model_fitted",),
       section="Capture")
_table("metrics", "Metrics", "Evaluation results logged in the period, one row per metric.",
       f"""SELECT seq, event_time, model, version, metric, value, {_text('value_json')}, dataset, via,
           session_id, actor FROM metrics WHERE {_period('event_time')} ORDER BY seq, metric""",
       types=("metrics_logged",), section="Capture")
_table("model_files", "Model files saved and loaded",
       "Models written to files and read from them in the period: path, the file's SHA-256, the model's "
       "fingerprint, and the recorded version it holds (NULL for a model that matches none).",
       f"""SELECT seq, event_time, direction, path, file_sha256, model_fingerprint, estimator, model, version,
           matched_by, via, session_id, notebook, actor FROM model_files WHERE {_period('event_time')}
           ORDER BY seq""", types=("model_saved", "model_loaded"), section="Capture")
_table("unrecorded_models", "Unrecorded models",
       "Models loaded in the period from files that match no recorded version: trained outside the "
       "record. Every model version they fed fails its policy check.",
       f"""SELECT seq, loaded_at, path, file_sha256, model_fingerprint, estimator, session_id, notebook, actor
           FROM unrecorded_models WHERE {_period('loaded_at')} ORDER BY seq""",
       types=("model_loaded",), section="Capture")
_table("capture_failures", "Capture failures",
       "Capture hooks that failed in the period (the work they would have recorded is missing).",
       f"""SELECT seq, event_time, hook, error_type, message, session_id, actor FROM capture_failures
           WHERE {_period('event_time')} ORDER BY seq""", types=("capture_failed",), section="Capture")

# -- evaluations and checks ---------------------------------------------------------------------

_table("fairness_results", "Bias tests",
       "Bias tests in the period, one row per sensitive attribute: disparity measures, "
       "significance, verdict against the policy and the limits breached.",
       f"""SELECT seq, event_time, model, version, attribute, groups_compared, groups_excluded,
           demographic_parity_difference, demographic_parity_ratio, four_fifths_violated,
           equalized_odds_difference, equal_opportunity_difference, reference_group, min_p_value,
           significant_gaps, reason, n, min_group_size, alpha, verdict, {_text('failures')}, policy_sha256,
           {_text('data')}, actor, event_id FROM fairness_results WHERE {_period('event_time')}
           ORDER BY seq, attribute""", types=("fairness_evaluated",), section="Evaluations")
_table("fairness_groups", "Bias tests per group",
       "Each group of each bias test in the period: size, selection rate, TPR, FPR, accuracy.",
       f"""SELECT g.seq, e.event_time, g.model, g.version, g.attribute, g."group", g.n, g.selection_rate,
           g.true_positive_rate, g.false_positive_rate, g.accuracy, g.base_rate, g.sufficient, g.reason,
           g.event_id FROM fairness_groups g JOIN events e ON e.seq = g.seq
           WHERE {_period('e.event_time')} ORDER BY g.seq, g.attribute, g."group" """,
       types=("fairness_evaluated",), section="Evaluations")
_table("drift_results", "Drift tests",
       "Drift tests in the period, one row per feature (and model scores): test, effect size, "
       "threshold and where it came from, verdict.",
       f"""SELECT seq, event_time, model, version, feature, kind, test, statistic, p_value, test_alpha,
           effect_size_name, effect_size, threshold, threshold_source, decided_by, drifted, bins, log_base,
           n_reference, n_current, dataset_drifted, alpha, verdict, policy_sha256, {_text('data')}, actor,
           event_id FROM drift_results WHERE {_period('event_time')} ORDER BY seq, feature""",
       types=("drift_evaluated",), section="Evaluations")
_table("policy_checks", "Policy checks",
       "Policy checks of model versions in the period, with every finding (JSON) and its digest.",
       f"""SELECT seq, event_time, model, version, purpose, verdict, failed, {_text('findings')}, digest,
           policy_sha256, actor, event_id FROM policy_evaluations WHERE {_period('event_time')}
           ORDER BY seq""", types=("policy_evaluated",), section="Evaluations")

# -- decisions ------------------------------------------------------------------------------------

_table("approvals", "Approvals, rejections and denials",
       "Reviewers' decisions in the period: granted and rejected (signed) and refused attempts "
       "(denied, with reason codes); signature_valid checks each signature.",
       f"""SELECT seq, event_time, model, version, decision, reviewer, actor_source, role, {_json('reasons')},
           message, approvals, required, key_id, signature, {_text('statement')}, policy_sha256, evidence,
           event_id FROM approvals WHERE {_period('event_time')} ORDER BY seq""",
       types=("approval_granted", "approval_rejected", "approval_denied"), section="Decisions")
_table("approval_requests", "Approval requests", "Requests for review made in the period.",
       f"""SELECT seq, requested_at, model, version, requested_by, note, event_id FROM approval_requests
           WHERE {_period('requested_at')} ORDER BY seq""", types=("approval_requested",),
       section="Decisions")
_table("lifecycle_changes", "Lifecycle changes",
       "Model versions moving between trained, validated, approved, rejected and retired in the "
       "period, with the reason and the event that justified each move.",
       f"""SELECT seq, event_time, model, version, from_state, to_state, reason, evidence, actor, event_id
           FROM model_transitions WHERE {_period('event_time')} ORDER BY seq""",
       types=("model_state_changed", "approval_granted"), section="Decisions")
_table("model_inventory", "Model versions at the period's end",
       "Every model version fitted by the end of the period and its state then (seq: the event "
       "that set the state; fitted_seq: its fit).",
       f"""WITH fits AS (SELECT seq, event_time, model, version,
           actor FROM models WHERE {_by_end('event_time')}
           QUALIFY row_number() OVER (PARTITION BY model, version ORDER BY seq) = 1),
           moves AS (SELECT seq, event_time, model, version, to_state FROM model_transitions
           WHERE {_by_end('event_time')} {_latest('model, version')})
           SELECT coalesce(m.seq, f.seq) AS seq, f.model, f.version, f.model || '@' || f.version AS ref,
           coalesce(m.to_state, 'trained') AS state, coalesce(m.event_time, f.event_time) AS state_since,
           f.actor AS author, f.event_time AS trained_at, f.seq AS fitted_seq
           FROM fits f LEFT JOIN moves m USING (model, version) ORDER BY f.model, f.version""",
       kind=IN_FORCE, types=("model_fitted", "model_state_changed", "approval_granted"), section="Decisions")

# -- access -----------------------------------------------------------------------------------------

_table("role_changes", "Role changes", "Roles granted and revoked in the period, and by whom.",
       f"""SELECT seq, event_time, change, subject, role, reason, bootstrap, by_actor, event_id
           FROM role_events WHERE {_period('event_time')} ORDER BY seq""",
       types=("role_granted", "role_revoked"), section="Access")
_table("roles", "Roles at the period's end", "Who held which role at the end of the period (seq: the grant).",
       f"""SELECT seq, event_time AS granted_at, subject, role, by_actor AS granted_by, bootstrap FROM (
           SELECT * FROM role_events WHERE {_by_end('event_time')} {_latest('subject, role')})
           WHERE change = 'granted' ORDER BY role, subject""", kind=IN_FORCE, types=("role_granted",),
       section="Access")
_table("signing_keys", "Signing keys",
       "Public keys registered by the end of the period (approvals and checkpoints are verified "
       "against them).",
       f"""SELECT seq, registered_at, actor, key_id, algorithm, public_key, event_id FROM signing_keys
           WHERE {_by_end('registered_at')} ORDER BY seq""", kind=IN_FORCE, types=("key_registered",),
       section="Access")
_table("data_classifications", "Dataset classifications",
       "Each classified dataset's classification at the end of the period.",
       f"""SELECT seq, event_time, payload->>'path' AS path, payload->>'classification' AS classification,
           payload->>'fingerprint' AS fingerprint, payload->>'reason' AS reason, actor FROM events
           WHERE type = 'dataset_classified' AND {_by_end('event_time')} {_latest("payload->>'path'")}
           ORDER BY path""", kind=IN_FORCE, types=("dataset_classified",), section="Access")
_table("access_grants", "Data access grants",
       "Grants and revocations of access to classified datasets made in the period.",
       f"""SELECT seq, event_time, CASE type WHEN 'data_access_granted' THEN 'granted' ELSE 'revoked' END
           AS change, payload->>'subject' AS subject, payload->>'path' AS path,
           payload->>'expires' AS expires,
           payload->>'reason' AS reason, actor, event_id FROM events
           WHERE type IN ('data_access_granted', 'data_access_revoked') AND {_period('event_time')}
           ORDER BY seq""", types=("data_access_granted", "data_access_revoked"), section="Access")
_table("data_access", "Reads of classified data",
       "Every read of a classified dataset in the period, the classification and grant at that "
       "moment, and whether it broke the policy (violation).",
       f"""SELECT seq, read_at, actor, path, fingerprint, classified_path, classification,
           classification_at_read, granted, violation, via, notebook, session_id FROM data_access
           WHERE {_period('read_at')} ORDER BY seq""", types=("dataset_read",), section="Access")

# -- vendors and risks ------------------------------------------------------------------------------

_table("vendors", "Vendors", "Each vendor's registration in force at the end of the period.",
       f"""SELECT seq, event_time AS registered_at, payload->>'name' AS vendor,
           payload->>'service' AS service,
           {_text("payload->'certifications'", 'certifications')},
           payload->'evidence'->>'path' AS evidence_path,
           payload->'evidence'->>'fingerprint' AS evidence_fingerprint, payload->>'contact' AS contact,
           actor AS registered_by FROM events WHERE type = 'vendor_registered' AND {_by_end('event_time')}
           {_latest("payload->>'name'")} ORDER BY vendor""", kind=IN_FORCE, types=("vendor_registered",),
       section="Vendors and risks")
_table("vendor_attestations", "Vendor attestations",
       "The attestations (certification and the end of the period it covers) of each vendor's "
       "registration in force at the end of the period.",
       f"""WITH current AS (SELECT seq, event_time, payload FROM events WHERE type = 'vendor_registered'
           AND {_by_end('event_time')} {_latest("payload->>'name'")})
           SELECT v.seq, v.payload->>'name' AS vendor, c.value->>'name' AS certification,
           TRY_CAST(c.value->>'period_end' AS DATE) AS period_end, c.value->>'issuer' AS issuer
           FROM current v, json_each(v.payload->'certifications') c ORDER BY vendor, certification""",
       kind=IN_FORCE, types=("vendor_registered",), section="Vendors and risks")
_table("vendor_links", "Models using vendors", "Which models (or versions) depend on which vendor, "
       "as recorded by the end of the period.",
       f"""SELECT seq, linked_at, vendor, model, version, purpose, linked_by FROM model_vendors
           WHERE {_by_end('linked_at')} ORDER BY seq""", kind=IN_FORCE, types=("vendor_linked",),
       section="Vendors and risks")
_table("risks", "Risk register", "Each risk's latest entry at the end of the period.",
       f"""SELECT seq, event_time AS updated_at, payload->>'model' AS model, payload->>'risk_id' AS risk_id,
           payload->>'category' AS category, payload->>'description' AS description,
           payload->>'likelihood' AS likelihood, payload->>'impact' AS impact,
           payload->>'treatment' AS treatment,
           payload->>'owner' AS owner, TRY_CAST(payload->>'next_review' AS DATE) AS next_review,
           payload->>'status' AS status, actor AS recorded_by FROM events
           WHERE type = 'risk_recorded' AND {_by_end('event_time')}
           {_latest("payload->>'model', payload->>'risk_id'")} ORDER BY model, risk_id""",
       kind=IN_FORCE, types=("risk_recorded",), section="Vendors and risks")
_table("risk_tiers", "Risk tiers", "Each model's risk tier at the end of the period.",
       f"""SELECT seq, event_time AS set_at, payload->>'model' AS model, payload->>'tier' AS tier,
           payload->>'reason' AS reason, actor AS set_by FROM events WHERE type = 'risk_tier_set'
           AND {_by_end('event_time')} {_latest("payload->>'model'")} ORDER BY model""",
       kind=IN_FORCE, types=("risk_tier_set",), section="Vendors and risks")

# -- reviews ----------------------------------------------------------------------------------------

_table("schedules", "Review schedules", "The review schedules in force at the end of the period.",
       f"""SELECT seq, event_time AS changed_at, job, notebook, cron, tz, {_text('parameters')},
           catch_up, retries,
           timeout_s, grace_s, effective_from, actor AS changed_by FROM (
           SELECT * FROM schedule_events WHERE {_by_end('event_time')} {_latest('job')})
           WHERE change = 'set' ORDER BY job""", kind=IN_FORCE, types=("schedule_set",), section="Reviews")
_table("schedule_changes", "Schedule changes", "Schedules added, changed or removed in the period.",
       f"""SELECT seq, event_time, change, job, notebook, cron, tz, {_text('parameters')}, catch_up, retries,
           timeout_s, grace_s, effective_from, reason, actor, event_id FROM schedule_events
           WHERE {_period('event_time')} ORDER BY seq""", types=("schedule_set", "schedule_removed"),
       section="Reviews")
_table("review_runs", "Review runs",
       "Review notebooks run in the period (by hand or on schedule): status as supervised, the "
       "failing cell and error, the executed notebook's fingerprint; finished_seq is its end.",
       f"""SELECT r.seq, r.run_id, r.started_at, r.finished_at, r.notebook, r.notebook_sha256,
           {_text('r.parameters')}, r.job, r.scheduled_for, r.attempt, r.status, r.cell_index, r.error_type,
           r.error_message, r.cells_executed, r.cells_total, r.seconds, r.timeout_s, r.output,
           r.output_fingerprint, r.host, r.actor,
           (SELECT min(f.seq) FROM events f WHERE f.type = 'review_run_finished'
             AND (f.payload->>'run_id') = r.run_id) AS finished_seq
           FROM review_runs r WHERE {_period('r.started_at')} ORDER BY r.seq""",
       types=("review_run_started",), section="Reviews")
_table("missed_runs", "Missed runs", "Scheduled reviews due in the period that did not start in time.",
       f"""SELECT seq, detected_at, job, scheduled_for, grace_s, catch_up, actor, event_id FROM missed_runs
           WHERE {_period('coalesce(scheduled_for, detected_at)')} ORDER BY seq""",
       types=("review_missed",), section="Reviews")
_table("alerts", "Alerts", "Alerts raised in the period (failed, timed-out or missed reviews, breaches).",
       f"""SELECT seq, raised_at, key, reason, job, run_id, message, {_json('sinks')}, event_id FROM alerts
           WHERE {_period('raised_at')} ORDER BY seq""", types=("alert_raised",), section="Reviews")
_table("alert_deliveries", "Alert deliveries", "Every attempt in the period to deliver an alert to a sink.",
       f"""SELECT seq, event_time, alert, sink, outcome, attempt, error, retry_after, actor
           FROM alert_deliveries WHERE {_period('event_time')} ORDER BY seq""",
       types=("alert_delivered", "alert_delivery_failed"), section="Reviews")


def period_params(start: dt.date, end: dt.date) -> dict[str, str]:
    """``{"from": ..., "to": ...}`` for a period (checked: dates, start not after end)."""
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            raise EvidenceError(f"the period's {name} must be a date, not {value!r}",
                                hint="pass datetime.date values (the period is whole UTC days)")
    if start > end:
        raise EvidenceError(f"the period starts ({start}) after it ends ({end})",
                            hint="--from must be on or before --to")
    return {"from": start.isoformat(), "to": end.isoformat()}


def evidence_tables(ledger: Ledger, start: dt.date, end: dt.date) -> list[EvidenceTable]:
    """The evidence tables of the period ``start`` .. ``end`` (inclusive, UTC days).

    Returns
    -------
    list of EvidenceTable
        In report order; see the module docstring for the two kinds of table.

    Raises
    ------
    EvidenceError
        The period is not two dates in order.
    """
    from nbgov.ledger.query import check_read_only, run_statements

    params = period_params(start, end)
    results = []
    with ledger.reader() as con:  # one ingest, one read-only connection for every table
        for spec in _SPECS:
            used = {name: value for name, value in params.items() if f"${name}" in spec.sql}
            results.append((spec, used, _flat(run_statements(con, check_read_only(spec.sql), used).table)))
    tables = []
    for spec, used, data in results:
        computed: dict[str, str] = {}
        if spec.name == "approvals":
            data, computed = _with_signatures(ledger, data)
        tables.append(EvidenceTable(spec.name, spec.title, spec.description, spec.sql, used, data,
                                    spec.kind, spec.event_types, spec.section, computed))
    return tables


def _flat(table: pa.Table) -> pa.Table:
    """Any nested column left as JSON text (the SQL already flattens the documented ones)."""
    for index, column in enumerate(table.columns):
        kind = column.type
        if pa.types.is_nested(kind):
            text = [None if v is None else json.dumps(v, sort_keys=True, default=str)
                    for v in column.to_pylist()]
            table = table.set_column(index, table.field(index).name, pa.array(text, pa.string()))
    return table


_SIGNATURE_VALID = ("Ed25519 signature of the signed statement checked against the reviewer's "
                    "registered key by nbgov.governance.approvals.verify_approvals (NULL for refused "
                    "attempts)")
_SIGNATURE_PROBLEM = "why the signature check failed (NULL when it holds or does not apply)"


def _with_signatures(ledger: Ledger, data: pa.Table) -> tuple[pa.Table, dict[str, str]]:
    from nbgov.governance.approvals import verify_approvals

    checks = {check.seq: check for check in verify_approvals(ledger)} if data.num_rows else {}
    seqs = data.column("seq").to_pylist()
    valid = [checks[s].valid if s in checks else None for s in seqs]
    problems = [checks[s].problem if s in checks else None for s in seqs]
    data = data.append_column("signature_valid", pa.array(valid, pa.bool_()))
    data = data.append_column("signature_problem", pa.array(problems, pa.string()))
    return data, {"signature_valid": _SIGNATURE_VALID, "signature_problem": _SIGNATURE_PROBLEM}
