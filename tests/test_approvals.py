"""Model lifecycle and approvals: segregation of duties, roles, policy gates, signatures."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from nbgov import events
from nbgov.errors import ApprovalRefused, NbgovError, PermissionDenied, UnknownModel
from nbgov.governance.approvals import approve, reject, request_approval, verify_approvals
from nbgov.governance.policy import load_policy
from nbgov.governance.registry import grant_role, retire, revoke_role
from nbgov.ledger.facade import Ledger
from support.helpers import as_user, governed_ledger, run_cli, train_version, write_policy


@pytest.fixture
def governed(tmp_path: Path):  # type: ignore[no-untyped-def]
    """credit@1 trained by ana (passing bias test), rita and omar approvers; returns (home, policy)."""
    home, policy = governed_ledger(tmp_path, approvers=("rita", "omar"))
    return home, load_policy(policy)


def _approvals(home: Path) -> list[tuple[str, str, list[str] | None]]:
    frame = Ledger(home).query("SELECT decision, reviewer, reasons FROM approvals ORDER BY seq")
    return [(d, r, list(x) if x is not None else None) for d, r, x in frame.itertuples(index=False)]


def _state(home: Path, version: int = 1) -> str:
    frame = Ledger(home).query("SELECT state FROM model_versions WHERE model = 'credit' AND version = $v",
                               {"v": version})
    return str(frame["state"].iloc[0])


def test_self_approval_is_refused_and_recorded(governed) -> None:  # type: ignore[no-untyped-def]
    home, policy = governed
    grant_role(as_user(home, "ines"), "ana", "approver")  # even with the role
    with pytest.raises(ApprovalRefused) as info:
        approve(as_user(home, "ana"), "credit@1", policy)
    assert info.value.reasons == ["self_approval"]
    assert "segregation of duties" in info.value.message
    assert _approvals(home) == [("denied", "ana", ["self_approval"])]
    denied = Ledger(home).query("SELECT event_id FROM events WHERE type = 'approval_denied'")
    assert list(denied["event_id"]) == [info.value.event_id]
    assert _state(home) == "validated"  # the check passed; only the approval was refused


def test_approval_without_the_role_is_refused_and_recorded(governed) -> None:  # type: ignore[no-untyped-def]
    home, policy = governed
    with pytest.raises(ApprovalRefused) as info:
        approve(as_user(home, "sam"), "credit@1", policy)
    assert info.value.reasons == ["missing_role"]
    assert _approvals(home) == [("denied", "sam", ["missing_role"])]
    revoke_role(as_user(home, "ines"), "rita", "approver", reason="moved team")
    with pytest.raises(ApprovalRefused, match="does not hold the 'approver' role"):
        approve(as_user(home, "rita"), "credit@1", policy)


def test_a_failing_policy_check_blocks_approval(governed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home, policy = governed
    data = tmp_path / "loans.csv"
    ref = train_version(home, data, version=2, roc_auc=0.6)  # below the minimum, and no bias test
    with pytest.raises(ApprovalRefused) as info:
        approve(as_user(home, "rita"), ref, policy)
    assert info.value.reasons == ["policy_check_failed"]
    codes = {f.code for f in info.value.check.failures}
    assert codes == {"metrics", "fairness"}
    assert _state(home, 2) == "trained"
    # the check made for the attempt is recorded as evidence of the denial
    evidence = Ledger(home).query(
        "SELECT a.evidence, p.verdict, p.purpose FROM approvals a JOIN policy_evaluations p "
        "ON p.event_id = a.evidence WHERE a.decision = 'denied'")
    assert list(evidence.itertuples(index=False, name=None)) == [(info.value.check.event_id, "fail", "approval")]


def test_a_reviewer_approves_with_a_verifiable_signature(governed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home, policy = governed
    result = approve(as_user(home, "rita"), "credit@1", policy, note="looks right")
    assert result.approved and (result.approvals, result.required) == (1, 1)
    assert _state(home) == "approved"
    transitions = Ledger(home).query("SELECT from_state, to_state, actor FROM model_transitions ORDER BY seq")
    assert list(transitions.itertuples(index=False, name=None)) == [
        ("trained", "validated", "rita"), ("validated", "approved", "rita")]
    checks = verify_approvals(Ledger(home))
    assert [(c.reviewer, c.valid) for c in checks] == [("rita", True)]
    # rita's key signed the approval; the admin who granted her role has one too now (it signed
    # the checkpoint cut after that decision)
    keys = Ledger(home).query("SELECT actor, key_id FROM signing_keys WHERE actor = 'rita'")
    assert list(keys.itertuples(index=False, name=None)) == [("rita", result.key_id)]
    key_dir = Path(os.environ["NBGOV_KEY_DIR"])
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    key_files = list(key_dir.iterdir())  # rita's, and the admin's that signed a checkpoint
    assert any(f.name.startswith("rita") for f in key_files)
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in key_files)
    statement = json.loads(Ledger(home).query("SELECT statement FROM approvals")["statement"].iloc[0])
    assert statement["reviewer"] == "rita" and statement["note"] == "looks right"
    assert statement["policy_sha256"] == policy.sha256
    assert statement["check_digest"] == result.check.digest


def test_required_approvals_come_from_distinct_reviewers(governed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home, _ = governed
    # high tier: two approvals, and the risk register must cover every category
    text = (tmp_path / "nbgov-policy.toml").read_text().replace('risk_categories = ["bias", "drift", '
                                                              '"unauthorized_data_access", "vendor", "misuse"]', "")
    policy = write_policy(tmp_path, text)
    from nbgov.governance.risks import set_tier

    set_tier(as_user(home, "ana"), "credit", "high")
    first = approve(as_user(home, "rita"), "credit@1", policy)
    assert (first.approvals, first.required, first.approved) == (1, 2, False)
    assert _state(home) == "validated"
    with pytest.raises(ApprovalRefused) as again:
        approve(as_user(home, "rita"), "credit@1", policy)
    assert again.value.reasons == ["already_approved_by_reviewer"]
    second = approve(as_user(home, "omar"), "credit@1", policy)
    assert second.approved and _state(home) == "approved"
    assert all(c.valid for c in verify_approvals(Ledger(home)))


def test_tampered_and_forged_signatures_fail_verification(governed) -> None:  # type: ignore[no-untyped-def]
    home, policy = governed
    approve(as_user(home, "rita"), "credit@1", policy)
    genuine = json.loads(Ledger(home).query(
        "SELECT payload FROM events WHERE type = 'approval_granted'")["payload"].iloc[0])

    def forge(who: str, **changes: object) -> None:
        payload = {**genuine, **changes}
        ledger = as_user(home, who)
        ledger.append(events.ApprovalGranted(**payload))
        ledger.ingest()  # one at a time, so seq follows the order forged

    raw = bytearray(base64.b64decode(genuine["signature"]))
    raw[0] ^= 1
    forge("rita", signature=base64.b64encode(bytes(raw)).decode())  # a flipped bit
    forge("rita", statement={**genuine["statement"], "version": 2}, version=2)  # re-pointed to v2
    forge("rita", statement={**genuine["statement"], "reviewer": "omar"})  # disagrees with the actor
    forge("mallory", statement={**genuine["statement"], "reviewer": "mallory"})  # rita's key, not hers
    Ledger(home).ingest()

    results = verify_approvals(Ledger(home))
    assert [r.valid for r in results] == [True, False, False, False, False]
    problems = [r.problem for r in results[1:]]
    assert problems[0] == "the signature does not verify"
    assert problems[1] == "the signature does not verify"
    assert problems[2] == "the signed statement disagrees with the event on reviewer"
    assert problems[3] is not None and "was not registered by mallory" in problems[3]

    verified = run_cli("--home", str(home), "verify")
    assert verified.returncode == 1
    assert "1 of 5 approval signature(s) valid" in verified.stdout
    assert verified.stderr.count("FAILED: approval seq") == 4


def test_unknown_model_versions_are_input_errors_that_record_nothing(governed) -> None:  # type: ignore[no-untyped-def]
    home, policy = governed
    before = Ledger(home).query("SELECT count(*) AS n FROM events")["n"].iloc[0]
    with pytest.raises(UnknownModel, match="no model named 'nope'"):
        approve(as_user(home, "rita"), "nope", policy)
    with pytest.raises(UnknownModel, match=r"has no version 9 \(latest is 1\)"):
        approve(as_user(home, "rita"), "credit@9", policy)
    with pytest.raises(UnknownModel, match="positive integer"):
        approve(as_user(home, "rita"), "credit@x", policy)
    assert Ledger(home).query("SELECT count(*) AS n FROM events")["n"].iloc[0] == before


def test_role_rules(home: Path) -> None:
    Ledger.init(home)
    with pytest.raises(PermissionDenied, match="the first grant must be 'admin'"):
        grant_role(as_user(home, "ines"), "rita", "approver")
    assert grant_role(as_user(home, "ines"), "ines", "admin") is not None  # the bootstrap
    with pytest.raises(PermissionDenied, match="'rita' does not hold the 'admin' role"):
        grant_role(as_user(home, "rita"), "rita", "approver")
    with pytest.raises(PermissionDenied, match="cannot grant a role to themselves"):
        grant_role(as_user(home, "ines"), "ines", "approver")
    with pytest.raises(NbgovError, match="invalid role name"):
        grant_role(as_user(home, "ines"), "rita", "Approver!")
    assert grant_role(as_user(home, "ines"), "rita", "approver") is not None
    assert grant_role(as_user(home, "ines"), "rita", "approver") is None  # already held
    with pytest.raises(PermissionDenied, match="cannot revoke their own role"):
        revoke_role(as_user(home, "ines"), "ines", "admin")
    history = Ledger(home).query("SELECT change, subject, role, bootstrap, by_actor FROM role_events ORDER BY seq")
    assert list(history.itertuples(index=False, name=None)) == [
        ("granted", "ines", "admin", True, "ines"), ("granted", "rita", "approver", False, "ines")]


def test_retired_versions_cannot_be_approved(governed) -> None:  # type: ignore[no-untyped-def]
    home, policy = governed
    with pytest.raises(PermissionDenied):
        retire(as_user(home, "sam"), "credit@1", reason="no")
    retire(as_user(home, "ana"), "credit@1", reason="superseded")
    assert _state(home) == "retired"
    with pytest.raises(ApprovalRefused) as info:
        approve(as_user(home, "rita"), "credit@1", policy)
    assert info.value.reasons == ["retired"]


def test_cli_approve_and_roles(governed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home, _ = governed
    policy_file = str(tmp_path / "nbgov-policy.toml")
    denied = run_cli("--home", str(home), "approve", "credit@1", "--policy", policy_file,
                     env={"NBGOV_ACTOR": "ana"})
    assert denied.returncode == 1
    assert "nbgov: error: approval of credit@1 by ana denied" in denied.stderr
    assert "PASS  fairness" in denied.stderr  # the check report is shown
    granted = run_cli("--home", str(home), "approve", "credit@1", "--policy", policy_file,
                      env={"NBGOV_ACTOR": "rita"})
    assert granted.returncode == 0, granted.stderr
    assert "approval 1 of 1 by rita" in granted.stdout and granted.stdout.rstrip().endswith("approved")
    listed = run_cli("--home", str(home), "role", "list")
    assert "rita" in listed.stdout and "approver" in listed.stdout
    refused = run_cli("--home", str(home), "role", "grant", "sam", "approver", env={"NBGOV_ACTOR": "sam"})
    assert refused.returncode == 1 and "does not hold the 'admin' role" in refused.stderr


# -- requests and rejections -----------------------------------------------------------------------


def test_a_rejection_is_signed_recorded_and_blocks_approval_until_resubmitted(governed) -> None:  # type: ignore[no-untyped-def]
    home, policy = governed
    request_id = request_approval(as_user(home, "ana"), "credit@1", note="ready for review")
    rejection = reject(as_user(home, "rita"), "credit@1", policy, reason="no drift test yet")
    assert _state(home) == "rejected"
    assert _approvals(home) == [("rejected", "rita", None)]
    requests = Ledger(home).query("SELECT requested_by, note, decision, event_id FROM approval_requests")
    assert list(requests.itertuples(index=False, name=None)) == [("ana", "ready for review", "rejected", request_id)]
    checks = verify_approvals(Ledger(home))
    assert [(c.event_id, c.valid) for c in checks] == [(rejection.event_id, True)]

    with pytest.raises(ApprovalRefused) as info:  # not approved while rejected
        approve(as_user(home, "omar"), "credit@1", policy)
    assert info.value.reasons == ["rejected"] and "request-approval" in str(info.value.hint)

    request_approval(as_user(home, "ana"), "credit@1", note="drift test added")
    assert _state(home) == "trained"
    approve(as_user(home, "omar"), "credit@1", policy)
    assert _state(home) == "approved"
    decisions = Ledger(home).query("SELECT note, decision FROM approval_requests ORDER BY seq")
    assert list(decisions.itertuples(index=False, name=None)) == [
        ("ready for review", "rejected"), ("drift test added", "granted")]


def test_a_rejection_follows_the_approval_rules(governed) -> None:  # type: ignore[no-untyped-def]
    home, policy = governed
    with pytest.raises(ApprovalRefused) as own:
        reject(as_user(home, "ana"), "credit@1", policy, reason="changed my mind")
    assert own.value.reasons == ["self_approval", "missing_role"]
    with pytest.raises(ApprovalRefused) as outsider:
        reject(as_user(home, "sam"), "credit@1", policy, reason="looks wrong")
    assert outsider.value.reasons == ["missing_role"]
    assert _approvals(home) == [("rejection denied", "ana", ["self_approval", "missing_role"]),
                                ("rejection denied", "sam", ["missing_role"])]
    assert _state(home) != "rejected"
    def count() -> int:
        return int(Ledger(home).query("SELECT count(*) AS n FROM events")["n"].iloc[0])

    before = count()
    with pytest.raises(NbgovError, match="a rejection needs a reason"):
        reject(as_user(home, "rita"), "credit@1", policy, reason="  ")
    with pytest.raises(UnknownModel):
        reject(as_user(home, "rita"), "credit@9", policy, reason="x")
    assert count() == before  # input errors record nothing


def test_a_tampered_rejection_signature_fails_verification(governed) -> None:  # type: ignore[no-untyped-def]
    home, policy = governed
    genuine = reject(as_user(home, "rita"), "credit@1", policy, reason="missing documentation")
    ledger = Ledger(home)
    forged = ledger.append(events.ApprovalRejected(model="credit", version=1, role="approver", reason="forged",
                                          statement={"decision": "reject", "reviewer": "mallory"},
                                          key_id="k" * 16, signature="AAAA", policy_sha256=policy.sha256))
    ledger.ingest()
    assert {c.event_id: c.valid for c in verify_approvals(ledger)} == {genuine.event_id: True, forged: False}


def test_requests_of_approved_or_retired_versions_are_refused(governed) -> None:  # type: ignore[no-untyped-def]
    home, policy = governed
    approve(as_user(home, "rita"), "credit@1", policy)
    with pytest.raises(NbgovError, match="credit@1 is approved; there is nothing to request"):
        request_approval(as_user(home, "ana"), "credit@1")


def test_reject_and_request_from_the_command_line(governed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home, policy = governed
    env = {"NBGOV_POLICY": policy.source}
    asked = run_cli("--home", str(home), "request-approval", "credit@1", "--note", "please",
                    env={**env, "NBGOV_ACTOR": "ana"})
    assert asked.returncode == 0, asked.stderr
    refused = run_cli("--home", str(home), "reject", "credit@1", "--reason", "mine", env={**env, "NBGOV_ACTOR": "ana"})
    assert refused.returncode == 1 and "segregation of duties" in refused.stderr
    done = run_cli("--home", str(home), "reject", "credit@1", "--reason", "bias above limit",
                   env={**env, "NBGOV_ACTOR": "rita"})
    assert done.returncode == 0 and "rejected by rita (bias above limit)" in done.stdout
    assert _state(home) == "rejected"


def test_order_is_the_ledgers_not_the_writers_clock(governed) -> None:  # type: ignore[no-untyped-def]
    # A role grant written by a process whose clock says 2099 must not outlive the revoke that
    # came after it in the ledger: every state view orders by seq, the writer's time is data.
    import subprocess
    import sys

    home, policy = governed
    script = (
        "import sys, time\n"
        "time.time_ns = lambda: 4_070_908_800_000_000_000  # 2099-01-01\n"
        "from nbgov.governance.registry import grant_role\n"
        "from nbgov.identity import Actor\n"
        "from nbgov.ledger.facade import Ledger\n"
        "grant_role(Ledger(sys.argv[1], actor=Actor('ines', 'configured')), 'zoe', 'approver')\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(home)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    future = Ledger(home).query("SELECT year(event_time) AS y FROM role_events WHERE subject = 'zoe'")
    assert list(future["y"]) == [2099]
    revoke_role(as_user(home, "ines"), "zoe", "approver")
    holders = Ledger(home).query("SELECT subject FROM roles WHERE role = 'approver' ORDER BY subject")
    assert "zoe" not in list(holders["subject"])
    with pytest.raises(ApprovalRefused) as info:
        approve(as_user(home, "zoe"), "credit@1", policy)
    assert "missing_role" in info.value.reasons


def test_every_decision_is_covered_by_a_signed_checkpoint_at_once(governed) -> None:  # type: ignore[no-untyped-def]
    # Removing a decision later must contradict a checkpoint already signed: one is cut after each.
    from nbgov.ledger.integrity.checkpoints import latest_checkpoint

    home, policy = governed

    def covered(event_type: str) -> bool:
        ledger = Ledger(home)
        with ledger.reader(ingest=False) as con:  # no ingest here: what the decision itself left
            last = con.execute("SELECT max(seq) FROM event_log WHERE type = ?", [event_type]).fetchone()[0]
            checkpoint = latest_checkpoint(con)
        return last is not None and checkpoint is not None and checkpoint.size >= last

    grant_role(as_user(home, "ines"), "zoe", "approver")
    assert covered("role_granted")
    with pytest.raises(ApprovalRefused):
        approve(as_user(home, "ana"), "credit@1", policy)  # a denial is a decision too
    assert covered("approval_denied")
    approve(as_user(home, "rita"), "credit@1", policy)
    assert covered("approval_granted")
    revoke_role(as_user(home, "ines"), "zoe", "approver")
    assert covered("role_revoked")
    reasons = Ledger(home).query("SELECT DISTINCT payload->>'reason' AS r FROM events WHERE type = 'checkpoint_signed'")
    assert "decision" in set(reasons["r"])
