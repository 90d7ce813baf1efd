"""SOC 2 mapping: the Trust Services Criteria in scope, nbgov's controls, and how each control
stands over a period's evidence.

:data:`CRITERIA` lists the criteria (AICPA Trust Services Criteria 2017, revised points of focus
2022) of the families nbgov's evidence speaks to; :data:`CONTROLS` the controls nbgov operates,
each mapped to criteria and to the evidence tables that show it working. :func:`assess_controls`
judges each control over the tables of :func:`nbgov.evidence.tables.evidence_tables`:

- ``evidenced``: everything in the period that needed the control had it;
- ``partial``: some of it did, and the gaps say what did not;
- ``missing``: nothing that needed it had it;
- ``not applicable``: nothing in the period needed it (e.g. no model depends on a vendor).

Each assessment lists the evidence found (counts, names, the table and the ``seq`` of example
rows) and each gap in plain words. Rules are not re-implemented: policy findings come from
:func:`nbgov.governance.checks.check_model` (run without recording, judged on the period's last day), vendor
attestations from :func:`nbgov.governance.vendors.attestation_status`, signatures from
:func:`nbgov.governance.approvals.verify_approvals` (the ``signature_valid`` column), reads without a grant
from the ``data_access`` view, due review times from :func:`nbgov.reviews.cron.occurrences`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbgov.errors import EvidenceError, NbgovError
from nbgov.evidence.criteria import CRITERIA, Criterion
from nbgov.evidence.tables import EvidenceTable, period_params
from nbgov.governance.policy import LoadedPolicy, Policy, validate_policy

if TYPE_CHECKING:
    from nbgov.governance.checks import CheckReport
    from nbgov.ledger.facade import Ledger
    from nbgov.ledger.integrity.verify import VerifyReport

__all__ = ["CONTROLS", "CRITERIA", "EVIDENCED", "MISSING", "NOT_ADDRESSED", "NOT_APPLICABLE", "PARTIAL",
           "Assessment", "Control", "ControlReport", "Criterion", "Evidence", "VerificationSummary",
           "assess_controls"]

EVIDENCED, PARTIAL, MISSING, NOT_APPLICABLE = "evidenced", "partial", "missing", "not applicable"
NOT_ADDRESSED = "not addressed"  # a criterion none of nbgov's controls speaks to
_WORST = (MISSING, PARTIAL, EVIDENCED)


@dataclass(frozen=True)
class Control:
    """A control nbgov operates: its name (and a short one for the matrix), what it achieves, the
    criteria it supports and the tables that show it working."""

    id: str
    name: str
    short: str
    objective: str
    criteria: tuple[str, ...]
    tables: tuple[str, ...]


CONTROLS: tuple[Control, ...] = (
    Control("bias-testing", "Bias testing before approval", "Bias tests",
            "Every model version approved in the period had a bias test within the policy's limits (covering "
            "the sensitive attributes it names), recorded before the approval.",
            ("CC3.2", "CC8.1", "PI1.3"), ("fairness_results", "fairness_groups", "lifecycle_changes")),
    Control("data-provenance", "Training-data provenance", "Provenance",
            "The data every model version fitted in the period was trained on is fingerprinted and has its "
            "provenance declared (the facts the policy requires), or derives from recorded data that has.",
            ("PI1.1", "PI1.2", "PI1.5", "C1.1"), ("datasets", "dataset_declarations", "models")),
    Control("model-documentation", "Model-update documentation", "Model docs",
            "Every model version fitted in the period is documented in the ledger (its training data, an "
            "evaluation, a policy check), and every approval rests on a passing check.",
            ("CC3.4", "CC8.1", "PI1.1", "PI1.3"),
            ("models", "metrics", "policy_checks", "lifecycle_changes")),
    Control("approvals", "Segregation of duties and signed decisions", "Duties and signatures",
            "Approvals and rejections were made by reviewers other than the version's author and signed with "
            "keys registered in the ledger; refused attempts and role changes are recorded.",
            ("CC6.2", "CC6.3", "CC8.1"), ("approvals", "role_changes", "roles", "signing_keys")),
    Control("drift-monitoring", "Drift monitoring", "Drift",
            "Every model version in the approved state during the period had a drift test in the period.",
            ("CC3.4", "CC7.2", "PI1.3"), ("drift_results", "model_inventory", "lifecycle_changes")),
    Control("audit-trail", "Tamper-evident audit trail", "Audit trail",
            "The ledger verifies (every leaf, the hash chain, the Merkle tree), a signed checkpoint covers "
            "the period's events, and no capture hook failed.",
            ("CC7.2", "PI1.5"), ("event_counts", "checkpoints", "capture_failures")),
    Control("periodic-reviews", "Periodic reviews", "Reviews",
            "Scheduled review notebooks ran when due and succeeded, missed and failed runs were recorded and "
            "alerted, and approved versions were reviewed at their tier's cadence.",
            ("CC7.2", "PI1.4"), ("schedules", "schedule_changes", "review_runs", "missed_runs", "alerts",
                                 "alert_deliveries")),
    Control("vendor-evidence", "Vendor evidence", "Vendors",
            "Every vendor a model depends on has a current accepted attestation (such as a SOC 2 Type II "
            "report) at the period's end, with the report's file fingerprinted.",
            ("CC3.2", "CC9.2"), ("vendors", "vendor_attestations", "vendor_links")),
    Control("data-access", "Training-data access control", "Data access",
            "Datasets are classified, and every read of data whose classification needs a grant was made by "
            "someone holding one at that moment.",
            ("CC6.1", "CC6.3", "C1.1"), ("data_classifications", "access_grants", "data_access")),
    Control("risk-register", "Risk assessment", "Risks",
            "Every model worked on in the period has an assessed risk tier, a risk register holding the "
            "categories its tier requires, and no open risk past its review date.",
            ("CC3.1", "CC3.2", "CC3.4"), ("risks", "risk_tiers")),
)


@dataclass(frozen=True)
class Evidence:
    """Something found that shows a control working: a sentence, the table, example rows' ``seq``."""

    text: str
    table: str | None = None
    seqs: tuple[int, ...] = ()


