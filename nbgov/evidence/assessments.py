"""How each of nbgov's controls is assessed over a period's evidence: one function per control,
keyed by the control's id in :data:`ASSESSMENTS`, each returning its status, the evidence found and
the gaps, in plain words.

Rules are not re-implemented: policy findings come from
:func:`nbgov.governance.checks.check_model` (run without recording, judged on the period's last day), vendor
attestations from :func:`nbgov.governance.vendors.attestation_status`, signatures from
:func:`nbgov.governance.approvals.verify_approvals` (the ``signature_valid`` column), reads without a grant
from the ``data_access`` view, due review times from :func:`nbgov.reviews.cron.occurrences`.
:func:`nbgov.evidence.controls.assess_controls` runs them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from nbgov.evidence.assessment_context import (
    EVIDENCED,
    MISSING,
    NOT_APPLICABLE,
    PARTIAL,
    Context,
    Evidence,
    Result,
    day_of,
    n_of,
    names_of,
    ref_of,
    seqs_of,
    status_of,
)

__all__ = ["ASSESSMENTS"]


def _bias(c: Context) -> Result:
    tests: dict[str, list[dict[str, Any]]] = {}
    for row in c.rows("fairness_results"):
        tests.setdefault(ref_of(row), []).append(row)
    evidence, gaps, good = [], [], 0
    if tests:
        rows = c.rows("fairness_results")
        breached = {r["seq"] for r in rows if r["verdict"] == "fail"}
        count = n_of(len({r["seq"] for r in rows}), "bias test")
        evidence.append(Evidence(f"{count} of {names_of(tests)} in the period, {len(breached)} breaching the "
                                 "policy", "fairness_results", seqs_of(rows)))
        if c.rows("fairness_groups"):
            evidence.append(Evidence("selection rate, TPR and FPR of every group", "fairness_groups",
                                     seqs_of(c.rows("fairness_groups"), 3)))
    approved = c.approved_in_period()
    for row in approved:
        ref, at = ref_of(row), row["event_time"]
        before = [t for t in tests.get(ref, []) if t["event_time"] <= at]
        test = max(before, key=lambda t: t["seq"]) if before else _earlier_bias_test(c, row)
        if test is None:
            gaps.append(f"{ref} was approved on {day_of(at)} without a bias test")
            continue
        failures = _bias_failures(c, test)
        where = "" if before else ", before the period"
        if failures:
            gaps.append(f"{ref} was approved on {day_of(at)} although its latest bias test before it (seq "
                        f"{test['seq']}{where}) breached the policy: {'; '.join(failures)}")
        else:
            good += 1
            evidence.append(Evidence(f"{ref} approved on {day_of(at)} after a bias test within the limits "
                                     f"(seq {test['seq']}{where})", "fairness_results" if before else None,
                                     (int(test["seq"]),)))
    status = status_of(good, len(approved)) if approved else EVIDENCED if tests else NOT_APPLICABLE
    return status, evidence, gaps


def _earlier_bias_test(c: Context, approval: dict[str, Any]) -> dict[str, Any] | None:
    frame = c.ledger.query_arrow(
        "SELECT seq, event_time, verdict, CAST(failures AS VARCHAR) AS failures FROM fairness_results "
        "WHERE model = $m AND version = $v "
        "AND CAST(timezone('UTC', event_time) AS DATE) < CAST($from AS DATE) ORDER BY seq DESC LIMIT 1",
        {"m": approval["model"], "v": approval["version"], "from": c.start.isoformat()}).table.to_pylist()
    return frame[0] if frame else None


def _bias_failures(c: Context, test: dict[str, Any]) -> list[str]:
    """The limits a bias test breached: as recorded, or judged now when it was recorded unjudged."""
    if test["verdict"] == "pass":
        return []
    if test["verdict"] == "fail":
        return [str(f.get("message")) for f in json.loads(test["failures"] or "[]")] or ["verdict fail"]
    from nbgov.governance.evaluations import judge_fairness

    report = c.ledger.query_arrow("SELECT CAST(payload->'report' AS VARCHAR) AS r FROM events WHERE seq = $s",
                                  {"s": test["seq"]}).table.column("r")[0].as_py()
    return [f["message"] for f in judge_fairness(json.loads(report or "{}"), c.policy.policy.fairness)]


def _fitted_refs(c: Context) -> list[str]:
    return list(dict.fromkeys(r["ref"] for r in c.rows("models")))


def _provenance(c: Context) -> Result:
    from nbgov.governance.checks import FAIL

    datasets, declared = c.rows("datasets"), c.rows("dataset_declarations")
    evidence, gaps, good = [], [], 0
    if datasets:
        algorithms = names_of(r["algorithm"] or "no" for r in datasets)
        count = n_of(len(datasets), "dataset read and write", "dataset reads and writes")
        evidence.append(Evidence(f"{count} recorded with content fingerprints ({algorithms})", "datasets",
                                 seqs_of(datasets)))
    if declared:
        evidence.append(Evidence(f"provenance declared for {names_of(r['path'] for r in declared)}",
                                 "dataset_declarations", seqs_of(declared)))
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
            seqs = seqs_of(r for r in c.rows("models") if r["ref"] == ref)
            evidence.append(Evidence(f"{ref}: provenance of its training data known ("
                                     f"{'; '.join(f.message for f in found)})", "models", seqs))
    return status_of(good, len(refs)), evidence, gaps


def _documentation(c: Context) -> Result:
    models, metrics, checks = c.rows("models"), c.rows("metrics"), c.rows("policy_checks")
    evidence, gaps, good = [], [], 0
    refs = _fitted_refs(c)
    if refs:
        evidence.append(Evidence(f"{n_of(len(refs), 'model version')} fitted: {', '.join(refs)}", "models",
                                 seqs_of(models)))
    if metrics:
        names = names_of(r["metric"] for r in metrics)
        evidence.append(Evidence(f"{n_of(len(metrics), 'metric')} logged ({names})",
                                 "metrics", seqs_of(metrics)))
    if checks:
        passed = sum(r["verdict"] == "pass" for r in checks)
        evidence.append(Evidence(f"{n_of(len(checks), 'policy check')}, {passed} passing", "policy_checks",
                                 seqs_of(checks)))
    for ref in refs:
        fit = next(r for r in models if r["ref"] == ref)
        problems = []
        if fit["inputs"] in (None, "null", "[]") and fit["training_data"] in (None, "null", "{}"):
            problems.append("has no recorded training data")
        if not any(ref_of(r) == ref for r in metrics):
            problems.append("has no recorded evaluation (metrics) in the period")
        if not any(ref_of(r) == ref for r in checks):
            problems.append("was not policy-checked in the period")
        gaps += [f"{ref} {problem}" for problem in problems]
        good += not problems
    by_event = {r["event_id"]: r for r in checks}
    approvals = {a["event_id"]: a for a in c.rows("approvals")}
    for row in c.approved_in_period():  # the check an approval ran (its evidence) must have passed
        approval = approvals.get(row["event_id"])
        check = by_event.get(approval["evidence"]) if approval and approval["evidence"] else None
        if check is None or check["verdict"] != "pass":
            gaps.append(f"the approval of {ref_of(row)} (seq {row['seq']}) rests on no passing policy check "
                        "in the period")
        else:
            good += 1
    changes = c.rows("lifecycle_changes")
    if changes:
        evidence.append(Evidence(f"{n_of(len(changes), 'lifecycle change')} recorded with reasons",
                                 "lifecycle_changes", seqs_of(changes)))
    return status_of(good, len(refs) + len(c.approved_in_period())), evidence, gaps


def _approvals(c: Context) -> Result:
    rows = c.rows("approvals")
    decisions = [r for r in rows if r["decision"] in ("granted", "rejected")]
    refused = [r for r in rows if r["decision"] not in ("granted", "rejected")]
    authors = {r["ref"]: r["author"] for r in c.rows("model_inventory")}
    evidence, gaps, sound = [], [], []
    for row in decisions:
        ref, verb = ref_of(row), "approved" if row["decision"] == "granted" else "rejected"
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
            f"{n_of(len(sound), 'signed decision')} by reviewers other than the author "
            f"({names_of(r['reviewer'] for r in sound)}), signatures verified", "approvals", seqs_of(sound)))
    if refused:
        reasons = Counter(reason for r in refused for reason in json.loads(r["reasons"] or "[]"))
        counted = ", ".join(f"{k} x{v}" for k, v in sorted(reasons.items()))
        evidence.append(Evidence(f"{n_of(len(refused), 'refused attempt')} recorded ({counted})", "approvals",
                                 seqs_of(refused)))
    changes, roles = c.rows("role_changes"), c.rows("roles")
    if changes:
        evidence.append(Evidence(f"{n_of(len(changes), 'role change')} recorded with who made them",
                                 "role_changes", seqs_of(changes)))
    if roles:
        held: dict[str, list[str]] = {}
        for r in roles:
            held.setdefault(r["role"], []).append(r["subject"])
        evidence.append(Evidence("roles at the period's end: " + "; ".join(
            f"{role}: {', '.join(who)}" for role, who in sorted(held.items())), "roles", seqs_of(roles)))
    status = status_of(len(sound), len(decisions)) if decisions else EVIDENCED if refused else NOT_APPLICABLE
    return status, evidence, gaps


def _drift(c: Context) -> Result:
    rows = c.rows("drift_results")
    tested: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        tested.setdefault(ref_of(row), []).append(row)
    evidence, gaps = [], []
    if rows:
        count = n_of(len({r["seq"] for r in rows}), "drift test")
        evidence.append(Evidence(f"{count} of {names_of(tested)}", "drift_results", seqs_of(rows)))
    for seq in seqs_of((r for r in rows if r["drifted"]), 10**9):
        drifted = [r for r in rows if r["seq"] == seq and r["drifted"]]
        evidence.append(Evidence(f"drift found in {ref_of(drifted[0])} on "
                                 f"{day_of(drifted[0]['event_time'])}: "
                                 f"{names_of(r['feature'] for r in drifted)}", "drift_results", (seq,)))
    needed = c.approved_during()
    for ref in needed:
        if ref not in tested:
            gaps.append(f"{ref} was approved during the period but had no drift test in it")
    good = len(needed) - len(gaps)
    return (status_of(good, len(needed)) if needed else EVIDENCED if rows else NOT_APPLICABLE), evidence, gaps


def _audit_trail(c: Context) -> Result:
    v = c.verification
    evidence, gaps = [], []
    counts = c.rows("event_counts")  # as the tables saw the ledger (a checkpoint cut since is not in it)
    last_seq = max((int(r["last_seq"]) for r in counts), default=None)
    evidence.append(Evidence(f"{n_of(sum(r['events'] for r in counts), 'event')} recorded in the period"
                             + (f", up to seq {last_seq}" if last_seq else ""), "event_counts"))
    if v.ok:
        evidence.append(Evidence(f"ledger {v.ledger_id} verified: {n_of(v.events, 'event')}, every leaf "
                                 f"hash, the hash chain and the Merkle tree intact (head seq {v.head_seq})"))
    else:
        gaps.append(f"the ledger failed verification: {v.first_problem or 'see nbgov verify'}")
    if v.checkpoint_size is None:
        gaps.append("no signed checkpoint of the ledger was given for the period")
    elif last_seq and v.checkpoint_size < last_seq:
        gaps.append(f"the signed checkpoint ({n_of(v.checkpoint_size, 'event')}) does not cover the period's "
                    f"events after seq {v.checkpoint_size} (the last is seq {last_seq})")
    else:
        size = n_of(v.checkpoint_size, "event")
        evidence.append(Evidence(f"signed checkpoint {v.checkpoint_origin or ''} of {size} covers every "
                                 "event of the period"))
    if c.rows("checkpoints"):
        evidence.append(Evidence(f"{n_of(len(c.rows('checkpoints')), 'checkpoint')} signed in the period",
                                 "checkpoints", seqs_of(c.rows("checkpoints"))))
    failures = c.rows("capture_failures")
    if failures:
        hooks, seqs = names_of(r["hook"] for r in failures), ", ".join(map(str, seqs_of(failures)))
        gaps.append(f"{n_of(len(failures), 'capture failure')} in the period ({hooks}; seq {seqs}): work "
                    "they would have recorded is missing")
    return (MISSING if not v.ok else PARTIAL if gaps else EVIDENCED), evidence, gaps


def _vendors(c: Context) -> Result:
    from nbgov.governance.vendors import attestation_status

    links, vendors = c.rows("vendor_links"), {r["vendor"]: r for r in c.rows("vendors")}
    users: dict[str, list[str]] = {}
    for link in links:
        version = "" if link["version"] is None else f"@{link['version']}"
        users.setdefault(link["vendor"], []).append(link["model"] + version)
    if not users:
        return NOT_APPLICABLE, [Evidence(f"{n_of(len(vendors), 'vendor')} registered, none used by a model",
                                         "vendors", seqs_of(vendors.values()))] if vendors else [], []
    evidence, gaps, good = [], [], 0
    rules = c.policy.policy.vendors
    for vendor, models in sorted(users.items()):
        row, who = vendors.get(vendor), f"vendor {vendor} (used by {names_of(models)})"
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
                                     seqs_of(attest) or (int(row["seq"]),)))
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
    return status_of(good, len(users)), evidence, gaps


def _registered_after(c: Context, vendor: str, row: dict[str, Any] | None) -> str:
    """The date of a registration of *vendor* after the one in force at the period's end ("" if none)."""
    frame = c.ledger.query_arrow("SELECT max(seq) AS s, max(event_time) AS t FROM events "
                                 "WHERE type = 'vendor_registered' AND (payload->>'name') = $v",
                                 {"v": vendor}).table
    latest, when = frame.column("s")[0].as_py(), frame.column("t")[0].as_py()
    return "" if row is None or latest is None or latest == row["seq"] else day_of(when)


