"""Third-party vendors, the risk register and training-data access, as checks and SQL see them."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import blake3
import pytest

from nbgov import events
from nbgov.errors import AccessError, ApprovalRefused, PermissionDenied, RiskError, VendorError
from nbgov.fingerprint import fingerprint_file
from nbgov.governance.access import access_report, classify, grant_access, revoke_access
from nbgov.governance.approvals import approve
from nbgov.governance.checks import check_model
from nbgov.governance.registry import grant_role
from nbgov.governance.risks import record_risk, set_tier
from nbgov.governance.vendors import link_vendor, register_vendor
from nbgov.ledger import envelope
from nbgov.ledger.facade import Ledger
from support.helpers import as_user, bias_test, run_cli, train_version, write_policy

TODAY = dt.date(2026, 11, 28)


@pytest.fixture
def world(tmp_path: Path, home: Path):  # type: ignore[no-untyped-def]
    """credit@1 by ana with a passing bias test; roles: ines admin, rita approver, dana steward."""
    Ledger.init(home)
    policy = write_policy(tmp_path)
    data = tmp_path / "loans.csv"
    data.write_text("income,default\n1,0\n2,1\n")
    bias_test(home, train_version(home, data), gap=False, policy=policy)
    admin = as_user(home, "ines")
    grant_role(admin, "ines", "admin")
    grant_role(admin, "rita", "approver")
    grant_role(admin, "dana", "data_steward")
    return home, policy, data


def _codes(report, status: str = "fail") -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(f.code, f.message) for f in report.findings if f.status == status]


# -- vendors -------------------------------------------------------------------------------------


def test_an_expired_vendor_attestation_is_flagged(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home, policy, _ = world
    report = tmp_path / "soc2.pdf"
    report.write_bytes(b"%PDF- soc 2 type ii report")
    ana = as_user(home, "ana")
    register_vendor(ana, "Acme", service="bureau scores", certifications=["SOC 2 Type II:2025-06-30"],
                    evidence=report)
    link_vendor(ana, "Acme", "credit")
    # 2025-06-30 + 365 days = 2026-06-30: current on 2026-06-30, expired the day after
    assert check_model(ana, "credit@1", policy, today=dt.date(2026, 6, 30), record=False).passed
    failed = check_model(ana, "credit@1", policy, today=dt.date(2026, 7, 1), record=False)
    assert _codes(failed) == [("vendor", "vendor Acme: attestation expired (SOC 2 Type II period ended "
                                         "2025-06-30; accepted for 365 days after the period end)")]
    # the findings view judges vendors today, against the latest recorded policy
    check_model(ana, "credit@1", policy, today=TODAY)  # records the policy
    flagged = Ledger(home).query("SELECT subject, message FROM findings WHERE origin = 'vendor'")
    assert list(flagged["subject"]) == ["Acme"] and "expired" in flagged["message"].iloc[0]
    with pytest.raises(ApprovalRefused) as info:
        approve(as_user(home, "rita"), "credit@1", policy, today=TODAY)
    assert info.value.reasons == ["policy_check_failed"]
    # a current report clears it; the evidence file is fingerprinted, not copied
    register_vendor(ana, "Acme", service="bureau scores", certifications=["SOC 2 Type II:2026-06-30"],
                    evidence=report)
    assert check_model(ana, "credit@1", policy, today=TODAY, record=False).passed
    assert Ledger(home).query("SELECT count(*) AS n FROM findings WHERE origin = 'vendor'")["n"].iloc[0] == 0
    stored = Ledger(home).query("SELECT evidence_fingerprint, evidence_path FROM vendors")
    assert stored["evidence_fingerprint"].iloc[0] == blake3.blake3(report.read_bytes()).hexdigest()
    assert stored["evidence_path"].iloc[0] == str(report)


def test_vendors_without_an_accepted_attestation_fail(world) -> None:  # type: ignore[no-untyped-def]
    home, policy, _ = world
    ana = as_user(home, "ana")
    register_vendor(ana, "Bolt AI", service="embeddings", certifications=["CSA STAR:2026-10-01"])
    link_vendor(ana, "Bolt AI", "credit", version=1)
    failed = check_model(ana, "credit@1", policy, today=TODAY, record=False)
    assert _codes(failed) == [("vendor", "vendor Bolt AI: no accepted attestation (accepted: SOC 2 Type II, "
                                         "ISO 27001)")]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda led: register_vendor(led, "X", service="s", certifications=["SOC 2"]), "is not NAME:YYYY-MM-DD"),
        (lambda led: register_vendor(led, "X", service="s", certifications=["SOC 2:2026-02-30"]), "is not a date"),
        (lambda led: register_vendor(led, "X", service=" "), "needs a name and the service"),
        (lambda led: register_vendor(led, "X", service="s", evidence="/no/such.pdf"), "not found"),
        (lambda led: link_vendor(led, "Nobody", "credit"), "no vendor named 'Nobody'"),
    ],
)
def test_bad_vendor_input(world, call, message: str) -> None:  # type: ignore[no-untyped-def]
    home, _, _ = world
    before = Ledger(home).query("SELECT count(*) AS n FROM events")["n"].iloc[0]
    with pytest.raises(VendorError, match=message):
        call(as_user(home, "ana"))
    assert Ledger(home).query("SELECT count(*) AS n FROM events")["n"].iloc[0] == before


# -- risk register -------------------------------------------------------------------------------


def _risk(ledger, category: str, **changes: str) -> None:  # type: ignore[no-untyped-def]
    fields = {"description": f"{category} risk", "likelihood": "medium", "impact": "high",
              "treatment": "mitigate", "owner": "ana", "next_review": "2027-01-31"}
    record_risk(ledger, "credit", category=category, **{**fields, **changes})


def test_approval_is_blocked_when_the_tier_needs_a_missing_risk_category(world) -> None:  # type: ignore[no-untyped-def]
    home, policy, _ = world
    ana = as_user(home, "ana")
    set_tier(ana, "credit", "medium", reason="internal scoring")
    _risk(ana, "bias")
    with pytest.raises(ApprovalRefused) as info:
        approve(as_user(home, "rita"), "credit@1", policy, today=TODAY)
    assert _codes(info.value.check) == [
        ("risk_register", "risk register lacks drift (required for medium-risk models)")]
    _risk(ana, "drift")
    approved = approve(as_user(home, "rita"), "credit@1", policy, today=TODAY)
    assert approved.approved


def test_overdue_risk_reviews_fail_and_updates_replace_entries(world) -> None:  # type: ignore[no-untyped-def]
    home, policy, _ = world
    ana = as_user(home, "ana")
    set_tier(ana, "credit", "medium")
    _risk(ana, "bias", next_review="2026-11-01")
    _risk(ana, "drift")
    failed = check_model(ana, "credit@1", policy, today=TODAY, record=False)
    assert _codes(failed) == [("risk_review", "risk bias was due for review on 2026-11-01")]
    _risk(ana, "bias", next_review="2027-05-01", treatment="accept")  # the review's outcome
    assert check_model(ana, "credit@1", policy, today=TODAY, record=False).passed
    risks = Ledger(home).query("SELECT risk_id, treatment, next_review FROM risks ORDER BY risk_id")
    assert list(risks.itertuples(index=False, name=None)) == [
        ("bias", "accept", dt.date(2027, 5, 1)), ("drift", "mitigate", dt.date(2027, 1, 31))]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"category": "weather"}, "category 'weather' is not one of"),
        ({"likelihood": "certain"}, "likelihood 'certain'"),
        ({"treatment": "ignore"}, "treatment 'ignore'"),
        ({"next_review": "soon"}, "is not a date"),
        ({"owner": " "}, "needs an owner"),
    ],
)
def test_bad_risk_input(world, changes: dict[str, str], message: str) -> None:  # type: ignore[no-untyped-def]
    home, _, _ = world
    fields = {"category": "bias", "description": "d", "likelihood": "low", "impact": "low",
              "treatment": "mitigate", "owner": "ana", "next_review": "2027-01-01", **changes}
    with pytest.raises(RiskError, match=message):
        record_risk(as_user(home, "ana"), "credit", **fields)
    with pytest.raises(RiskError, match="no model named 'ghost'"):
        set_tier(as_user(home, "ana"), "ghost", "low")


# -- data access ---------------------------------------------------------------------------------


def _read(home: Path, who: str, path: Path, session: str = "r1") -> None:
    print_ = fingerprint_file(path)
    ledger = as_user(home, who)
    ledger.append(events.DatasetRead(path=str(path), fingerprint=print_.digest, algorithm="blake3",
                                     coverage="file", node=f"cell:{session}:1",
                                     inputs=[f"dataset:{print_.digest}"]),
                  session=envelope.Session(session_id=session))
    ledger.ingest()


def _access(home: Path) -> list[tuple[str, str, str, bool, bool]]:
    frame = Ledger(home).query(
        "SELECT actor, classification, coalesce(classification_at_read, '-'), granted, violation "
        "FROM data_access "
        "ORDER BY seq")
    return list(frame.itertuples(index=False, name=None))


def test_reads_of_restricted_data_need_a_grant(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home, _, _ = world
    applicants = tmp_path / "applicants.csv"
    applicants.write_text("ssn,income\n123,1\n")
    _read(home, "ana", applicants)  # before classification: not a finding
    with pytest.raises(PermissionDenied, match="needs the 'data_steward' or 'admin' role"):
        classify(as_user(home, "ana"), applicants, "public")
    classify(as_user(home, "dana"), applicants, "restricted", reason="SSNs")
    _read(home, "ana", applicants)  # no grant: a finding
    grant_access(as_user(home, "dana"), "ana", applicants, expires="2099-12-31")
    _read(home, "ana", applicants)  # granted
    copy = tmp_path / "copy-of-applicants.csv"
    shutil.copy(applicants, copy)
    _read(home, "sam", copy)  # a copy is the same data: still restricted, and sam has no grant
    revoke_access(as_user(home, "dana"), "ana", applicants, reason="project over")
    _read(home, "ana", applicants)  # revoked
    assert _access(home) == [
        ("ana", "restricted", "-", False, False),
        ("ana", "restricted", "restricted", False, True),
        ("ana", "restricted", "restricted", True, False),
        ("sam", "restricted", "restricted", False, True),
        ("ana", "restricted", "restricted", False, True),
    ]
    findings = Ledger(home).query(
        "SELECT actor, code FROM findings WHERE origin = 'data_access' ORDER BY seq")
    assert list(findings.itertuples(index=False, name=None)) == [
        ("ana", "restricted_read_without_grant"), ("sam", "restricted_read_without_grant"),
        ("ana", "restricted_read_without_grant")]
    report = access_report(Ledger(home), violations_only=True)
    assert list(report["actor"]) == ["ana", "sam", "ana"]


def test_expired_grants_and_unrestricted_classes(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home, _, _ = world
    internal, restricted = tmp_path / "internal.csv", tmp_path / "restricted.csv"
    internal.write_text("a\n1\n")
    restricted.write_text("b\n2\n")
    classify(as_user(home, "dana"), internal, "internal")
    classify(as_user(home, "dana"), restricted, "restricted")
    grant_access(as_user(home, "dana"), "ana", restricted, expires="2020-01-01")
    _read(home, "ana", internal)
    _read(home, "ana", restricted)
    assert _access(home) == [("ana", "internal", "internal", False, False),
                             ("ana", "restricted", "restricted", False, True)]
    with pytest.raises(AccessError, match="is not one of"):
        classify(as_user(home, "dana"), internal, "secret")
    with pytest.raises(AccessError, match="is not classified"):
        grant_access(as_user(home, "dana"), "ana", tmp_path / "loans.csv")


def test_a_check_flags_training_data_read_without_a_grant(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home, policy, data = world
    classify(as_user(home, "dana"), data, "restricted")
    ref = train_version(home, data, version=2, session="s2")  # ana reads it again, no grant
    bias_test(home, ref, gap=False, policy=policy)
    failed = check_model(as_user(home, "ana"), ref, policy, today=TODAY, record=False)
    assert _codes(failed) == [("data_access", f"ana read restricted data {data} without a recorded grant")]
    # version 1 read the file before it was classified: nothing to flag
    assert check_model(as_user(home, "ana"), "credit@1", policy, today=TODAY, record=False).passed


def test_cli_data_commands(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home, _, data = world
    as_dana = {"NBGOV_ACTOR": "dana"}
    classified = run_cli("--home", str(home), "data", "classify", str(data), "restricted", env=as_dana)
    assert classified.returncode == 0, classified.stderr
    refused = run_cli("--home", str(home), "data", "grant", "ana", str(data), "--expires", "someday",
                      env=as_dana)
    assert refused.returncode == 1 and "is not a date (YYYY-MM-DD)" in refused.stderr
    _read(home, "ana", data)
    report = run_cli("--home", str(home), "data", "report", "--violations")
    assert report.returncode == 0 and "ana" in report.stdout and "True" in report.stdout
    empty = run_cli("--home", str(home), "data", "report", "--since", "2999-01-01")
    assert "no reads of classified datasets" in empty.stdout