@dataclass(frozen=True)
class Assessment:
    """How one control stands over the period."""

    control: Control
    status: str
    evidence: tuple[Evidence, ...]
    gaps: tuple[str, ...]


@dataclass(frozen=True)
class VerificationSummary:
    """What the caller found when it verified the ledger (and the signed checkpoint it cut)."""

    ledger_id: str
    ok: bool
    events: int
    head_seq: int
    first_problem: str | None = None
    checkpoint_size: int | None = None
    checkpoint_origin: str | None = None
    checkpoint_root: str | None = None

    @classmethod
    def from_report(cls, report: VerifyReport, ledger_id: str, *, checkpoint_size: int | None = None,
                    checkpoint_origin: str | None = None, checkpoint_root: str | None = None
                    ) -> VerificationSummary:
        """The summary of a :class:`~nbgov.ledger.integrity.verify.VerifyReport` (and the checkpoint,
        if any)."""
        first = report.first_problem
        return cls(ledger_id, report.ok, report.events, report.head_seq,
                   None if first is None else first.describe(), checkpoint_size, checkpoint_origin,
                   checkpoint_root)


@dataclass(frozen=True)
class ControlReport:
    """Every control's assessment over a period, and what it was judged against."""

    start: dt.date
    end: dt.date
    policy: LoadedPolicy
    verification: VerificationSummary
    assessments: tuple[Assessment, ...]

    def assessment(self, control_id: str) -> Assessment:
        for item in self.assessments:
            if item.control.id == control_id:
                return item
        raise KeyError(control_id)

    def criterion_status(self, criterion_id: str) -> str:
        """The worst status of the controls mapped to a criterion (ignoring those not applicable)."""
        mapped = [a.status for a in self.assessments if criterion_id in a.control.criteria]
        if not mapped:
            return NOT_ADDRESSED
        return next((status for status in _WORST if status in mapped), NOT_APPLICABLE)


def assess_controls(ledger: Ledger, start: dt.date, end: dt.date, tables: Sequence[EvidenceTable],
                    verification: VerificationSummary, *, policy: LoadedPolicy | None = None,
                    now: dt.datetime | None = None) -> ControlReport:
    """Assess every control in :data:`CONTROLS` over the evidence *tables* of the period.

    Parameters
    ----------
    ledger
        The ledger the tables came from (rules such as the policy check read it).
    start, end
        The period (inclusive UTC days), as given to ``evidence_tables``.
    tables
        The period's evidence tables (every table a control names must be among them).
    verification
        The caller's verification of the ledger and its checkpoint (not recomputed here).
    policy
        The policy to judge by; default the one in force at the period's end (the last row of
        the ``policies`` table), else nbgov's defaults.
    now
        The present (due review times after it are not expected yet); default the clock.
    """
    period_params(start, end)
    context = _Context(ledger, start, end, tables, verification, policy, now)
    assessments = []
    for control in CONTROLS:
        missing = [name for name in control.tables if name not in context.tables]
        if missing:
            raise EvidenceError(f"control {control.id} needs the evidence table(s) {', '.join(missing)}")
        status, evidence, gaps = _ASSESS[control.id](context)
        assessments.append(Assessment(control, status, tuple(evidence), tuple(gaps)))
    return ControlReport(start, end, context.policy, verification, tuple(assessments))