def _data_access(c: Context) -> Result:
    classes, reads, grants = c.rows("data_classifications"), c.rows("data_access"), c.rows("access_grants")
    if not classes:
        if any(r["direction"] == "read" for r in c.rows("datasets")):
            return MISSING, [], ["no dataset was classified by the end of the period, so confidential "
                                 "training data cannot be told apart (nbgov data classify PATH CLASS)"]
        return NOT_APPLICABLE, [], []
    kinds = Counter(r["classification"] for r in classes)
    evidence = [Evidence("classified datasets: " + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())),
                         "data_classifications", seqs_of(classes))]
    if grants:
        count = n_of(len(grants), "grant or revocation", "grants and revocations")
        evidence.append(Evidence(f"{count} of access", "access_grants", seqs_of(grants)))
    violations: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in reads:
        if row["violation"]:
            violations.setdefault((row["actor"], row["path"]), []).append(row)
    gaps = [f"{actor} read {found[0]['classification_at_read']} data {path} without a recorded grant ("
            f"{n_of(len(found), 'time')}, first on {day_of(found[0]['read_at'])}, seq {found[0]['seq']})"
            for (actor, path), found in violations.items()]
    allowed = [r for r in reads if not r["violation"]]
    if allowed:
        readers = names_of(r["actor"] for r in allowed)
        evidence.append(Evidence(f"{n_of(len(allowed), 'read')} of classified data by {readers}, each "
                                 "covered by a grant or not needing one", "data_access", seqs_of(allowed)))
    return (EVIDENCED if not violations else PARTIAL if allowed else MISSING), evidence, gaps


