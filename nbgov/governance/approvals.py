"""Approving model versions, with segregation of duties, and verifying approvals later.

An approval is granted only when all of these hold, and every refused attempt is recorded
(``approval_denied``) with its reasons before the error is raised:

* the reviewer is not the version's author (segregation of duties);
* the reviewer holds the policy's approver role (``approvals.role``) in the ledger;
* the version passes the policy check (run and recorded as part of the attempt);
* the version is not retired or rejected, and the reviewer has not approved it already.

A reviewer may instead reject a version (:func:`reject`), with a reason, under the same
segregation of duties and role rules; the rejection is signed like an approval and moves the
version to ``rejected``. A rejected version is approved only after it is submitted again
(:func:`request_approval`, which moves it back to ``trained`` so the next check re-validates it).

A granted approval is signed with the reviewer's Ed25519 key over a statement naming the ledger,
the version, its fingerprint, the policy's SHA-256 and the digest of the check's findings; the
public key is registered in the ledger, so :func:`verify_approvals` can check every approval
later, anywhere.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from nbgov.errors import ApprovalRefused, GovernanceError
from nbgov.events import ApprovalDenied, ApprovalGranted, ApprovalRejected, ApprovalRequested
from nbgov.governance.checks import CheckReport, check_model
from nbgov.governance.policy import LoadedPolicy, record_policy
from nbgov.governance.registry import (
    ModelVersion,
    holds_role,
    model_version,
    record_transition,
    register_key,
)
from nbgov.ledger.integrity.signing import SigningKey, load_or_create_key, verify

if TYPE_CHECKING:
    from nbgov.ledger.facade import Ledger

__all__ = ["Approval", "Rejection", "SignatureCheck", "approve", "reject",
           "request_approval", "verify_approvals"]

SELF_APPROVAL = "self_approval"
MISSING_ROLE = "missing_role"
CHECK_FAILED = "policy_check_failed"
RETIRED = "retired"
REJECTED = "rejected"
ALREADY_APPROVED = "already_approved_by_reviewer"


@dataclass(frozen=True)
class Approval:
    """A granted approval."""

    model: str
    version: int
    reviewer: str
    approvals: int
    required: int
    event_id: str
    key_id: str
    check: CheckReport

    @property
    def approved(self) -> bool:
        """Whether the version now has every approval it needs."""
        return self.approvals >= self.required

    def __str__(self) -> str:
        state = "approved" if self.approved else f"needs {self.required - self.approvals} more approval(s)"
        return (f"{self.model}@{self.version}: approval {self.approvals} of {self.required} by "
                f"{self.reviewer}, signed with key {self.key_id[:12]}; {state}")


def ledger_identity(ledger: Ledger) -> str:
    frame = ledger.query("SELECT value AS id FROM ledger_meta WHERE key = 'ledger_id' LIMIT 1")
    return "" if frame.empty else str(frame["id"].iloc[0])


def approve(
    ledger: Ledger,
    spec: str,
    policy: LoadedPolicy,
    *,
    key_dir: Path | None = None,
    note: str | None = None,
    today: dt.date | None = None,
) -> Approval:
    """Approve a model version as the acting user.

    Raises
    ------
    UnknownModel
        No such version (nothing is recorded).
    ApprovalRefused
        The attempt was denied for the reasons it lists; the denial is recorded.
    """
    version = model_version(ledger, spec)  # unknown model: an input error, nothing recorded
    reviewer = ledger.actor.id
    record_policy(ledger, policy)
    tier = version.tier or policy.policy.default_tier
    role = policy.policy.approvals.role
    required = policy.policy.approvals_required(tier)
    check = check_model(ledger, version.ref, policy, today=today, purpose="approval")
    version = model_version(ledger, version.ref)  # the check may have validated it

    reasons: list[str] = []
    problems: list[str] = []
    if version.state == "retired":
        reasons.append(RETIRED)
        problems.append(f"{version.ref} is retired")
    if version.state == "rejected":
        reasons.append(REJECTED)
        problems.append(f"{version.ref} was rejected and has not been submitted again")
    _reviewer_rules(ledger, version, reviewer, role, "approve", reasons, problems)
    if not check.passed:
        reasons.append(CHECK_FAILED)
        problems.append(f"the policy check fails ({len(check.failures)} finding(s): "
                        + "; ".join(f.message for f in check.failures[:2])
                        + (" ..." if len(check.failures) > 2 else "") + ")")
    if reviewer in version.approvers:
        reasons.append(ALREADY_APPROVED)
        problems.append(f"{reviewer} has already approved {version.ref}")
    if reasons:
        message = f"approval of {version.ref} by {reviewer} denied: " + "; ".join(problems)
        event_id = ledger.decide(ApprovalDenied(
            model=version.model, version=version.version, reasons=reasons, message=message,
            policy_sha256=policy.sha256, evidence=check.event_id))
        raise ApprovalRefused(message, reasons=reasons, event_id=event_id, check=check,
                              hint=_hint(reasons, version.ref, role))

    key, statement = _signed_statement(ledger, key_dir, version, policy, reviewer, role, "approve",
                                       {"check_digest": check.digest, "check_event": check.event_id,
                                        "note": note})
    count = version.approvals + 1
    event_id = ledger.decide(ApprovalGranted(
        model=version.model, version=version.version, role=role, statement=statement, key_id=key.id,
        signature=key.sign(statement), approvals=count, required=required,
        policy_sha256=policy.sha256, evidence=check.event_id))
    return Approval(version.model, version.version, reviewer, count, required, event_id, key.id, check)


@dataclass(frozen=True)
class Rejection:
    """A recorded rejection."""

    model: str
    version: int
    reviewer: str
    reason: str
    event_id: str
    key_id: str

    def __str__(self) -> str:
        return (f"{self.model}@{self.version}: rejected by {self.reviewer} ({self.reason}), signed with key "
                f"{self.key_id[:12]}")


def request_approval(ledger: Ledger, spec: str, *, note: str | None = None) -> str:
    """Ask for a version to be reviewed; returns the ``approval_requested`` event id.

    A rejected version goes back to ``trained`` (submitted again: the next check re-validates it).

    Raises
    ------
    UnknownModel
        No such version.
    GovernanceError
        The version is retired or already approved (nothing is recorded).
    """
    version = model_version(ledger, spec)
    if version.state in ("retired", "approved"):
        raise GovernanceError(f"{version.ref} is {version.state}; there is nothing to request",
                              hint="train a new version to change an approved or retired model")
    note = (note or "").strip() or None
    event_id = ledger.append(ApprovalRequested(model=version.model, version=version.version, note=note))
    if version.state == "rejected":
        record_transition(ledger, version, "trained", "submitted again after a rejection", evidence=event_id)
    return event_id


def reject(
    ledger: Ledger,
    spec: str,
    policy: LoadedPolicy,
    *,
    reason: str,
    key_dir: Path | None = None,
) -> Rejection:
    """Reject a model version as the acting user, with a reason.

    The reviewer must not be the author and must hold the approver role; a refused attempt is
    recorded (``approval_denied`` with ``action = "reject"``) before :class:`ApprovalRefused` is
    raised. A missing reason or an unknown version is an input error: nothing is recorded.
    """
    reason = (reason or "").strip()
    if not reason:
        raise GovernanceError("a rejection needs a reason", hint="say what must change, e.g. --reason ...")
    version = model_version(ledger, spec)
    reviewer = ledger.actor.id
    record_policy(ledger, policy)
    role = policy.policy.approvals.role
    reasons: list[str] = []
    problems: list[str] = []
    if version.state in ("retired", "approved", "rejected"):
        reasons.append(RETIRED if version.state == "retired" else version.state)
        problems.append(f"{version.ref} is already {version.state}")
    _reviewer_rules(ledger, version, reviewer, role, "review", reasons, problems)
    if reasons:
        message = f"rejection of {version.ref} by {reviewer} denied: " + "; ".join(problems)
        event_id = ledger.decide(ApprovalDenied(
            model=version.model, version=version.version, reasons=reasons, message=message,
            policy_sha256=policy.sha256, action="reject"))
        raise ApprovalRefused(message, reasons=reasons, event_id=event_id, check=None,
                              hint=_hint(reasons, version.ref, role))
    key, statement = _signed_statement(ledger, key_dir, version, policy, reviewer, role, "reject",
                                       {"reason": reason})
    event_id = ledger.decide(ApprovalRejected(
        model=version.model, version=version.version, role=role, reason=reason, statement=statement,
        key_id=key.id, signature=key.sign(statement), policy_sha256=policy.sha256))
    record_transition(ledger, version, "rejected", f"rejected by {reviewer}: {reason}", evidence=event_id)
    return Rejection(version.model, version.version, reviewer, reason, event_id, key.id)


def _reviewer_rules(ledger: Ledger, version: ModelVersion, reviewer: str, role: str, verb: str,
                    reasons: list[str], problems: list[str]) -> None:
    """Segregation of duties and the approver role: the rules every reviewer decision obeys."""
    if reviewer == version.author:
        reasons.append(SELF_APPROVAL)
        problems.append(f"{reviewer} trained {version.ref} and cannot {verb} it (segregation of duties)")
    if not holds_role(ledger, reviewer, role):
        reasons.append(MISSING_ROLE)
        problems.append(f"{reviewer} does not hold the {role!r} role")


def _signed_statement(ledger: Ledger, key_dir: Path | None, version: ModelVersion, policy: LoadedPolicy,
                      reviewer: str, role: str, decision: str,
                      details: dict[str, Any]) -> tuple[SigningKey, dict[str, Any]]:
    """The reviewer's key (registered in the ledger) and the statement of a decision it signs."""
    key = load_or_create_key(key_dir or ledger.settings.key_dir, reviewer)
    register_key(ledger, key)
    statement: dict[str, Any] = {
        "decision": decision,
        "ledger_id": ledger_identity(ledger),
        "model": version.model,
        "version": version.version,
        "model_node": version.node,
        "model_fingerprint": version.model_fingerprint,
        "policy_sha256": policy.sha256,
        "reviewer": reviewer,
        "role": role,
        **details,
        "signed_at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
    }
    return key, statement