# -- helpers ----------------------------------------------------------------------------------------

_Result = tuple[str, list[Evidence], list[str]]


def _status(good: int, needed: int) -> str:
    if needed == 0:
        return NOT_APPLICABLE
    return EVIDENCED if good == needed else MISSING if good == 0 else PARTIAL


def _n(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _day(moment: Any) -> str:
    return moment.astimezone(dt.UTC).date().isoformat() if isinstance(moment, dt.datetime) else str(moment)


def _seqs(rows: Iterable[dict[str, Any]], limit: int = 5) -> tuple[int, ...]:
    found: list[int] = []
    for row in rows:
        if row.get("seq") is not None and row["seq"] not in found:
            found.append(int(row["seq"]))
    return tuple(found[:limit])


def _ref(row: dict[str, Any]) -> str:
    return f"{row['model']}@{row['version']}"


def _names(values: Iterable[Any]) -> str:
    return ", ".join(dict.fromkeys(str(v) for v in values))


class _Context:
    def __init__(self, ledger: Ledger, start: dt.date, end: dt.date, tables: Sequence[EvidenceTable],
                 verification: VerificationSummary, policy: LoadedPolicy | None,
                 now: dt.datetime | None) -> None:
        self.ledger, self.start, self.end, self.verification = ledger, start, end, verification
        self.tables = {table.name: table for table in tables}
        self.now = now or dt.datetime.now(dt.UTC)
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._checks: dict[str, CheckReport] = {}
        self.policy = policy or self._policy_at_end()

    def rows(self, name: str) -> list[dict[str, Any]]:
        if name not in self._rows:
            self._rows[name] = self.tables[name].records() if name in self.tables else []
        return self._rows[name]

    def _policy_at_end(self) -> LoadedPolicy:
        recorded = self.rows("policies")
        if not recorded:
            return LoadedPolicy(Policy(), "nbgov's defaults (no policy recorded by the period's end)", "")
        last = recorded[-1]
        try:
            rules = validate_policy(json.loads(last["policy"]), str(last["source"]))
        except NbgovError as exc:
            raise EvidenceError(f"the policy recorded at seq {last['seq']} cannot be read: "
                                f"{exc.message}") from None
        return LoadedPolicy(rules, str(last["source"]), str(last["sha256"]))

    def check(self, ref: str) -> CheckReport:
        """The policy check of a version, judged on the period's last day (not recorded)."""
        from nbgov.governance.checks import check_model

        if ref not in self._checks:
            self._checks[ref] = check_model(self.ledger, ref, self.policy, today=self.end, record=False)
        return self._checks[ref]

    def approved_in_period(self) -> list[dict[str, Any]]:
        return [r for r in self.rows("lifecycle_changes") if r["to_state"] == "approved"]

    def approved_during(self) -> list[str]:
        """Versions in the approved state at some time in the period."""
        refs = [r["ref"] for r in self.rows("model_inventory") if r["state"] == "approved"]
        refs += [_ref(r) for r in self.rows("lifecycle_changes")
                 if "approved" in (r["from_state"], r["to_state"])]
        return sorted(set(refs))


# -- the assessments --------------------------------------------------------------------------------


def _bias(c: _Context) -> _Result:
    tests: dict[str, list[dict[str, Any]]] = {}
    for row in c.rows("fairness_results"):
        tests.setdefault(_ref(row), []).append(row)
    evidence, gaps, good = [], [], 0
    if tests:
        rows = c.rows("fairness_results")
        breached = {r["seq"] for r in rows if r["verdict"] == "fail"}
        count = _n(len({r["seq"] for r in rows}), "bias test")
        evidence.append(Evidence(f"{count} of {_names(tests)} in the period, {len(breached)} breaching the "
                                 "policy", "fairness_results", _seqs(rows)))
        if c.rows("fairness_groups"):
            evidence.append(Evidence("selection rate, TPR and FPR of every group", "fairness_groups",
                                     _seqs(c.rows("fairness_groups"), 3)))
    approved = c.approved_in_period()
    for row in approved:
        ref, at = _ref(row), row["event_time"]
        before = [t for t in tests.get(ref, []) if t["event_time"] <= at]
        test = max(before, key=lambda t: t["seq"]) if before else _earlier_bias_test(c, row)
        if test is None:
            gaps.append(f"{ref} was approved on {_day(at)} without a bias test")
            continue
        failures = _bias_failures(c, test)
        where = "" if before else ", before the period"
        if failures:
            gaps.append(f"{ref} was approved on {_day(at)} although its latest bias test before it (seq "
                        f"{test['seq']}{where}) breached the policy: {'; '.join(failures)}")
        else:
            good += 1
            evidence.append(Evidence(f"{ref} approved on {_day(at)} after a bias test within the limits (seq "
                                     f"{test['seq']}{where})", "fairness_results" if before else None,
                                     (int(test["seq"]),)))
    status = _status(good, len(approved)) if approved else EVIDENCED if tests else NOT_APPLICABLE
    return status, evidence, gaps


def _earlier_bias_test(c: _Context, approval: dict[str, Any]) -> dict[str, Any] | None:
    frame = c.ledger.query_arrow(
        "SELECT seq, event_time, verdict, CAST(failures AS VARCHAR) AS failures FROM fairness_results "
        "WHERE model = $m AND version = $v "
        "AND CAST(timezone('UTC', event_time) AS DATE) < CAST($from AS DATE) ORDER BY seq DESC LIMIT 1",
        {"m": approval["model"], "v": approval["version"], "from": c.start.isoformat()}).table.to_pylist()
    return frame[0] if frame else None


def _bias_failures(c: _Context, test: dict[str, Any]) -> list[str]:
    """The limits a bias test breached: as recorded, or judged now when it was recorded unjudged."""
    if test["verdict"] == "pass":
        return []
    if test["verdict"] == "fail":
        return [str(f.get("message")) for f in json.loads(test["failures"] or "[]")] or ["verdict fail"]
    from nbgov.governance.evaluations import judge_fairness

    report = c.ledger.query_arrow("SELECT CAST(payload->'report' AS VARCHAR) AS r FROM events WHERE seq = $s",
                                  {"s": test["seq"]}).table.column("r")[0].as_py()
    return [f["message"] for f in judge_fairness(json.loads(report or "{}"), c.policy.policy.fairness)]


def _fitted_refs(c: _Context) -> list[str]:
    return list(dict.fromkeys(r["ref"] for r in c.rows("models")))


def _provenance(c: _Context) -> _Result:
    from nbgov.governance.checks import FAIL

    datasets, declared = c.rows("datasets"), c.rows("dataset_declarations")
    evidence, gaps, good = [], [], 0
    if datasets:
        algorithms = _names(r["algorithm"] or "no" for r in datasets)
        count = _n(len(datasets), "dataset read and write", "dataset reads and writes")
        evidence.append(Evidence(f"{count} recorded with content fingerprints ({algorithms})", "datasets",
                                 _seqs(datasets)))
    if declared:
        evidence.append(Evidence(f"provenance declared for {_names(r['path'] for r in declared)}",
                                 "dataset_declarations", _seqs(declared)))
    refs = _fitted_refs(c)
    for ref in refs:
        found = [f for f in c.check(ref).findings if f.code == "provenance"]
        failed = [f for f in found if f.status == FAIL]
        for finding in failed:
            prefix = f"{finding.subject}: "
            what = finding.message[len(prefix):]
            gaps.append(f"dataset {finding.subject} (training data of {ref}) has {what}"
                        if finding.message.startswith(prefix) else f"{ref}: {finding.message}")
        if found and not failed:
            good += 1
            seqs = _seqs(r for r in c.rows("models") if r["ref"] == ref)
            evidence.append(Evidence(f"{ref}: provenance of its training data known ("
                                     f"{'; '.join(f.message for f in found)})", "models", seqs))
    return _status(good, len(refs)), evidence, gaps


def _documentation(c: _Context) -> _Result:
    models, metrics, checks = c.rows("models"), c.rows("metrics"), c.rows("policy_checks")
    evidence, gaps, good = [], [], 0
    refs = _fitted_refs(c)
    if refs:
        evidence.append(Evidence(f"{_n(len(refs), 'model version')} fitted: {', '.join(refs)}", "models",
                                 _seqs(models)))
    if metrics:
        names = _names(r["metric"] for r in metrics)
        evidence.append(Evidence(f"{_n(len(metrics), 'metric')} logged ({names})",
                                 "metrics", _seqs(metrics)))
    if checks:
        passed = sum(r["verdict"] == "pass" for r in checks)
        evidence.append(Evidence(f"{_n(len(checks), 'policy check')}, {passed} passing", "policy_checks",
                                 _seqs(checks)))
    for ref in refs:
        fit = next(r for r in models if r["ref"] == ref)
        problems = []
        if fit["inputs"] in (None, "null", "[]") and fit["training_data"] in (None, "null", "{}"):
            problems.append("has no recorded training data")
        if not any(_ref(r) == ref for r in metrics):
            problems.append("has no recorded evaluation (metrics) in the period")
        if not any(_ref(r) == ref for r in checks):
            problems.append("was not policy-checked in the period")
        gaps += [f"{ref} {problem}" for problem in problems]
        good += not problems
    by_event = {r["event_id"]: r for r in checks}
    approvals = {a["event_id"]: a for a in c.rows("approvals")}
    for row in c.approved_in_period():  # the check an approval ran (its evidence) must have passed
        approval = approvals.get(row["event_id"])
        check = by_event.get(approval["evidence"]) if approval and approval["evidence"] else None
        if check is None or check["verdict"] != "pass":
            gaps.append(f"the approval of {_ref(row)} (seq {row['seq']}) rests on no passing policy check in "
                        "the period")
        else:
            good += 1
    changes = c.rows("lifecycle_changes")
    if changes:
        evidence.append(Evidence(f"{_n(len(changes), 'lifecycle change')} recorded with reasons",
                                 "lifecycle_changes", _seqs(changes)))
    return _status(good, len(refs) + len(c.approved_in_period())), evidence, gaps


def _approvals(c: _Context) -> _Result:
    rows = c.rows("approvals")
    decisions = [r for r in rows if r["decision"] in ("granted", "rejected")]
    refused = [r for r in rows if r["decision"] not in ("granted", "rejected")]
    authors = {r["ref"]: r["author"] for r in c.rows("model_inventory")}
    evidence, gaps, sound = [], [], []
    for row in decisions:
        ref, verb = _ref(row), "approved" if row["decision"] == "granted" else "rejected"
        problems = []
        if row["reviewer"] == authors.get(ref):
            problems.append(f"{ref} was {verb} by its own author {row['reviewer']} (seq {row['seq']})")
        if row.get("signature_valid") is not True:
            decision = "approval" if verb == "approved" else "rejection"
            problems.append(f"the {decision} of {ref} by {row['reviewer']} "
                            f"(seq {row['seq']}) has no valid signature: {row.get('signature_problem')}")
        gaps += problems
        sound += [] if problems else [row]
    if sound:
        evidence.append(Evidence(
            f"{_n(len(sound), 'signed decision')} by reviewers other than the author "
            f"({_names(r['reviewer'] for r in sound)}), signatures verified", "approvals", _seqs(sound)))
    if refused:
        reasons = Counter(reason for r in refused for reason in json.loads(r["reasons"] or "[]"))
        counted = ", ".join(f"{k} x{v}" for k, v in sorted(reasons.items()))
        evidence.append(Evidence(f"{_n(len(refused), 'refused attempt')} recorded ({counted})", "approvals",
                                 _seqs(refused)))
    changes, roles = c.rows("role_changes"), c.rows("roles")
    if changes:
        evidence.append(Evidence(f"{_n(len(changes), 'role change')} recorded with who made them",
                                 "role_changes", _seqs(changes)))
    if roles:
        held: dict[str, list[str]] = {}
        for r in roles:
            held.setdefault(r["role"], []).append(r["subject"])
        evidence.append(Evidence("roles at the period's end: " + "; ".join(
            f"{role}: {', '.join(who)}" for role, who in sorted(held.items())), "roles", _seqs(roles)))
    status = _status(len(sound), len(decisions)) if decisions else EVIDENCED if refused else NOT_APPLICABLE
    return status, evidence, gaps


def _drift(c: _Context) -> _Result:
    rows = c.rows("drift_results")
    tested: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        tested.setdefault(_ref(row), []).append(row)
    evidence, gaps = [], []
    if rows:
        count = _n(len({r["seq"] for r in rows}), "drift test")
        evidence.append(Evidence(f"{count} of {_names(tested)}", "drift_results", _seqs(rows)))
    for seq in _seqs((r for r in rows if r["drifted"]), 10**9):
        drifted = [r for r in rows if r["seq"] == seq and r["drifted"]]
        evidence.append(Evidence(f"drift found in {_ref(drifted[0])} on {_day(drifted[0]['event_time'])}: "
                                 f"{_names(r['feature'] for r in drifted)}", "drift_results", (seq,)))
    needed = c.approved_during()
    for ref in needed:
        if ref not in tested:
            gaps.append(f"{ref} was approved during the period but had no drift test in it")
    good = len(needed) - len(gaps)
    return (_status(good, len(needed)) if needed else EVIDENCED if rows else NOT_APPLICABLE), evidence, gaps


def _audit_trail(c: _Context) -> _Result:
    v = c.verification
    evidence, gaps = [], []
    counts = c.rows("event_counts")  # as the tables saw the ledger (a checkpoint cut since is not in it)
    last_seq = max((int(r["last_seq"]) for r in counts), default=None)
    evidence.append(Evidence(f"{_n(sum(r['events'] for r in counts), 'event')} recorded in the period"
                             + (f", up to seq {last_seq}" if last_seq else ""), "event_counts"))
    if v.ok:
        evidence.append(Evidence(f"ledger {v.ledger_id} verified: {_n(v.events, 'event')}, every leaf hash, "
                                 f"the hash chain and the Merkle tree intact (head seq {v.head_seq})"))
    else:
        gaps.append(f"the ledger failed verification: {v.first_problem or 'see nbgov verify'}")
    if v.checkpoint_size is None:
        gaps.append("no signed checkpoint of the ledger was given for the period")
    elif last_seq and v.checkpoint_size < last_seq:
        gaps.append(f"the signed checkpoint ({_n(v.checkpoint_size, 'event')}) does not cover the period's "
                    f"events after seq {v.checkpoint_size} (the last is seq {last_seq})")
    else:
        size = _n(v.checkpoint_size, "event")
        evidence.append(Evidence(f"signed checkpoint {v.checkpoint_origin or ''} of {size} covers every "
                                 "event of the period"))
    if c.rows("checkpoints"):
        evidence.append(Evidence(f"{_n(len(c.rows('checkpoints')), 'checkpoint')} signed in the period",
                                 "checkpoints", _seqs(c.rows("checkpoints"))))
    failures = c.rows("capture_failures")
    if failures:
        hooks, seqs = _names(r["hook"] for r in failures), ", ".join(map(str, _seqs(failures)))
        gaps.append(f"{_n(len(failures), 'capture failure')} in the period ({hooks}; seq {seqs}): work they "
                    "would have recorded is missing")
    return (MISSING if not v.ok else PARTIAL if gaps else EVIDENCED), evidence, gaps


def _vendors(c: _Context) -> _Result:
    from nbgov.governance.vendors import attestation_status

    links, vendors = c.rows("vendor_links"), {r["vendor"]: r for r in c.rows("vendors")}
    users: dict[str, list[str]] = {}
    for link in links:
        version = "" if link["version"] is None else f"@{link['version']}"
        users.setdefault(link["vendor"], []).append(link["model"] + version)
    if not users:
        return NOT_APPLICABLE, [Evidence(f"{_n(len(vendors), 'vendor')} registered, none used by a model",
                                         "vendors", _seqs(vendors.values()))] if vendors else [], []
    evidence, gaps, good = [], [], 0
    rules = c.policy.policy.vendors
    for vendor, models in sorted(users.items()):
        row, who = vendors.get(vendor), f"vendor {vendor} (used by {_names(models)})"
        attest = [r for r in c.rows("vendor_attestations") if r["vendor"] == vendor]
        later = _registered_after(c, vendor, row)
        if row is None:
            gaps.append(f"{who} is not registered")
            continue
        if later:  # attestation_status judges the latest registration, which is not the one in force
            listed = "; ".join(f"{r['certification']} period ended {r['period_end']}"
                               for r in attest) or "none"
            gaps.append(f"{who} was registered again on {later}, after the period, so the attestations in "
                        f"force at its end ({listed}) are not judged here")
            continue
        status = attestation_status(c.ledger, vendor, c.policy.policy, c.end)
        if status.ok:
            evidence.append(Evidence(f"{who}: current {'; '.join(status.current)}", "vendor_attestations",
                                     _seqs(attest) or (int(row["seq"]),)))
        elif status.expired:
            ended = ", ".join(f"{name} period ended {when}" for name, when in status.expired)
            gaps.append(f"{who}: attestation expired ({ended}; accepted for {rules.max_age_days} days after "
                        "the period end)")
        else:
            accepted = ", ".join(rules.accepted_certifications)
            gaps.append(f"{who}: no accepted attestation (accepted: {accepted})")
        if not row["evidence_fingerprint"]:
            gaps.append(f"{who}: no report or certificate file was fingerprinted as evidence")
        good += status.ok and bool(row["evidence_fingerprint"])
    return _status(good, len(users)), evidence, gaps


def _registered_after(c: _Context, vendor: str, row: dict[str, Any] | None) -> str:
    """The date of a registration of *vendor* after the one in force at the period's end ("" if none)."""
    frame = c.ledger.query_arrow("SELECT max(seq) AS s, max(event_time) AS t FROM events "
                                 "WHERE type = 'vendor_registered' AND (payload->>'name') = $v",
                                 {"v": vendor}).table
    latest, when = frame.column("s")[0].as_py(), frame.column("t")[0].as_py()
    return "" if row is None or latest is None or latest == row["seq"] else _day(when)


def _data_access(c: _Context) -> _Result:
    classes, reads, grants = c.rows("data_classifications"), c.rows("data_access"), c.rows("access_grants")
    if not classes:
        if any(r["direction"] == "read" for r in c.rows("datasets")):
            return MISSING, [], ["no dataset was classified by the end of the period, so confidential "
                                 "training data cannot be told apart (nbgov data classify PATH CLASS)"]
        return NOT_APPLICABLE, [], []
    kinds = Counter(r["classification"] for r in classes)
    evidence = [Evidence("classified datasets: " + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())),
                         "data_classifications", _seqs(classes))]
    if grants:
        count = _n(len(grants), "grant or revocation", "grants and revocations")
        evidence.append(Evidence(f"{count} of access", "access_grants", _seqs(grants)))
    violations: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in reads:
        if row["violation"]:
            violations.setdefault((row["actor"], row["path"]), []).append(row)
    gaps = [f"{actor} read {found[0]['classification_at_read']} data {path} without a recorded grant ("
            f"{_n(len(found), 'time')}, first on {_day(found[0]['read_at'])}, seq {found[0]['seq']})"
            for (actor, path), found in violations.items()]
    allowed = [r for r in reads if not r["violation"]]
    if allowed:
        readers = _names(r["actor"] for r in allowed)
        evidence.append(Evidence(f"{_n(len(allowed), 'read')} of classified data by {readers}, each covered "
                                 "by a grant or not needing one", "data_access", _seqs(allowed)))
    return (EVIDENCED if not violations else PARTIAL if allowed else MISSING), evidence, gaps