def _risks(c: Context) -> Result:
    from nbgov.governance.checks import FAIL, WARN

    latest: dict[str, str] = {}
    refs = _fitted_refs(c) + [ref_of(r) for r in c.approved_in_period()] + c.approved_during()
    for ref in refs:
        model, _, version = ref.rpartition("@")
        if model not in latest or int(version) > int(latest[model].rpartition("@")[2]):
            latest[model] = ref
    evidence, gaps, good = [], [], 0
    if c.rows("risks"):
        evidence.append(Evidence(f"{n_of(len(c.rows('risks')), 'risk')} in the register at the period's end",
                                 "risks", seqs_of(c.rows("risks"))))
    for model, ref in sorted(latest.items()):
        found = [f for f in c.check(ref).findings if f.code in ("risk_tier", "risk_register", "risk_review")]
        bad = [f for f in found if f.status in (FAIL, WARN)]
        gaps += [f"{model}: {f.message}" for f in bad]
        if not bad:
            good += 1
            tiers = [r for r in c.rows("risk_tiers") if r["model"] == model]
            evidence.append(Evidence(f"{model}: {'; '.join(f.message for f in found)}", "risk_tiers",
                                     seqs_of(tiers)))
    return status_of(good, len(latest)), evidence, gaps


def _reviews(c: Context) -> Result:
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
            evidence.append(Evidence(f"review job {job}: {len(ok)} of {n_of(len(final), 'run')} succeeded",
                                     "review_runs", seqs_of(ok)))
        if bad:
            last = bad[-1]
            gaps.append(f"review job {job}: {len(bad)} of {n_of(len(final), 'run')} did not succeed ("
                        f"{names_of(r['status'] for r in bad)}; latest on {day_of(last['started_at'])}: "
                        f"{last['error_type'] or last['status']}: {last['error_message'] or 'no message'})")
        job_missed = [r for r in missed if r["job"] == job]
        if job_missed:
            gaps.append(f"review job {job} missed {n_of(len(job_missed), 'run')} (due "
                        f"{', '.join(_moment(r['scheduled_for']) for r in job_missed)})")
        accounted = {r["scheduled_for"] for r in job_runs + job_missed}
        silent = [at for at in due.get(job, []) if at not in accounted]
        if silent:
            gaps.append(f"review job {job} was due {n_of(len(silent), 'time')} in the period with no run or "
                        f"missed run recorded (first due {_moment(silent[0])})")
    by_hand = [r for r in runs if not r["job"]]
    if by_hand:
        evidence.append(Evidence(f"{n_of(len(by_hand), 'review')} run by hand", "review_runs",
                                 seqs_of(by_hand)))
        succeeded += sum(r["status"] == "succeeded" for r in by_hand)
        gaps += [f"review {str(r['notebook']).rsplit('/', 1)[-1]} run by hand on {day_of(r['started_at'])} "
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


def _undelivered(c: Context, evidence: list[Evidence]) -> list[str]:
    alerts = c.rows("alerts")
    if alerts:
        reasons = Counter(r["reason"] for r in alerts)
        evidence.append(Evidence(f"{n_of(len(alerts), 'alert')} raised ("
                                 f"{', '.join(f'{k} x{v}' for k, v in sorted(reasons.items()))})", "alerts",
                                 seqs_of(alerts)))
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


def _due_times(c: Context, gaps: list[str]) -> dict[str, list[dt.datetime]]:
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


#: The assessment of each control, by the control's id.
ASSESSMENTS: dict[str, Callable[[Context], Result]] = {
    "bias-testing": _bias, "data-provenance": _provenance, "model-documentation": _documentation,
    "approvals": _approvals, "drift-monitoring": _drift, "audit-trail": _audit_trail,
    "periodic-reviews": _reviews, "vendor-evidence": _vendors, "data-access": _data_access,
    "risk-register": _risks}