def _hint(reasons: list[str], ref: str, role: str) -> str:
    if REJECTED in reasons:
        return f"submit it again once fixed: nbgov request-approval {ref} --note ..."
    if SELF_APPROVAL in reasons:
        return f"ask a reviewer who did not train {ref} and holds the {role!r} role"
    if MISSING_ROLE in reasons:
        return f"an admin grants the role: nbgov role grant USER {role}"
    if CHECK_FAILED in reasons:
        return f"fix the failing findings: nbgov check {ref}"
    return "see nbgov sql \"SELECT * FROM approvals\""


@dataclass(frozen=True)
class SignatureCheck:
    """The verification of one recorded approval."""

    seq: int
    event_id: str
    model: str
    version: int
    reviewer: str
    valid: bool
    problem: str | None


def verify_approvals(ledger: Ledger) -> list[SignatureCheck]:
    """Verify the signature of every recorded approval and rejection against the reviewer's key.

    An approval fails when its signature does not verify, its key was not registered by the same
    user before it, or its statement disagrees with the event (reviewer, model, version, policy,
    ledger).
    """
    ledger_id = ledger_identity(ledger)
    approvals = ledger.query("""
        SELECT seq, event_id, actor, payload, type FROM events
        WHERE type IN ('approval_granted', 'approval_rejected') ORDER BY seq""")
    keys = ledger.query("SELECT seq, actor, key_id, public_key FROM signing_keys ORDER BY seq")
    registered: dict[tuple[str, str], tuple[int, str]] = {}
    for seq, actor, key, public in zip(keys["seq"], keys["actor"], keys["key_id"], keys["public_key"]):
        registered.setdefault((str(actor), str(key)), (int(seq), str(public)))
    results = []
    for seq, event_id, actor, raw, kind in zip(approvals["seq"], approvals["event_id"], approvals["actor"],
                                               approvals["payload"], approvals["type"]):
        payload = orjson.loads(raw)
        statement = payload.get("statement") or {}
        problem = None
        entry = registered.get((str(actor), str(payload.get("key_id"))))
        expected = {"reviewer": actor, "model": payload.get("model"), "version": payload.get("version"),
                    "policy_sha256": payload.get("policy_sha256"), "ledger_id": ledger_id,
                    "decision": "approve" if kind == "approval_granted" else "reject"}
        mismatched = [k for k, v in expected.items() if statement.get(k) != v]
        if entry is None or entry[0] > int(seq):
            problem = f"key {str(payload.get('key_id'))[:12]} was not registered by {actor} before it"
        elif mismatched:
            problem = f"the signed statement disagrees with the event on {', '.join(mismatched)}"
        elif not verify(entry[1], statement, str(payload.get("signature"))):
            problem = "the signature does not verify"
        results.append(SignatureCheck(int(seq), str(event_id), str(payload.get("model")),
                                      int(payload.get("version") or 0), str(actor), problem is None,
                                      problem))
    return results