def _risks(c: _Context) -> _Result:
    from nbgov.governance.checks import FAIL, WARN

    latest: dict[str, str] = {}
    refs = _fitted_refs(c) + [_ref(r) for r in c.approved_in_period()] + c.approved_during()
    for ref in refs:
        model, _, version = ref.rpartition("@")
        if model not in latest or int(version) > int(latest[model].rpartition("@")[2]):
            latest[model] = ref
    evidence, gaps, good = [], [], 0
    if c.rows("risks"):
        evidence.append(Evidence(f"{_n(len(c.rows('risks')), 'risk')} in the register at the period's end",
                                 "risks", _seqs(c.rows("risks"))))
    for model, ref in sorted(latest.items()):
        found = [f for f in c.check(ref).findings if f.code in ("risk_tier", "risk_register", "risk_review")]
        bad = [f for f in found if f.status in (FAIL, WARN)]
        gaps += [f"{model}: {f.message}" for f in bad]
        if not bad:
            good += 1
            tiers = [r for r in c.rows("risk_tiers") if r["model"] == model]
            evidence.append(Evidence(f"{model}: {'; '.join(f.message for f in found)}", "risk_tiers",
                                     _seqs(tiers)))
    return _status(good, len(latest)), evidence, gaps


def _reviews(c: _Context) -> _Result:
    from nbgov.governance.checks import PASS, WARN

    runs, missed = c.rows("review_runs"), c.rows("missed_runs")
    evidence: list[Evidence] = []
    gaps: list[str] = []
    due = _due_times(c, gaps)
    jobs = sorted(set(due) | {r["job"] for r in runs if r["job"]} | {r["job"] for r in missed})
    succeeded = 0
    for job in jobs:
        job_runs = [r for r in runs if r["job"] == job]
        final: dict[Any, dict[str, Any]] = {}  # the last attempt at each due time
        for run in sorted(job_runs, key=lambda r: (r["attempt"] or 1, r["seq"])):
            final[run["scheduled_for"] or run["run_id"]] = run
        ok = [r for r in final.values() if r["status"] == "succeeded"]
        bad = [r for r in final.values() if r["status"] not in ("succeeded", "running")]
        succeeded += len(ok)
        if ok:
            evidence.append(Evidence(f"review job {job}: {len(ok)} of {_n(len(final), 'run')} succeeded",
                                     "review_runs", _seqs(ok)))
        if bad:
            last = bad[-1]
            gaps.append(f"review job {job}: {len(bad)} of {_n(len(final), 'run')} did not succeed ("
                        f"{_names(r['status'] for r in bad)}; latest on {_day(last['started_at'])}: "
                        f"{last['error_type'] or last['status']}: {last['error_message'] or 'no message'})")
        job_missed = [r for r in missed if r["job"] == job]
        if job_missed:
            gaps.append(f"review job {job} missed {_n(len(job_missed), 'run')} (due "
                        f"{', '.join(_moment(r['scheduled_for']) for r in job_missed)})")
        accounted = {r["scheduled_for"] for r in job_runs + job_missed}
        silent = [at for at in due.get(job, []) if at not in accounted]
        if silent:
            gaps.append(f"review job {job} was due {_n(len(silent), 'time')} in the period with no run or "
                        f"missed run recorded (first due {_moment(silent[0])})")
    by_hand = [r for r in runs if not r["job"]]
    if by_hand:
        evidence.append(Evidence(f"{_n(len(by_hand), 'review')} run by hand", "review_runs", _seqs(by_hand)))
        succeeded += sum(r["status"] == "succeeded" for r in by_hand)
        gaps += [f"review {str(r['notebook']).rsplit('/', 1)[-1]} run by hand on {_day(r['started_at'])} "
                 f"{r['status']} ({r['error_type'] or ''}: {r['error_message'] or ''})"
                 for r in by_hand if r["status"] not in ("succeeded", "running")]
    approved = [r["ref"] for r in c.rows("model_inventory") if r["state"] == "approved"]
    for ref in approved:
        for finding in c.check(ref).findings:
            if finding.code == "review_cadence" and finding.status == WARN:
                gaps.append(f"{ref}: {finding.message}")
            elif finding.code == "review_cadence" and finding.status == PASS:
                evidence.append(Evidence(f"{ref}: {finding.message}"))
    gaps += _undelivered(c, evidence)
    if not (jobs or runs or approved):
        return NOT_APPLICABLE, evidence, gaps
    return (EVIDENCED if not gaps else PARTIAL if succeeded else MISSING), evidence, gaps


