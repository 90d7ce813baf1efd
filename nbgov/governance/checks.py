"""The policy check of a model version: what passes, what fails, why, and what to do.

:func:`check_model` reads the ledger (lineage, declarations, metrics, bias and drift tests,
vendors, the risk register, data access, approvals) and judges the version against the policy.
It records the result as a ``policy_evaluated`` event; a passing check moves a ``trained``
version to ``validated``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from nbgov import canonical
from nbgov.events import PolicyEvaluated
from nbgov.governance.evaluations import judge_fairness
from nbgov.governance.policy import LoadedPolicy, record_policy
from nbgov.governance.registry import ModelVersion, model_version, record_transition
from nbgov.governance.vendors import attestation_status

if TYPE_CHECKING:

    from nbgov.ledger.facade import Ledger

__all__ = ["CheckReport", "Finding", "check_model"]

PASS, FAIL, WARN, INFO = "pass", "fail", "warn", "info"


@dataclass(frozen=True)
class Finding:
    """One rule's outcome for one subject."""

    code: str
    status: str
    subject: str
    message: str
    remedy: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "status": self.status, "subject": self.subject,
                "message": self.message, "remedy": self.remedy}


@dataclass(frozen=True, repr=False)
class CheckReport:
    """The findings of one check."""

    model: str
    version: int
    state: str
    tier: str
    policy_source: str
    policy_sha256: str
    findings: tuple[Finding, ...]
    digest: str
    event_id: str | None
    checked_at: str

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.status == FAIL]

    @property
    def verdict(self) -> str:
        return PASS if self.passed else FAIL

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "state": self.state, "tier": self.tier,
                "verdict": self.verdict, "policy": self.policy_source,
                "policy_sha256": self.policy_sha256, "digest": self.digest,
                "event_id": self.event_id, "findings": [f.as_dict() for f in self.findings]}

    def render(self) -> str:
        """The report as text, failures first."""
        order = {FAIL: 0, WARN: 1, PASS: 2, INFO: 3}
        lines = [
            f"{self.ref} ({self.state}, {self.tier} risk): {self.verdict.upper()}"
            f" - {len(self.failures)} failing, {sum(f.status == WARN for f in self.findings)} warning,"
            f" {sum(f.status == PASS for f in self.findings)} passing",
            f"policy {self.policy_source} (sha256 {self.policy_sha256[:12]})",
        ]
        for finding in sorted(self.findings, key=lambda f: order[f.status]):
            lines.append(f"  {finding.status.upper():4}  {finding.code:22} {finding.message}")
            if finding.remedy and finding.status in (FAIL, WARN):
                lines.append(f"        {'':22} -> {finding.remedy}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return self.render()

    def _repr_html_(self) -> str:
        colours = {FAIL: "#cf222e", WARN: "#9a6700", PASS: "#1a7f37", INFO: "#57606a"}
        rows = "".join(
            f"<tr><td style='color:{colours[f.status]}'><b>{f.status.upper()}</b></td>"
            f"<td>{html.escape(f.code)}</td><td>{html.escape(f.message)}</td>"
            f"<td>{html.escape(f.remedy or '') if f.status in (FAIL, WARN) else ''}</td></tr>"
            for f in sorted(self.findings, key=lambda f: {FAIL: 0, WARN: 1, PASS: 2, INFO: 3}[f.status]))
        head = html.escape(self.render().splitlines()[0])
        return (f"<div><b style='color:{colours[self.verdict]}'>{head}</b><br>"
                f"<small>policy {html.escape(self.policy_source)} (sha256 {self.policy_sha256[:12]})"
                f"</small><table><tr><th></th><th>rule</th><th>finding</th><th>what to do</th></tr>"
                f"{rows}</table></div>")


def check_model(
    ledger: Ledger,
    spec: str,
    policy: LoadedPolicy,
    *,
    today: dt.date | None = None,
    purpose: str = "check",
    record: bool = True,
) -> CheckReport:
    """Check a model version (``NAME`` or ``NAME@VERSION``) against *policy*.

    Records the policy (when it changed) and a ``policy_evaluated`` event, and moves a passing
    ``trained`` version to ``validated``, unless *record* is false.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    version = model_version(ledger, spec)
    tier_name = version.tier or policy.policy.default_tier
    findings: list[Finding] = []
    findings += _tier(version, policy)
    findings += _provenance(ledger, version, policy)
    findings += _metrics(ledger, version, policy)
    findings += _fairness(ledger, version, policy)
    findings += _drift(ledger, version, policy)
    findings += _vendors(ledger, version, policy, today)
    findings += _risks(ledger, version, policy, tier_name, today)
    findings += _data_access(ledger, version)
    findings += _unrecorded_models(ledger, version)
    findings += _review_cadence(ledger, version, policy, tier_name, today)
    findings += _approvals(version, policy, tier_name)
    payload = [f.as_dict() for f in findings]
    digest = hashlib.sha256(canonical.encode(payload, path="findings")).hexdigest()
    verdict = FAIL if any(f.status == FAIL for f in findings) else PASS
    event_id = None
    if record:
        record_policy(ledger, policy)
        event_id = ledger.append(PolicyEvaluated(
            model=version.model, version=version.version, verdict=verdict, findings=payload,
            digest=digest, policy_sha256=policy.sha256, purpose=purpose))
        if verdict == PASS and version.state == "trained":
            record_transition(ledger, version, "validated", "policy check passed", evidence=event_id)
            version = model_version(ledger, version.ref)
    return CheckReport(version.model, version.version, version.state, tier_name, policy.source,
                       policy.sha256, tuple(findings), digest, event_id,
                       dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))


# -- the rules -----------------------------------------------------------------------------------


def _tier(version: ModelVersion, policy: LoadedPolicy) -> list[Finding]:
    if version.tier:
        return [Finding("risk_tier", PASS, version.model, f"risk tier {version.tier} assessed")]
    return [Finding(
        "risk_tier", WARN, version.model,
        f"no risk tier assessed: the policy's default ({policy.policy.default_tier}) applies",
        f"nbgov risk tier {version.model} low|medium|high --reason ...")]


def _provenance(ledger: Ledger, version: ModelVersion, policy: LoadedPolicy) -> list[Finding]:
    required = policy.policy.provenance.required
    datasets = ledger.query("""
        SELECT u.node, u.label,
               EXISTS (SELECT 1 FROM events w WHERE w.type = 'dataset_written'
                        AND (w.payload->>'node') = u.node)
               AND EXISTS (SELECT 1 FROM lineage_upstream(u.node) d
                           WHERE d.kind = 'dataset' AND d.node <> u.node) AS derived
        FROM lineage_upstream($node) u WHERE u.kind = 'dataset' ORDER BY u.node""", {"node": version.node})
    if datasets.empty:
        return [Finding(
            "provenance", FAIL, version.ref, "no training data in the lineage: where the data came "
            "from is unknown",
            "read the training data from files (pandas/pyarrow/polars/duckdb) with nbgov loaded")]
    declared = ledger.query("""
        SELECT dataset_node, path, arg_max(source, seq) AS source, arg_max(license, seq) AS license,
               arg_max(owner, seq) AS owner
        FROM dataset_declarations GROUP BY ALL""")
    facts: dict[str, dict[str, Any]] = {}
    for row in declared.to_dict("records"):
        for key in (row["dataset_node"], row["path"]):
            entry = facts.setdefault(str(key), {})
            for fact in ("source", "license", "owner"):
                if row[fact]:
                    entry[fact] = row[fact]
    rows = list(zip(datasets["node"], datasets["label"], datasets["derived"]))
    known_facts = {
        str(node): {**facts.get(str(label), {}), **facts.get(str(node), {})} for node, label, _ in rows}
    complete = [str(node) for node, _, _ in rows
                if all(known_facts[str(node)].get(fact) for fact in required)]
    # A declaration describes where a dataset came from, so it covers what lies upstream of it
    # (a file exported from a package's data, then declared, covers that package data).
    covered_by: dict[str, str] = {}
    for declared_node in complete:
        upstream = ledger.query("SELECT node FROM lineage_upstream($n) WHERE kind = 'dataset'",
                                {"n": declared_node})
        for node in upstream["node"]:
            covered_by.setdefault(str(node), declared_node)
    labels = {str(node): str(label or node) for node, label, _ in rows}
    findings: list[Finding] = []
    for node, _, derived in rows:
        label = labels[str(node)]
        known = known_facts[str(node)]
        missing = [fact for fact in required if not known.get(fact)]
        if not missing:
            facts_text = ", ".join(f"{k} {known[k]!r}" for k in required) or "no facts required"
            findings.append(Finding("provenance", PASS, label, f"{label}: {facts_text}"))
        elif str(node) in covered_by:
            declared_label = labels.get(covered_by[str(node)], covered_by[str(node)])
            findings.append(Finding(
                "provenance", PASS, label,
                f"{label}: covered by the declaration of {declared_label}, which was derived from it"))
        elif derived:
            # Written by recorded work from other datasets, which are judged in their own right.
            findings.append(Finding("provenance", PASS, label,
                                    f"{label}: derived from recorded datasets (its lineage is its "
                                    "provenance)"))
        else:
            findings.append(Finding(
                "provenance", FAIL, label, f"{label}: no declared {', '.join(missing)}",
                f"%nbgov dataset {label} " + " ".join(f"--{m} ..." for m in missing)))
    return findings


def _metrics(ledger: Ledger, version: ModelVersion, policy: LoadedPolicy) -> list[Finding]:
    rules = policy.policy.metrics
    if not rules.minimum and not rules.maximum:
        return []
    latest = ledger.query("""
        SELECT metric, arg_max(value, seq) AS value FROM metrics
        WHERE model = $m AND version = $v AND value IS NOT NULL GROUP BY metric""",
        {"m": version.model, "v": version.version})
    values = dict(zip(latest["metric"], latest["value"]))
    findings = []
    bounds = [(n, b, "minimum") for n, b in rules.minimum.items()]
    bounds += [(n, b, "maximum") for n, b in rules.maximum.items()]
    for name, bound, kind in bounds:
        value = values.get(name)
        if value is None:
            findings.append(Finding(
                "metrics", FAIL, name, f"no {name} recorded for {version.ref} (policy {kind} {bound:g})",
                f"compute it with scikit-learn's {name} (captured) or nbgov.log_metrics"))
        elif (value < bound) if kind == "minimum" else (value > bound):
            word = "below the minimum" if kind == "minimum" else "above the maximum"
            findings.append(Finding("metrics", FAIL, name, f"{name} {value:.4g} is {word} {bound:g}",
                                    "improve the model, or change the policy through review"))
        else:
            findings.append(Finding("metrics", PASS, name, f"{name} {value:.4g} meets the {kind} {bound:g}"))
    return findings


def _fairness(ledger: Ledger, version: ModelVersion, policy: LoadedPolicy) -> list[Finding]:
    rules = policy.policy.fairness
    frame = ledger.query("""
        SELECT event_id, event_time, payload->'report' AS report, payload->>'policy_sha256' AS sha,
               (payload->'sensitive')::VARCHAR[] AS sensitive
        FROM events WHERE type = 'fairness_evaluated' AND (payload->>'model') = $m
             AND fit_version(payload, seq) = $v ORDER BY seq DESC""",
        {"m": version.model, "v": version.version})
    if frame.empty:
        status = FAIL if rules.required else INFO
        return [Finding("fairness", status, version.ref, f"no bias test recorded for {version.ref}",
                        "nbgov.fairness(y_true, y_pred, sensitive=..., model=...) on evaluation data")]
    # The latest test covering each attribute the policy names (or simply the latest test).
    wanted = rules.sensitive_features
    chosen: list[tuple[str, dict[str, Any]]] = []
    if wanted:
        for name in wanted:
            for event_id, report, sensitive in zip(frame["event_id"], frame["report"], frame["sensitive"]):
                if name in list(sensitive):
                    chosen.append((str(event_id), orjson.loads(report)))
                    break
    else:
        chosen.append((str(frame["event_id"].iloc[0]), orjson.loads(frame["report"].iloc[0])))
    if not chosen:
        return [Finding("fairness", FAIL, version.ref,
                        f"no bias test of {version.ref} covers {', '.join(wanted)}",
                        "run nbgov.fairness with those attributes as sensitive")]
    findings = []
    seen: set[str] = set()
    for event_id, report in chosen:
        if event_id in seen:
            continue
        seen.add(event_id)
        covered = [a["attribute"] for a in report.get("attributes", [])]
        failures = [f for f in judge_fairness(report, rules)
                    if f["rule"] != "fairness.sensitive_features"]
        if failures:
            findings += [Finding("fairness", FAIL, f.get("attribute") or version.ref, f["message"],
                                 "mitigate the disparity (e.g. reweighing or group thresholds), "
                                 "retrain and test again")
                         for f in failures]
        else:
            findings.append(Finding("fairness", PASS, ", ".join(covered),
                                    f"bias test (event {event_id}) within the policy's limits over "
                                    f"{', '.join(covered)}"))
    return findings


def _drift(ledger: Ledger, version: ModelVersion, policy: LoadedPolicy) -> list[Finding]:
    frame = ledger.query("""
        SELECT event_id, payload->>'verdict' AS verdict, payload->'failures' AS failures,
               payload->>'policy_sha256' AS sha
        FROM events WHERE type = 'drift_evaluated' AND (payload->>'model') = $m
             AND fit_version(payload, seq) = $v ORDER BY seq DESC LIMIT 1""",
        {"m": version.model, "v": version.version})
    if frame.empty:
        return [Finding("drift", INFO, version.ref, "no drift test recorded yet",
                        "schedule a drift review (nbgov.drift on new data)")]
    row = frame.iloc[0]
    if row["verdict"] == FAIL:
        failures = orjson.loads(row["failures"])
        return [Finding("drift", FAIL, f.get("feature", version.ref), f["message"],
                        "investigate the shift; retrain or recalibrate on current data")
                for f in failures]
    note = "" if row["sha"] == policy.sha256 else " (judged under an earlier or no policy)"
    return [Finding("drift", PASS, version.ref, f"latest drift test (event {row['event_id']}) found "
                    f"no drift{note}")]


def _vendors(ledger: Ledger, version: ModelVersion, policy: LoadedPolicy, today: dt.date) -> list[Finding]:
    linked = ledger.query("""
        SELECT DISTINCT vendor FROM model_vendors
        WHERE model = $m AND (version IS NULL OR version = $v) ORDER BY vendor""",
        {"m": version.model, "v": version.version})
    findings = []
    for vendor in linked["vendor"]:
        status = attestation_status(ledger, str(vendor), policy.policy, today)
        if not status.registered:
            findings.append(Finding("vendor", FAIL, str(vendor), f"vendor {vendor} is not registered",
                                    "nbgov vendor register ..."))
        elif status.ok:
            findings.append(Finding("vendor", PASS, str(vendor),
                                    f"vendor {vendor}: current {'; '.join(status.current)}"))
        elif status.expired:
            expired = ", ".join(f"{name} period ended {end}" for name, end in status.expired)
            findings.append(Finding(
                "vendor", FAIL, str(vendor),
                f"vendor {vendor}: attestation expired ({expired}; accepted for "
                f"{policy.policy.vendors.max_age_days} days after the period end)",
                f"obtain the vendor's current report and re-register it: nbgov vendor register {vendor} ..."))
        else:
            findings.append(Finding(
                "vendor", FAIL, str(vendor),
                f"vendor {vendor}: no accepted attestation (accepted: "
                f"{', '.join(policy.policy.vendors.accepted_certifications)})",
                "record the vendor's SOC 2 Type II or ISO 27001 attestation"))
    return findings


def _risks(ledger: Ledger, version: ModelVersion, policy: LoadedPolicy, tier: str,
           today: dt.date) -> list[Finding]:
    required = policy.policy.tier(tier).risk_categories
    frame = ledger.query("""
        SELECT risk_id, category, next_review, status, owner FROM risks WHERE model = $m""",
        {"m": version.model})
    present = set(frame["category"])
    findings = []
    missing = [c for c in required if c not in present]
    if missing:
        findings.append(Finding(
            "risk_register", FAIL, version.model,
            f"risk register lacks {', '.join(missing)} (required for {tier}-risk models)",
            f"nbgov risk add {version.model} --category {missing[0]} ..."))
    elif required:
        findings.append(Finding("risk_register", PASS, version.model,
                                f"risk register covers {', '.join(required)}"))
    for risk_id, review, status in zip(frame["risk_id"], frame["next_review"], frame["status"]):
        if status != "open" or review is None:
            continue
        due = review.date() if hasattr(review, "date") else review
        if due < today:
            findings.append(Finding(
                "risk_review", FAIL, str(risk_id),
                f"risk {risk_id} was due for review on {due.isoformat()}",
                f"review it and record the outcome: nbgov risk add {version.model} --id {risk_id} ..."))
    return findings


def _data_access(ledger: Ledger, version: ModelVersion) -> list[Finding]:
    # Reads, in the session that trained the version, of classified datasets its training data
    # came from.
    frame = ledger.query("""
        SELECT DISTINCT d.actor, d.path, d.classification_at_read, d.violation
        FROM data_access d
        WHERE d.dataset_node IN (SELECT node FROM lineage_upstream($node) WHERE kind = 'dataset')
              AND d.session_id IN (SELECT session_id FROM models WHERE node = $node)
        ORDER BY d.path, d.actor""", {"node": version.node})
    findings = []
    for actor, path, classification, violation in zip(
            frame["actor"], frame["path"], frame["classification_at_read"], frame["violation"]):
        if violation:
            findings.append(Finding(
                "data_access", FAIL, str(path),
                f"{actor} read {classification} data {path} without a recorded grant",
                f"a data steward grants access (nbgov data grant {actor} {path}), or the model is "
                "retrained without it"))
    if not frame.empty and not findings:
        findings.append(Finding("data_access", PASS, version.ref,
                                "every read of classified training data was covered by a grant"))
    return findings


def _unrecorded_models(ledger: Ledger, version: ModelVersion) -> list[Finding]:
    """Models loaded from files that match no recorded version, upstream of this version (their
    outputs fed its training data): trained outside the record."""
    frame = ledger.query("""
        SELECT u.path, u.file_sha256, u.notebook, u.actor FROM unrecorded_models u
        WHERE u.node IN (SELECT node FROM lineage_upstream($node) WHERE kind = 'unrecorded model')
        ORDER BY u.seq""", {"node": version.node})
    return [Finding(
        "unrecorded_model", FAIL, str(path),
        f"an unrecorded model fed this version's training data: {path} (sha256 "
        f"{str(sha)[:16]}, loaded by {actor}), trained where nbgov did not record it",
        "retrain that model under nbgov (or record how it was trained) and train this version again")
        for path, sha, actor in zip(frame["path"], frame["file_sha256"], frame["actor"])]


def _review_cadence(ledger: Ledger, version: ModelVersion, policy: LoadedPolicy, tier: str,
                    today: dt.date) -> list[Finding]:
    if version.state != "approved":
        return []
    every = policy.policy.tier(tier).review_every_days
    frame = ledger.query("""
        SELECT max(event_time) AS last FROM policy_evaluations
        WHERE model = $m AND version = $v AND verdict = 'pass'""", {"m": version.model, "v": version.version})
    last = frame["last"].iloc[0]
    if last is None or last != last:
        return [Finding("review_cadence", WARN, version.ref, "approved but never passed a check",
                        f"nbgov check {version.ref}")]
    last_day = last.date()
    due = last_day + dt.timedelta(days=every)
    if due < today:
        # This check is the review: it is recorded late, and passes or fails on its own merits.
        return [Finding("review_cadence", WARN, version.ref,
                        f"review overdue: last passing review {last_day.isoformat()}, due "
                        f"{due.isoformat()} ({tier}-risk models are reviewed every {every} days)",
                        f"schedule the review: nbgov check {version.ref} every {every} days")]
    return [Finding("review_cadence", PASS, version.ref,
                    f"last passing review {last_day.isoformat()}, next due {due.isoformat()}")]


def _approvals(version: ModelVersion, policy: LoadedPolicy, tier: str) -> list[Finding]:
    required = policy.policy.approvals_required(tier)
    who = f" ({', '.join(version.approvers)})" if version.approvers else ""
    return [Finding("approvals", INFO, version.ref,
                    f"{version.approvals} of {required} required approval(s){who}")]


def findings_codes(findings: Iterable[Finding]) -> list[str]:
    return sorted({f.code for f in findings if f.status == FAIL})
