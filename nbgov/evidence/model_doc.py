"""The documentation page of a model version, written from the ledger's facts alone.

:func:`model_document` gathers, for one version, everything the ledger knows about it (who
trained it where and on what, its parameters, its evaluations, its approvals, risks, vendors and
reviews) into a :class:`ModelDocument` of plain data, and lists each fact the ledger lacks as a
gap an auditor can read. :func:`~nbgov.render.model_page.render_html` and
:func:`~nbgov.render.model_page.render_markdown` present it.

Nothing here invents a fact: every value comes from a documented view, and where a judgment is
needed (is the training data's provenance declared, is a vendor's attestation current) it comes
from :mod:`nbgov.governance.checks` and :mod:`nbgov.governance.vendors` under the policy recorded
in the ledger.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

import orjson

from nbgov.governance.overview import approval_status, lineage_graph
from nbgov.render.model_document import ModelDocument
from nbgov.render.model_page import render_html, render_markdown

if TYPE_CHECKING:
    from nbgov.governance.checks import Finding
    from nbgov.governance.policy import LoadedPolicy
    from nbgov.ledger.facade import Ledger

__all__ = ["ModelDocument", "model_document", "render_html", "render_markdown"]


# -- reading the ledger -----------------------------------------------------------------------------


def _when(value: Any) -> str | None:
    """A time (or date) as ISO text in UTC; None stays None."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _json(value: Any) -> Any:
    """A JSON column's value (DuckDB hands JSON over as text)."""
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def _rows(ledger: Ledger, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Query rows as dicts, times as ISO text."""
    rows = ledger.rows(sql, params or None)
    for row in rows:
        for key, value in row.items():
            if isinstance(value, (dt.datetime, dt.date)):
                row[key] = _when(value)
    return rows


def _ledger_policy(ledger: Ledger) -> tuple[LoadedPolicy, dict[str, Any] | None]:
    """The latest policy recorded in the ledger, and what the page says about it; nbgov's defaults
    when none is recorded (or this nbgov cannot read the recorded one: ``applied`` is false)."""
    from nbgov.errors import FileProblem
    from nbgov.governance.policy import LoadedPolicy, Policy, validate_policy

    defaults = LoadedPolicy(Policy(), "nbgov's default policy", "")
    rows = _rows(ledger, "SELECT recorded_at, sha256, source, policy, actor FROM policies "
                         "ORDER BY seq DESC LIMIT 1")
    if not rows:
        return defaults, None
    row = rows[0]
    facts = {"source": row["source"], "sha256": row["sha256"], "recorded_at": row["recorded_at"],
             "recorded_by": row["actor"], "applied": True}
    try:
        return LoadedPolicy(validate_policy(_json(row["policy"]), str(row["source"])), str(row["source"]),
                            str(row["sha256"])), facts
    except FileProblem:
        return defaults, {**facts, "applied": False}


def _policy_limits(ledger: Ledger, sha256: str | None,
                   known: dict[str, dict[str, Any] | None]) -> dict[str, Any] | None:
    """The fairness rules of the policy recorded with *sha256* (None when it is not recorded)."""
    if not sha256:
        return None
    if sha256 not in known:
        rows = _rows(ledger, "SELECT policy FROM policies WHERE sha256 = $s ORDER BY seq DESC LIMIT 1",
                     s=sha256)
        rules = _json(rows[0]["policy"]).get("fairness") if rows else None
        known[sha256] = rules if isinstance(rules, dict) else None
    return known[sha256]


def _identity(ledger: Ledger, fitted_event: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Who trained the version, when, where and how (and the ``model_fitted`` payload)."""
    fitted = _rows(ledger, """
        SELECT e.event_time, e.actor, e.actor_source, e.event_id, e.payload, e.session
        FROM events e WHERE e.event_id = $id""", id=fitted_event)[0]
    payload, session = _json(fitted["payload"]), _json(fitted["session"]) or {}
    session_id = session.get("session_id")
    runs = _rows(ledger, """
        SELECT started_at, host, python, kernel_id, notebook, notebook_sha256, git_commit, git_dirty,
               packages_sha256, nbgov_version
        FROM sessions WHERE session_id = $s ORDER BY seq LIMIT 1""", s=session_id) if session_id else []
    keys = ("model", "version", "node", "estimator", "model_fingerprint", "n_samples", "n_features",
            "features", "duration_us", "name_source")
    return {**{key: payload.get(key) for key in keys}, "fit_data": payload.get("data"),
            "fitted_at": fitted["event_time"], "author": fitted["actor"],
            "author_source": fitted["actor_source"],
            "event_id": fitted["event_id"], "session_id": session_id, "cell": session.get("cell_run"),
            "run_id": session.get("run_id"), "notebook": session.get("notebook"),
            "session": runs[0] if runs else None}, payload


def _description(ledger: Ledger, model: str, version: int) -> dict[str, Any] | None:
    """The latest description of this version, else the latest of the model (every version)."""
    rows = _rows(ledger, """
        SELECT event_time, actor, event_id, payload FROM events
        WHERE type = 'model_described' AND (payload->>'model') = $m
              AND ((payload->>'version') IS NULL OR (payload->>'version')::INTEGER = $v)
        ORDER BY (payload->>'version') IS NULL, seq DESC LIMIT 1""", m=model, v=version)
    if not rows:
        return None
    row = rows[0]
    payload = _json(row["payload"])
    return {**{key: payload.get(key) for key in ("intended_use", "out_of_scope", "limitations", "owner",
                                                 "contact")},
            "applies_to": "this version" if payload.get("version") is not None else "every version",
            "described_at": row["event_time"], "described_by": row["actor"], "event_id": row["event_id"]}


_FACTS = ("source", "license", "owner", "contains_pii", "description")


def _training_data(ledger: Ledger, nodes: list[str], findings: list[Finding]) -> list[dict[str, Any]]:
    """The datasets upstream of the model: what was recorded of each, declared about it, and
    whether the check finds its provenance declared."""
    if not nodes:
        return []
    seen = {str(r["node"]): r for r in _rows(ledger, """
        SELECT n.node, n.label, d.* EXCLUDE (node) FROM lineage_nodes n LEFT JOIN (
          SELECT dataset_node AS node, arg_max(path, seq) AS path, arg_max(fingerprint, seq) AS fingerprint,
                 arg_max(algorithm, seq) AS algorithm, arg_max(coverage, seq) AS coverage,
                 arg_max(size_bytes, seq) AS size_bytes, arg_max(rows, seq) AS rows,
                 arg_max(columns, seq) AS columns, list(DISTINCT path ORDER BY path) AS paths,
                 bool_or(direction = 'write') AS written, min(seq) AS first_seq, min(event_time) AS first_seen
          FROM datasets GROUP BY dataset_node) d USING (node)
        WHERE n.node IN (SELECT unnest($n))""", n=nodes)}
    paths = {n: [str(p) for p in (seen.get(n) or {}).get("paths") or []] or [str((seen.get(n) or {}).get(
        "label") or n)] for n in nodes}
    everywhere = sorted({p for ps in paths.values() for p in ps})
    declarations = _rows(ledger, """
        SELECT dataset_node, path, event_time, source, license, owner, contains_pii, description, actor
        FROM dataset_declarations WHERE dataset_node IN (SELECT unnest($n)) OR path IN (SELECT unnest($p))
        ORDER BY seq""", n=nodes, p=everywhere)
    classifications = _rows(ledger, """
        SELECT path, fingerprint, classification, classified_by, classified_at FROM dataset_classifications
        WHERE path IN (SELECT unnest($p)) OR fingerprint IN (SELECT unnest($f)) ORDER BY classified_at""",
        p=everywhere, f=[n.removeprefix("dataset:") for n in nodes])
    provenance = {f.subject: f for f in findings if f.code == "provenance"}
    result = []
    for node in sorted(nodes, key=lambda n: ((seen.get(n) or {}).get("first_seq") or 0, n)):
        row = seen.get(node) or {}
        label = str(row.get("label") or node)
        fingerprint = row.get("fingerprint") or (None if node.startswith("dataset:path:")
                                                 else node.removeprefix("dataset:"))
        declared = [d for d in declarations if d["dataset_node"] == node or d["path"] in paths[node]]
        facts: dict[str, Any] = {}
        for declaration in declared:  # the latest value of each fact wins
            facts.update({k: declaration[k] for k in _FACTS if declaration[k] is not None})
        classified = [c for c in classifications if c["path"] in paths[node]
                      or (fingerprint and c["fingerprint"] == fingerprint)]
        finding = provenance.get(label)
        columns = _json(row.get("columns"))
        result.append({
            "node": node, "path": row.get("path") or label, "paths": paths[node], "fingerprint": fingerprint,
            **{k: row.get(k) for k in ("algorithm", "coverage", "size_bytes", "rows", "first_seen")},
            "columns": [c[0] if isinstance(c, list) and c else c for c in columns] if columns else None,
            "derived": bool(row.get("written")), "declared": bool(declared),
            **{k: facts.get(k) for k in _FACTS},
            "declared_by": declared[-1]["actor"] if declared else None,
            "declared_at": declared[-1]["event_time"] if declared else None,
            "classification": classified[-1]["classification"] if classified else None,
            "classified_by": classified[-1]["classified_by"] if classified else None,
            "provenance": finding.status if finding else None,
            "provenance_note": finding.message if finding else None,
        })
    return result


def _fairness(ledger: Ledger, model: str, version: int) -> list[dict[str, Any]]:
    """Every bias test of the version, newest first, with its per-group numbers as recorded."""
    tests: list[dict[str, Any]] = []
    limits: dict[str, dict[str, Any] | None] = {}
    for row in _rows(ledger, """
            SELECT event_time, actor, event_id, payload FROM events
            WHERE type = 'fairness_evaluated' AND (payload->>'model') = $m
                  AND fit_version(payload, seq) = $v ORDER BY seq DESC""", m=model, v=version):
        payload = _json(row["payload"])
        report = payload.get("report") or {}
        groups = report.get("groups") or []
        attributes = []
        for attribute in report.get("attributes") or []:
            name = attribute.get("attribute")
            attributes.append({**{k: v for k, v in attribute.items() if k != "comparisons"},
                               "comparisons": attribute.get("comparisons") or [],
                               "groups": [g for g in groups if g.get("attribute") == name]})
        tests.append({
            "event_id": row["event_id"], "tested_at": row["event_time"], "tested_by": row["actor"],
            "verdict": payload.get("verdict"), "failures": payload.get("failures") or [],
            "sensitive": payload.get("sensitive") or [], "policy_sha256": payload.get("policy_sha256"),
            "limits": _policy_limits(ledger, payload.get("policy_sha256"), limits),
            "n": report.get("n"), "positive_label": report.get("positive_label"),
            "min_group_size": report.get("min_group_size"), "alpha": report.get("alpha"),
            "attributes": attributes, "data": payload.get("data"),
        })
    return tests


def _drift(ledger: Ledger, model: str, version: int) -> list[dict[str, Any]]:
    """Every drift test of the version, newest first, one entry per feature."""
    tests: dict[str, dict[str, Any]] = {}
    for row in _rows(ledger, """
            SELECT event_id, event_time, actor, verdict, dataset_drifted, alpha, policy_sha256, feature,
                   kind, test, statistic, p_value, effect_size_name, effect_size, threshold, decided_by,
                   drifted, n_reference, n_current
            FROM drift_results WHERE model = $m AND version = $v ORDER BY seq DESC, feature""",
            m=model, v=version):
        test = tests.setdefault(str(row["event_id"]), {
            "event_id": row["event_id"], "tested_at": row["event_time"], "tested_by": row["actor"],
            "verdict": row["verdict"], "drifted": row["dataset_drifted"], "alpha": row["alpha"],
            "policy_sha256": row["policy_sha256"], "features": []})
        test["features"].append({k: row[k] for k in (
            "feature", "kind", "test", "statistic", "p_value", "effect_size_name", "effect_size", "threshold",
            "decided_by", "drifted", "n_reference", "n_current")})
    return list(tests.values())


def _decisions(ledger: Ledger, model: str, version: int) -> list[dict[str, Any]]:
    """Approvals, rejections and denials of the version (oldest first), each signature verified."""
    from nbgov.governance.approvals import verify_approvals

    rows = _rows(ledger, """
        SELECT seq, event_time, decision, reviewer, actor_source, role, reasons, message, approvals, required,
               key_id, signature, statement, policy_sha256, evidence, event_id
        FROM approvals WHERE model = $m AND version = $v ORDER BY seq""", m=model, v=version)
    checks = {c.event_id: c for c in verify_approvals(ledger) if c.model == model and c.version == version}
    for row in rows:
        statement = _json(row.pop("statement")) or {}
        row["note"] = statement.get("note") or statement.get("reason") or row["message"]
        row["signed_at"] = statement.get("signed_at")
        check = checks.get(str(row["event_id"]))
        row["signature_valid"] = None if check is None else check.valid
        row["signature_problem"] = None if check is None else check.problem
    return rows


def _vendors(ledger: Ledger, model: str, version: int, policy: LoadedPolicy,
             today: dt.date) -> list[dict[str, Any]]:
    from nbgov.governance.vendors import attestation_status

    links = _rows(ledger, """
        SELECT l.vendor, l.version, l.purpose, l.linked_by, l.linked_at, v.service, v.contact,
               v.evidence_path, v.evidence_fingerprint, v.updated_at
        FROM model_vendors l LEFT JOIN vendors v USING (vendor)
        WHERE l.model = $m AND (l.version IS NULL OR l.version = $v) ORDER BY l.vendor, l.seq""",
        m=model, v=version)
    result: dict[str, dict[str, Any]] = {}
    for link in links:
        vendor = str(link["vendor"])
        status = attestation_status(ledger, vendor, policy.policy, today)
        certifications = _rows(ledger, "SELECT certification, period_end, issuer FROM vendor_certifications "
                                       "WHERE vendor = $v ORDER BY period_end", v=vendor)
        entry = result.setdefault(vendor, {
            "vendor": vendor, "service": link["service"], "contact": link["contact"],
            "registered": status.registered, "attestation_current": status.ok,
            "current": list(status.current),
            "expired": [f"{name} (period ended {end})" for name, end in status.expired],
            "certifications": certifications, "evidence_path": link["evidence_path"],
            "evidence_fingerprint": link["evidence_fingerprint"], "links": []})
        entry["links"].append({"scope": "every version" if link["version"] is None else f"v{link['version']}",
                               "purpose": link["purpose"], "linked_by": link["linked_by"],
                               "linked_at": link["linked_at"]})
    return list(result.values())


def _reviews(ledger: Ledger, model: str, version: int) -> list[dict[str, Any]]:
    """Review runs whose parameters name the model (or this version), or that recorded an event
    about this version."""
    return _rows(ledger, """
        SELECT run_id, started_at, finished_at, notebook, job, parameters, status, cell_index, error_type,
               error_message, seconds, output, output_fingerprint, actor
        FROM review_runs
        WHERE (parameters->>'model') IN ($m, $ref)
              OR run_id IN (SELECT session->>'run_id' FROM events
                            WHERE (payload->>'model') = $m AND fit_version(payload, seq) = $v)
        ORDER BY started_at DESC""", m=model, v=version, ref=f"{model}@{version}")


# -- the document -----------------------------------------------------------------------------------


def model_document(ledger: Ledger, model: str, version: int | None = None, *,
                   today: dt.date | None = None) -> ModelDocument:
    """The documentation of a model version (``version`` None: the latest; *model* may also be
    ``NAME@VERSION``), from the ledger's facts, with its gaps.

    Raises
    ------
    UnknownModel
        No such model or version in the ledger.
    """
    from nbgov.governance.checks import check_model

    today = today or dt.datetime.now(dt.UTC).date()
    ref = model if version is None else f"{model}@{version}"
    status = approval_status(ledger, ref)
    found = status.version
    name, number = found.model, found.version
    head = ledger.head()
    policy, policy_facts = _ledger_policy(ledger)
    # The rules of nbgov check, judged now under the recorded policy, and not recorded.
    check = check_model(ledger, found.ref, policy, today=today, record=False)
    graph = lineage_graph(ledger, found.ref)
    identity, fitted = _identity(ledger, found.fitted_event)
    tier_rows = _rows(ledger, "SELECT tier, reason, set_by, set_at FROM risk_tiers WHERE model = $m", m=name)
    tier = {**(tier_rows[0] if tier_rows else {"tier": None, "reason": None, "set_by": None, "set_at": None}),
            "effective": found.tier or policy.policy.default_tier}
    decisions = _decisions(ledger, name, number)
    granted = [d for d in decisions if d["decision"] == "granted"]
    required = granted[-1]["required"] if granted else policy.policy.approvals_required(tier["effective"])
    doc = ModelDocument(
        model=name, version=number, generated_at=_when(dt.datetime.now(dt.UTC)) or "",
        ledger={"ledger_id": head.ledger_id, "seq": head.seq, "chain_hash": head.chain_hash,
                "home": str(ledger.home)},
        identity=identity,
        description=_description(ledger, name, number),
        training_data=_training_data(ledger, [str(n["node"]) for n in graph.of_kind("dataset")],
                                     list(check.findings)),
        lineage={"focus": graph.focus, "nodes": graph.nodes, "edges": [list(e) for e in graph.edges]},
        params=fitted.get("params") or {},
        logged_params=[{**r, "params": _json(r["params"])} for r in _rows(ledger, """
            SELECT event_time, params, actor FROM params WHERE model = $m AND version = $v ORDER BY seq""",
            m=name, v=number)],
        metrics=[{**r, "value_json": _json(r["value_json"])} for r in _rows(ledger, """
            SELECT event_time, metric, value, value_json, via, dataset, actor FROM metrics
            WHERE model = $m AND version = $v ORDER BY seq, metric""", m=name, v=number)],
        fairness=_fairness(ledger, name, number),
        drift=_drift(ledger, name, number),
        lifecycle={"state": found.state, "transitions": _rows(ledger, """
            SELECT event_time, from_state, to_state, reason, actor, evidence FROM model_transitions
            WHERE model = $m AND version = $v ORDER BY seq""", m=name, v=number)},
        checks=_rows(ledger, """
            SELECT event_time, purpose, verdict, failed, actor, policy_sha256, event_id
            FROM policy_evaluations WHERE model = $m AND version = $v ORDER BY seq DESC""", m=name, v=number),
        check_now={"verdict": check.verdict, "checked_at": _when(dt.datetime.now(dt.UTC)),
                   "policy_source": policy.source, "policy_sha256": policy.sha256 or None,
                   "findings": [f.as_dict() for f in check.findings]},
        decisions=decisions,
        requests=[{k: _when(v) if isinstance(v, dt.date) else v for k, v in r.items()}
                  for r in status.requests],
        approvals={"count": found.approvals, "required": required, "approvers": list(found.approvers)},
        risk_tier=tier,
        risks=_rows(ledger, """
            SELECT risk_id, category, description, likelihood, impact, treatment, owner, next_review, status,
                   recorded_by, updated_at
            FROM risks WHERE model = $m ORDER BY status DESC, risk_id""", m=name),
        vendors=_vendors(ledger, name, number, policy, today),
        reviews=[{**r, "parameters": _json(r["parameters"])} for r in _reviews(ledger, name, number)],
        policy=policy_facts,
        gaps=[],
    )
    return dataclasses.replace(doc, gaps=_gaps(doc, check.findings))


def _gaps(doc: ModelDocument, findings: tuple[Finding, ...]) -> list[str]:
    """Each fact the ledger lacks about the version, in an auditor's words (in page order)."""
    failing: dict[str, list[str]] = {}
    for finding in findings:
        if finding.status in ("fail", "warn"):
            failing.setdefault(finding.code, []).append(finding.message)
    described, session = doc.description or {}, doc.identity.get("session")
    policy, tier, approvals = doc.policy, doc.risk_tier, doc.approvals
    granted = [d for d in doc.decisions if d["decision"] == "granted"]
    gaps = [words for missing, words in (
        (policy is None, "no policy recorded in the ledger: provenance, vendors and the risk register are "
                         "judged against nbgov's default policy"),
        (policy is not None and not policy["applied"], "the policy recorded in the ledger cannot be read by "
         "this nbgov: provenance, vendors and the risk register are judged against nbgov's default policy"),
        (not described, "no intended use recorded"),
        (not described.get("out_of_scope"), "no out-of-scope uses recorded"),
        (not described.get("limitations"), "no known limitations recorded"),
        (not described.get("owner"), "no accountable owner recorded"),
        (not doc.identity.get("model_fingerprint"), "no fingerprint of the trained model recorded"),
        (session is None, "the training session was not recorded (notebook, environment and code version "
                          "unknown)"),
        (session is not None and not session.get("git_commit"),
         "no git commit recorded for the training code"),
        (bool(session and session.get("git_commit") and session.get("git_dirty")), "the training code had "
         "uncommitted changes (git working tree dirty): the exact code is not in version control"),
        (not doc.training_data, "no training data in the lineage: where the data came from is unknown"),
    ) if missing]
    if doc.training_data:
        gaps += [f"training data without declared provenance: {m}" for m in failing.get("provenance", [])]
    gaps += [f"training data not classified (public, internal, confidential or restricted): {d['path']}"
             for d in doc.training_data if d["classification"] is None]
    gaps += [words for missing, words in (
        (not doc.metrics, "no evaluation metrics recorded"),
        *((True, f"required metric missing: {m}") for m in failing.get("metrics", []) if m.startswith("no ")),
        (not doc.fairness, "no bias test recorded"),
        (bool(doc.fairness) and all(t["verdict"] == "unjudged" for t in doc.fairness),
         "no bias test judged against a policy (every test ran without one)"),
        *((bool(doc.fairness), m) for m in failing.get("fairness", []) if m.startswith("no bias test")),
        (not doc.drift, "no drift test recorded"),
        (not doc.checks, "no policy check recorded for this version"),
        (not granted, "no approval recorded"),
        (bool(granted) and approvals["count"] < approvals["required"],
         f"approved by {approvals['count']} of {approvals['required']} required reviewer(s)"),
    ) if missing]
    gaps += [f"{d['decision']} by {d['reviewer']} at {d['event_time']}: signature does not verify "
             f"({d['signature_problem']})" for d in doc.decisions if d["signature_valid"] is False]
    if tier["tier"] is None:
        gaps.append(f"no risk tier assessed (the policy's default, {tier['effective']}, applies)")
    if not doc.risks:
        gaps.append("no risks recorded in the risk register")
    gaps += failing.get("risk_register", []) + failing.get("risk_review", [])
    for vendor in doc.vendors:
        if not vendor["attestation_current"]:
            gaps.append(f"vendor {vendor['vendor']}: " + (
                "no current accepted attestation" + "".join(f"; {e}" for e in vendor["expired"])
                if vendor["registered"] else "linked but not registered"))
    if doc.lifecycle["state"] == "approved" and not doc.reviews:
        gaps.append("approved, but no review run of the model recorded")
    return gaps