def _moment(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def _undelivered(c: _Context, evidence: list[Evidence]) -> list[str]:
    alerts = c.rows("alerts")
    if alerts:
        reasons = Counter(r["reason"] for r in alerts)
        evidence.append(Evidence(f"{_n(len(alerts), 'alert')} raised ("
                                 f"{', '.join(f'{k} x{v}' for k, v in sorted(reasons.items()))})", "alerts",
                                 _seqs(alerts)))
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for row in c.rows("alert_deliveries"):
        last[(row["alert"], row["sink"])] = row
    by_id = {r["event_id"]: r for r in alerts}
    gaps = []
    for (alert, sink), row in last.items():
        if row["outcome"] != "delivered":
            raised = by_id.get(alert)
            about = f"seq {raised['seq']}, {raised['reason']}" if raised else alert
            gaps.append(f"alert ({about}) was not delivered to {sink}: {row['error']}")
    return gaps


def _due_times(c: _Context, gaps: list[str]) -> dict[str, list[dt.datetime]]:
    """Each job's due times in the period (until now), from the schedules in force at each moment;
    a schedule whose times cannot be listed is a gap."""
    from nbgov.errors import CronError
    from nbgov.reviews.cron import occurrences

    frame = c.ledger.query_arrow(
        "SELECT seq, event_time, change, job, cron, tz, grace_s, effective_from FROM schedule_events "
        "WHERE CAST(timezone('UTC', event_time) AS DATE) <= CAST($to AS DATE) ORDER BY event_time, seq",
        {"to": c.end.isoformat()}).table.to_pylist()
    begin = dt.datetime.combine(c.start, dt.time(), dt.UTC)
    stop = min(dt.datetime.combine(c.end + dt.timedelta(days=1), dt.time(), dt.UTC), c.now)
    due: dict[str, list[dt.datetime]] = {}
    for index, row in enumerate(frame):
        following = next((r["event_time"] for r in frame[index + 1:] if r["job"] == row["job"]), None)
        if row["change"] != "set":
            continue
        after = max(row["effective_from"] or row["event_time"], begin - dt.timedelta(microseconds=1))
        until = min(stop, following) if following is not None else stop
        try:
            times = [o.at for o in occurrences(row["cron"], row["tz"], after, until, limit=100_000)]
        except (CronError, ValueError) as exc:
            gaps.append(f"review job {row['job']}: its due times in the period cannot be listed ({exc})")
            continue
        grace = dt.timedelta(seconds=row["grace_s"] or 0)  # a run may still start within its grace
        due.setdefault(row["job"], []).extend(t for t in times if t + grace <= c.now and t < until)
    return due


_ASSESS = {"bias-testing": _bias, "data-provenance": _provenance, "model-documentation": _documentation,
           "approvals": _approvals, "drift-monitoring": _drift, "audit-trail": _audit_trail,
           "periodic-reviews": _reviews, "vendor-evidence": _vendors, "data-access": _data_access,
           "risk-register": _risks}
