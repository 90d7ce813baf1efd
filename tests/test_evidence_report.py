"""The evidence report: its tables against the ledger, the SOC 2 controls' assessments, the HTML
page (well-formed, escaped, standalone) and how it renders in a real browser.

The main ledger is recorded through the API with its clock set to three moments: January (before
the period), February (the period, 2026-02-01..2026-02-28) and March (after it), so each table can
be checked for what it includes and what it leaves out.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import nbgov.ledger.spool
from nbgov import events
from nbgov.alerts.raising import raise_alert
from nbgov.api import drift
from nbgov.capture.recorder import Recorder, activate, deactivate
from nbgov.errors import ApprovalRefused, EvidenceError
from nbgov.evidence.controls import (
    CONTROLS,
    CRITERIA,
    EVIDENCED,
    MISSING,
    NOT_APPLICABLE,
    PARTIAL,
    ControlReport,
    VerificationSummary,
    assess_controls,
)
from nbgov.evidence.report import render_report
from nbgov.evidence.tables import EvidenceTable, evidence_tables
from nbgov.fingerprint import fingerprint_file
from nbgov.governance.access import classify, grant_access
from nbgov.governance.approvals import approve, reject
from nbgov.governance.registry import grant_role
from nbgov.governance.risks import record_risk, set_tier
from nbgov.governance.vendors import link_vendor, register_vendor
from nbgov.ledger.envelope import Session
from nbgov.ledger.facade import Ledger
from nbgov.reviews.schedules import add_schedule
from support.helpers import as_user, bias_test, governed_ledger, review_notebook, train_version, write_policy

START, END = dt.date(2026, 2, 1), dt.date(2026, 2, 28)
NOW = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)


class Clock:
    """The spool's clock (the time stamped on every event), set by the test; the rest of the
    time module passes through."""

    def __init__(self) -> None:
        self.moment = dt.datetime(2026, 1, 10, 9, 0, tzinfo=dt.UTC)

    def set(self, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
        self.moment = dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)
        return self.moment

    def time_ns(self) -> int:
        self.moment += dt.timedelta(microseconds=10)  # events in one moment keep their order
        return int(self.moment.timestamp() * 1e9)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def _recorded(home: Path, who: str, call: Any) -> Any:
    """Run *call* (an evaluation) inside a recording session of *who*."""
    recorder = Recorder(as_user(home, who), flush_interval=0)
    activate(recorder)
    try:
        return call()
    finally:
        deactivate(recorder)
        recorder.ledger.ingest()


def _read(home: Path, who: str, path: Path, session: str) -> None:
    print_ = fingerprint_file(path)
    cell = f"cell:{session}:1"
    ledger = as_user(home, who)
    ledger.append(events.DatasetRead(path=str(path), fingerprint=print_.digest, algorithm="blake3",
                                     coverage="file", node=cell, inputs=[f"dataset:{print_.digest}"]),
                  session=Session(session_id=session, cell_run=cell))
    ledger.ingest()


def _run(home: Path, notebook: Path, job: str | None, at: dt.datetime, status: str,
         error: tuple[str, str] | None = None) -> None:
    ledger = as_user(home, "scheduler")
    run_id = f"run-{job}-{at:%m%d}"
    session = Session(session_id=run_id, run_id=run_id)
    when = at.isoformat() if job else None
    ledger.append(events.ReviewRunStarted(run_id=run_id, notebook=str(notebook), notebook_sha256="ab" * 32,
                                          parameters={"model": "credit"}, output=f"runs/{run_id}.ipynb",
                                          job=job, scheduled_for=when), session=session)
    ledger.append(events.ReviewRunFinished(run_id=run_id, status=status, cells_total=4, cells_executed=4,
                                           duration_us=2_000_000, output=f"runs/{run_id}.ipynb",
                                           output_fingerprint="cd" * 32, job=job, scheduled_for=when,
                                           error_type=error[0] if error else None,
                                           error_message=error[1] if error else None,
                                           cell_index=3 if error else None), session=session)
    ledger.ingest()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A ledger with work before, during and after February 2026 (see the module docstring)."""
    tmp = tmp_path_factory.mktemp("world")
    clock = Clock()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NBGOV_KEY_DIR", str(tmp / "keys"))
        patch.setattr(nbgov.ledger.spool, "time", clock)
        # January: credit@1 trained on declared data, tested, approved; a weekly bias review.
        home, policy_path = governed_ledger(tmp)
        policy = write_policy(tmp)
        loans = tmp / "loans.csv"
        grant_role(as_user(home, "ines"), "dana", "data_steward")
        clock.set(2026, 1, 12, 10, 0)
        approve(as_user(home, "rita"), "credit@1", policy, today=dt.date(2026, 1, 12))
        notebook = review_notebook(tmp / "bias_review.ipynb", "print(1)")
        clock.set(2026, 1, 15, 8, 0)
        add_schedule(as_user(home, "ines"), notebook, cron="0 6 * * MON", job="weekly-bias",
                     now=dt.datetime(2026, 1, 15, 8, 0, tzinfo=dt.UTC))
        add_schedule(as_user(home, "ines"), notebook, cron="0 7 1 * *", job="monthly-drift",
                     now=dt.datetime(2026, 1, 15, 8, 0, tzinfo=dt.UTC))  # due 1 Feb; never runs
        # February: the period.
        clock.set(2026, 2, 2, 6, 1)
        _run(home, notebook, "weekly-bias", dt.datetime(2026, 2, 2, 6, 0, tzinfo=dt.UTC), "succeeded")
        clock.set(2026, 2, 3, 9, 0)
        loans2 = tmp / "loans2.csv"
        loans2.write_text("income,default\n1,0\n2,1\n3,1\n")
        train_version(home, loans2, version=2, roc_auc=0.8, declare=False, session="s2")
        clock.set(2026, 2, 4, 9, 0)
        bias_test(home, "credit@2", gap=True, policy=policy)
        clock.set(2026, 2, 5, 9, 0)
        for who in ("rita", "ana"):
            with pytest.raises(ApprovalRefused):
                approve(as_user(home, who), "credit@2", policy, today=dt.date(2026, 2, 5))
        clock.set(2026, 2, 6, 9, 0)
        reject(as_user(home, "rita"), "credit@2", policy, reason="fails the bias limits")
        clock.set(2026, 2, 9, 6, 2)
        _run(home, notebook, "weekly-bias", dt.datetime(2026, 2, 9, 6, 0, tzinfo=dt.UTC), "failed",
             ("PolicyBreach", "credit@1: demographic parity ratio 0.67 is below the minimum 0.8"))
        clock.set(2026, 2, 10, 9, 0)
        reference = pd.DataFrame({"income": [float(i % 50) for i in range(400)]})
        current = pd.DataFrame({"income": [float(i % 50) + 30 for i in range(400)]})
        _recorded(home, "ana", lambda: drift(reference, current, model="credit@1", policy=policy))
        clock.set(2026, 2, 11, 9, 0)
        report = tmp / "acme-soc2.pdf"
        report.write_bytes(b"%PDF- acme soc 2 type ii")
        register_vendor(as_user(home, "ana"), "Acme", service="bureau scores",
                        certifications=["SOC 2 Type II:2024-06-30"], evidence=report)
        link_vendor(as_user(home, "ana"), "Acme", "credit")
        clock.set(2026, 2, 12, 9, 0)
        set_tier(as_user(home, "ana"), "credit", "low", reason="internal pilot")
        record_risk(as_user(home, "ana"), "credit", category="bias", description="unequal denial rates",
                    likelihood="medium", impact="high", treatment="mitigate", owner="ana",
                    next_review="2026-06-30")
        clock.set(2026, 2, 13, 9, 0)
        grant_role(as_user(home, "ines"), "bob", "approver")
        clock.set(2026, 2, 14, 9, 0)
        classify(as_user(home, "dana"), loans, "restricted", reason="personal data")
        _read(home, "bob", loans, "s-bob")
        grant_access(as_user(home, "dana"), "ana", loans)
        _read(home, "ana", loans, "s-ana")
        for day in (16, 23):
            clock.set(2026, 2, day, 7, 30)
            due = dt.datetime(2026, 2, day, 6, 0, tzinfo=dt.UTC)
            as_user(home, "scheduler").append(events.ReviewMissed(job="weekly-bias", scheduled_for=due.isoformat(),
                                                                  grace_s=3600.0, catch_up="skip"))
            raise_alert(as_user(home, "scheduler"), None, reason="missed", job="weekly-bias", now=clock.moment,
                        message=f"review weekly-bias due {due.isoformat()} did not start")
        # March: after the period.
        clock.set(2026, 3, 2, 6, 1)
        _run(home, notebook, "weekly-bias", dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC), "succeeded")
        clock.set(2026, 3, 3, 9, 0)
        train_version(home, loans, version=3, session="s3")
        bias_test(home, "credit@3", gap=False, policy=policy)
        grant_role(as_user(home, "ines"), "carl", "approver")
        _read(home, "bob", loans, "s-bob-march")
        clock.set(2026, 3, 5, 9, 0)
        register_vendor(as_user(home, "ana"), "Acme", service="bureau scores",
                        certifications=["SOC 2 Type II:2026-01-31"], evidence=report)
        ledger = Ledger(home)
        ledger.ingest()
    # the clock is back: reading (and any checkpoint cut while reading) happens now
    tables = evidence_tables(ledger, START, END)
    return {"home": home, "ledger": ledger, "policy": policy, "policy_path": policy_path, "tables": tables,
            "by_name": {t.name: t for t in tables}, "loans": loans, "loans2": loans2, "tmp": tmp}


def _verified(ledger: Ledger, *, checkpoint: bool = True) -> VerificationSummary:
    report = ledger.verify()
    size, root = ledger.merkle_root()
    return VerificationSummary.from_report(
        report, ledger.query("SELECT value FROM ledger_meta WHERE key = 'ledger_id'")["value"].iloc[0],
        checkpoint_size=size if checkpoint else None, checkpoint_origin="nbgov.test/ledger" if checkpoint else None,
        checkpoint_root=root.hex() if checkpoint else None)


@pytest.fixture(scope="module")
def assessed(world: dict[str, Any]) -> ControlReport:
    ledger = world["ledger"]
    return assess_controls(ledger, START, END, world["tables"], _verified(ledger), now=NOW)


def _events(ledger: Ledger, sql: str, **params: Any) -> pd.DataFrame:
    return ledger.query(sql, params or None)


# -- the tables -------------------------------------------------------------------------------------


def test_every_table_is_flat_and_names_its_sql_and_parameters(world: dict[str, Any]) -> None:
    import pyarrow as pa

    tables: list[EvidenceTable] = world["tables"]
    assert len({t.name for t in tables}) == len(tables)
    for table in tables:
        assert re.fullmatch(r"[a-z_]+", table.name)
        assert set(table.params) <= {"from", "to"} and all(f"${p}" in table.sql for p in table.params)
        assert "2026-02" not in table.sql  # the period is bound, never formatted into the text
        for field in table.data.schema:
            assert not pa.types.is_nested(field.type), (table.name, field.name, field.type)
        # the SQL alone gives the same rows (computed columns aside)
        again = world["ledger"].query_arrow(table.sql, table.params).table
        assert again.column_names == [c for c in table.data.column_names if c not in table.computed]
        assert again.num_rows == table.rows
        if table.kind == "aggregate":
            assert "seq" not in table.data.column_names and not table.event_types
        else:
            assert "seq" in table.data.column_names and table.event_types


def test_each_seq_is_the_event_its_row_states(world: dict[str, Any]) -> None:
    """A row's seq names an event of the table's types whose payload says what the row says."""
    ledger = world["ledger"]
    bodies = _events(ledger, "SELECT seq, type, payload FROM events")
    by_seq = {int(s): (t, json.loads(p)) for s, t, p in zip(bodies["seq"], bodies["type"], bodies["payload"])}
    renamed = {"vendors": {"vendor": "name"}, "vendor_attestations": {"vendor": "name"}}
    compared = 0
    for table in world["tables"]:
        for row in table.records():
            if "seq" not in row:
                continue
            kind, payload = by_seq[row["seq"]]
            assert kind in table.event_types, (table.name, row["seq"], kind)
            for column, value in row.items():
                key = renamed.get(table.name, {}).get(column, column)
                if value is None or isinstance(payload.get(key), (dict, list)) or key not in payload:
                    continue
                if table.name == "lifecycle_changes" and kind == "approval_granted":
                    continue  # the view words an approval that completed a version as a transition
                assert payload[key] == (value.isoformat() if isinstance(value, dt.date) else value), (
                    table.name, row["seq"], column)
                compared += 1
    assert compared > 150


def test_activity_tables_hold_exactly_the_periods_events(world: dict[str, Any]) -> None:
    ledger, tables = world["ledger"], world["by_name"]
    in_period = "CAST(timezone('UTC', event_time) AS DATE) BETWEEN DATE '2026-02-01' AND DATE '2026-02-28'"
    expected = {
        "models": "type = 'model_fitted'", "approvals": "type IN ('approval_granted', 'approval_rejected', "
        "'approval_denied')", "role_changes": "type IN ('role_granted', 'role_revoked')",
        "missed_runs": "type = 'review_missed'", "review_runs": "type = 'review_run_started'",
        "dataset_declarations": "type = 'dataset_declared'", "alerts": "type = 'alert_raised'",
        "policy_checks": "type = 'policy_evaluated'", "sessions": "type = 'session_started'",
        "access_grants": "type IN ('data_access_granted', 'data_access_revoked')",
        "checkpoints": "type = 'checkpoint_signed'", "datasets": "type IN ('dataset_read', 'dataset_written')",
        "fairness_results": "type = 'fairness_evaluated'", "drift_results": "type = 'drift_evaluated'",
    }
    for name, where in expected.items():
        seqs = _events(ledger, f"SELECT seq FROM events WHERE {where} AND {in_period} ORDER BY seq")["seq"]
        assert sorted(set(tables[name].seqs())) == [int(s) for s in seqs], name
    counts = _events(ledger, f"SELECT type, count(*) AS n FROM events WHERE {in_period} GROUP BY type")
    assert {r["type"]: r["events"] for r in tables["event_counts"].records()} == dict(zip(counts["type"], counts["n"]))
    when = {"sessions": "started_at", "review_runs": "started_at", "data_access": "read_at", "alerts": "raised_at",
            "approval_requests": "requested_at", "missed_runs": "scheduled_for", "fairness_groups": "event_time"}
    for table in world["tables"]:
        if table.kind == "activity" and table.name != "policies":
            for row in table.records():
                moment = row[when.get(table.name, "event_time")]
                assert START <= moment.astimezone(dt.UTC).date() <= END, (table.name, row["seq"])
    # what happened before and after is not there
    assert [r["ref"] for r in tables["models"].records()] == ["credit@2"]
    assert [r["subject"] for r in tables["role_changes"].records()] == ["bob"]
    assert [(r["job"], r["status"]) for r in tables["review_runs"].records()] == [
        ("weekly-bias", "succeeded"), ("weekly-bias", "failed")]
    assert [r["actor"] for r in tables["data_access"].records()] == ["bob", "ana"]


def test_table_values_by_seq(world: dict[str, Any]) -> None:
    tables = world["by_name"]
    approvals = tables["approvals"].records()
    assert [(r["decision"], r["reviewer"]) for r in approvals] == [
        ("denied", "rita"), ("denied", "ana"), ("rejected", "rita")]
    assert approvals[2]["signature_valid"] is True and approvals[0]["signature_valid"] is None
    assert "self_approval" in json.loads(approvals[1]["reasons"])
    assert set(tables["approvals"].computed) == {"signature_valid", "signature_problem"}
    dataset = next(r for r in tables["datasets"].records() if r["path"] == str(world["loans2"]))
    assert dataset["declaration_seq"] is None and dataset["fingerprint"] == fingerprint_file(world["loans2"]).digest
    declared = next(r for r in tables["datasets"].records() if r["path"] == str(world["loans"]))
    assert declared["declared_source"] == "bank core system" and declared["declaration_seq"] < declared["seq"]
    violation = tables["data_access"].records()
    assert [(r["actor"], r["violation"]) for r in violation] == [("bob", True), ("ana", False)]
    fairness = tables["fairness_results"].records()
    assert [(r["model"], r["version"], r["attribute"], r["verdict"]) for r in fairness] == [
        ("credit", 2, "race", "fail")]
    assert fairness[0]["demographic_parity_ratio"] == pytest.approx(40 / 60)
    groups = tables["fairness_groups"].records()
    assert {(r["group"], r["selection_rate"]) for r in groups} == {("a", 0.6), ("b", 0.4)}
    assert {r["seq"] for r in groups} == {fairness[0]["seq"]}
    drifted = [r for r in tables["drift_results"].records() if r["feature"] == "income"]
    assert drifted and drifted[0]["drifted"] is True
    states = {r["ref"]: r["state"] for r in tables["model_inventory"].records()}
    assert states == {"credit@1": "approved", "credit@2": "rejected"}  # credit@3 came after the period


def test_in_force_tables_show_the_state_at_the_periods_end(world: dict[str, Any]) -> None:
    ledger, tables = world["ledger"], world["by_name"]
    vendor = tables["vendors"].records()
    assert len(vendor) == 1 and vendor[0]["vendor"] == "Acme"
    assert vendor[0]["registered_at"].date() == dt.date(2026, 2, 11)  # not the March registration
    assert [(r["certification"], r["period_end"]) for r in tables["vendor_attestations"].records()] == [
        ("SOC 2 Type II", dt.date(2024, 6, 30))]
    roles = {(r["subject"], r["role"]) for r in tables["roles"].records()}
    assert ("bob", "approver") in roles and ("carl", "approver") not in roles
    assert [r["job"] for r in tables["schedules"].records()] == ["monthly-drift", "weekly-bias"]
    policies = tables["policies"].records()
    assert policies and policies[0]["recorded_at"].date() < START  # the policy in force when it began
    latest = _events(ledger, "SELECT max(seq) AS s FROM events WHERE type = 'vendor_registered'")["s"].iloc[0]
    assert vendor[0]["seq"] < latest


def test_a_period_is_two_dates_in_order(world: dict[str, Any]) -> None:
    with pytest.raises(EvidenceError, match="after it ends"):
        evidence_tables(world["ledger"], END, START)
    with pytest.raises(EvidenceError, match="must be a date"):
        evidence_tables(world["ledger"], dt.datetime(2026, 2, 1), END)  # a datetime is a date subclass


# -- the controls -------------------------------------------------------------------------------------


def test_every_control_maps_to_known_criteria_and_tables(world: dict[str, Any]) -> None:
    ids = {c.id for c in CRITERIA}
    assert {"CC3.2", "CC6.1", "CC7.2", "CC8.1", "CC9.2", "PI1.2", "C1.1"} <= ids
    names = set(world["by_name"])
    for control in CONTROLS:
        assert set(control.criteria) <= ids and set(control.tables) <= names, control.id
    assert {"bias-testing", "data-provenance", "model-documentation", "drift-monitoring", "audit-trail",
            "periodic-reviews", "vendor-evidence"} <= {c.id for c in CONTROLS}


def test_the_worlds_gaps_name_the_job_the_dataset_the_vendor_and_the_reader(assessed: ControlReport,
                                                                             world: dict[str, Any]) -> None:
    reviews = assessed.assessment("periodic-reviews")
    assert reviews.status == PARTIAL
    assert "review job weekly-bias missed 2 runs (due 2026-02-16 06:00 UTC, 2026-02-23 06:00 UTC)" in reviews.gaps
    assert any(g.startswith("review job weekly-bias: 1 of 2 runs did not succeed (failed") and "PolicyBreach" in g
               for g in reviews.gaps)
    silent = [g for g in reviews.gaps if "with no run or missed run recorded" in g]
    assert silent == ["review job monthly-drift was due 1 time in the period with no run or missed run recorded "
                      "(first due 2026-02-01 07:00 UTC)"]  # weekly-bias: every due time is accounted for
    provenance = assessed.assessment("data-provenance")
    assert provenance.status == MISSING
    assert provenance.gaps == (f"dataset {world['loans2']} (training data of credit@2) has no declared source, "
                               "license, owner",)
    access = assessed.assessment("data-access")
    assert access.status == PARTIAL and len(access.gaps) == 1
    assert access.gaps[0].startswith(f"bob read restricted data {world['loans']} without a recorded grant (1 time")
    vendor = assessed.assessment("vendor-evidence")
    assert vendor.status == MISSING
    assert vendor.gaps == ("vendor Acme (used by credit) was registered again on 2026-03-05, after the period, "
                           "so the attestations in force at its end (SOC 2 Type II period ended 2024-06-30) are "
                           "not judged here",)
    drift_control = assessed.assessment("drift-monitoring")
    assert drift_control.status == EVIDENCED
    assert any("drift found in credit@1" in e.text and "income" in e.text for e in drift_control.evidence)
    decisions = assessed.assessment("approvals")
    assert decisions.status == EVIDENCED
    assert any("refused attempt" in e.text and "self_approval" in e.text for e in decisions.evidence)
    assert assessed.assessment("audit-trail").status == EVIDENCED
    assert assessed.assessment("bias-testing").status == EVIDENCED  # tests ran; nothing approved unchecked
    assert assessed.assessment("risk-register").status == EVIDENCED


def test_evidence_cites_rows_of_the_tables(assessed: ControlReport, world: dict[str, Any]) -> None:
    tables = world["by_name"]
    cited = 0
    for item in assessed.assessments:
        for found in item.evidence:
            if found.table:
                assert found.table in tables, found
                assert set(found.seqs) <= set(tables[found.table].seqs()), found
                cited += len(found.seqs)
    assert cited > 20


def test_criteria_take_the_weakest_mapped_control(assessed: ControlReport) -> None:
    assert assessed.criterion_status("CC9.2") == MISSING  # vendor evidence only
    assert assessed.criterion_status("CC7.2") == PARTIAL  # reviews partial, drift and the trail evidenced
    assert assessed.criterion_status("CC6.4") == "not addressed"


_POLICY_NO_BIAS_REQUIRED = """\
default_tier = "low"
[fairness]
required = false
[metrics]
minimum = { roc_auc = 0.7 }
[tiers.low]
review_every_days = 365
[tiers.medium]
review_every_days = 90
[tiers.high]
review_every_days = 30
"""


def _recent() -> tuple[dt.date, dt.date]:
    """A period around today (so a test running at midnight still sees its own events)."""
    today = dt.datetime.now(dt.UTC).date()
    return today - dt.timedelta(days=1), today + dt.timedelta(days=1)


def _assess(home: Path, control: str, **kwargs: Any) -> Any:
    start, end = _recent()
    ledger = Ledger(home)
    tables = evidence_tables(ledger, start, end)
    return assess_controls(ledger, start, end, tables, _verified(ledger, **kwargs)).assessment(control)


def test_bias_testing_is_missing_without_a_test_before_approval_and_evidenced_with_one(tmp_path: Path) -> None:
    results = {}
    for tested in (False, True):
        base = tmp_path / str(tested)
        base.mkdir()
        home = base / "ledger"
        Ledger.init(home)
        policy = write_policy(base, _POLICY_NO_BIAS_REQUIRED)
        grant_role(as_user(home, "ines"), "ines", "admin")
        grant_role(as_user(home, "ines"), "rita", "approver")
        data = base / "loans.csv"
        data.write_text("income,default\n1,0\n")
        train_version(home, data)
        if tested:
            bias_test(home, "credit@1", gap=False, policy=policy)
        approve(as_user(home, "rita"), "credit@1", policy)
        results[tested] = _assess(home, "bias-testing")
    assert results[False].status == MISSING
    approved = Ledger(tmp_path / "False" / "ledger").query(
        "SELECT event_time FROM approvals WHERE decision = 'granted'")["event_time"].iloc[0]
    assert results[False].gaps == (f"credit@1 was approved on {approved.date().isoformat()} without a bias test",)
    assert results[True].status == EVIDENCED and results[True].gaps == ()


def test_provenance_turns_evidenced_once_the_data_is_declared(tmp_path: Path) -> None:
    home, _ = governed_ledger(tmp_path)
    raw = tmp_path / "applications.csv"
    raw.write_text("income,default\n5,1\n")
    train_version(home, raw, version=2, declare=False, session="s2")
    missing = _assess(home, "data-provenance")
    assert missing.status == PARTIAL  # credit@1's data is declared, credit@2's is not
    assert missing.gaps == (f"dataset {raw} (training data of credit@2) has no declared source, license, owner",)
    print_ = fingerprint_file(raw)
    as_user(home, "ana").append(events.DatasetDeclared(
        path=str(raw), fingerprint=print_.digest, algorithm="blake3", node=f"dataset:{print_.digest}",
        source="loan applications export", license="internal", owner="credit-data"))
    assert _assess(home, "data-provenance").status == EVIDENCED


def test_drift_monitoring_needs_a_test_of_each_approved_version(tmp_path: Path) -> None:
    home, policy_path = governed_ledger(tmp_path)
    policy = write_policy(tmp_path)
    assert _assess(home, "drift-monitoring").status == NOT_APPLICABLE
    approve(as_user(home, "rita"), "credit@1", policy)
    missing = _assess(home, "drift-monitoring")
    assert missing.status == MISSING
    assert missing.gaps == ("credit@1 was approved during the period but had no drift test in it",)
    frame = pd.DataFrame({"income": [float(i) for i in range(60)]})
    _recorded(home, "ana", lambda: drift(frame, frame, model="credit@1", policy=policy))
    assert _assess(home, "drift-monitoring").status == EVIDENCED


def test_vendor_evidence_expired_then_renewed(tmp_path: Path) -> None:
    home, _ = governed_ledger(tmp_path)
    ana = as_user(home, "ana")
    assert _assess(home, "vendor-evidence").status == NOT_APPLICABLE
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF- soc 2")
    register_vendor(ana, "Acme", service="scores", certifications=["SOC 2 Type II:2020-06-30"], evidence=report)
    assert _assess(home, "vendor-evidence").status == NOT_APPLICABLE  # registered, used by no model
    link_vendor(ana, "Acme", "credit")
    expired = _assess(home, "vendor-evidence")
    assert expired.status == MISSING
    assert expired.gaps == ("vendor Acme (used by credit): attestation expired (SOC 2 Type II period ended "
                            "2020-06-30; accepted for 365 days after the period end)",)
    this_year = dt.datetime.now(dt.UTC).date().replace(month=1, day=31).isoformat()
    register_vendor(ana, "Acme", service="scores", certifications=[f"SOC 2 Type II:{this_year}"], evidence=report)
    renewed = _assess(home, "vendor-evidence")
    assert renewed.status == EVIDENCED and renewed.gaps == ()


def test_data_access_missing_until_classified_and_violations_are_named(tmp_path: Path) -> None:
    home, _ = governed_ledger(tmp_path)
    data = tmp_path / "loans.csv"
    missing = _assess(home, "data-access")
    assert missing.status == MISSING and "no dataset was classified" in missing.gaps[0]
    grant_role(as_user(home, "ines"), "dana", "data_steward")
    classify(as_user(home, "dana"), data, "restricted")
    assert _assess(home, "data-access").status == EVIDENCED  # classified; nobody read it since
    grant_access(as_user(home, "dana"), "ana", data)
    _read(home, "ana", data, "s-ana")
    assert _assess(home, "data-access").status == EVIDENCED
    _read(home, "eve", data, "s-eve")
    violated = _assess(home, "data-access")
    assert violated.status == PARTIAL
    assert violated.gaps[0].startswith(f"eve read restricted data {data} without a recorded grant")


def test_a_forged_approval_signature_is_a_gap(tmp_path: Path) -> None:
    home, _ = governed_ledger(tmp_path)
    as_user(home, "mallory").append(events.ApprovalGranted(
        model="credit", version=1, role="approver", statement={"decision": "approve"}, key_id="00" * 32,
        signature="AAAA", approvals=1, required=1, policy_sha256=None))
    found = _assess(home, "approvals")
    assert found.status == MISSING
    assert found.gaps[0].startswith("the approval of credit@1 by mallory (seq ")
    assert "no valid signature: key 000000000000 was not registered by mallory before it" in found.gaps[0]
    seq = int(Ledger(home).query("SELECT seq FROM approvals WHERE reviewer = 'mallory'")["seq"].iloc[0])
    documented = _assess(home, "model-documentation")  # and it points at no check that passed
    assert f"the approval of credit@1 (seq {seq}) rests on no passing policy check in the period" in documented.gaps


def test_documentation_needs_an_evaluation_and_a_check(tmp_path: Path) -> None:
    home, _ = governed_ledger(tmp_path)
    policy = write_policy(tmp_path)
    as_user(home, "ana").append(events.ModelFitted(
        node="model:scorer@1", model="scorer", version=1, estimator="sklearn.tree.DecisionTreeClassifier",
        params={}, inputs=[]))
    found = _assess(home, "model-documentation")
    assert found.status == MISSING
    assert found.gaps == ("credit@1 was not policy-checked in the period", "scorer@1 has no recorded training data",
                          "scorer@1 has no recorded evaluation (metrics) in the period",
                          "scorer@1 was not policy-checked in the period")
    from nbgov.governance.checks import check_model

    check_model(as_user(home, "rita"), "credit@1", policy)
    checked = _assess(home, "model-documentation")
    assert checked.status == PARTIAL and not any(g.startswith("credit@1") for g in checked.gaps)


def test_risk_register_follows_the_tier(tmp_path: Path) -> None:
    home, _ = governed_ledger(tmp_path)
    ana = as_user(home, "ana")
    untiered = _assess(home, "risk-register")
    assert untiered.status == MISSING and untiered.gaps[0].startswith("credit: no risk tier assessed")
    set_tier(ana, "credit", "medium")
    assert _assess(home, "risk-register").gaps == (
        "credit: risk register lacks bias, drift (required for medium-risk models)",)
    for category in ("bias", "drift"):
        record_risk(ana, "credit", category=category, description=f"{category} risk", likelihood="low",
                    impact="medium", treatment="mitigate", owner="ana", next_review="2099-01-01")
    assert _assess(home, "risk-register").status == EVIDENCED


def test_periodic_reviews_are_missing_until_the_due_runs_are_recorded(tmp_path: Path) -> None:
    home, _ = governed_ledger(tmp_path)
    start, end = _recent()
    notebook = review_notebook(tmp_path / "review.ipynb", "print(1)")
    add_schedule(as_user(home, "ines"), notebook, cron="0 6 * * *", job="daily", grace=600,
                 now=dt.datetime.combine(start, dt.time(), dt.UTC))
    now = dt.datetime.combine(end, dt.time(), dt.UTC)  # due on the first two days of the period

    def reviews() -> Any:
        ledger = Ledger(home)
        tables = evidence_tables(ledger, start, end)
        return assess_controls(ledger, start, end, tables, _verified(ledger), now=now).assessment("periodic-reviews")

    missing = reviews()
    assert missing.status == MISSING
    assert missing.gaps == (f"review job daily was due 2 times in the period with no run or missed run recorded "
                            f"(first due {start.isoformat()} 06:00 UTC)",)
    for day in (start, start + dt.timedelta(days=1)):
        _run(home, notebook, "daily", dt.datetime.combine(day, dt.time(6), dt.UTC), "succeeded")
    done = reviews()
    assert done.status == EVIDENCED and done.gaps == ()
    assert done.evidence[0].text == "review job daily: 2 of 2 runs succeeded"


def test_the_checkpoint_must_cover_the_events_the_tables_saw(tmp_path: Path) -> None:
    home, _ = governed_ledger(tmp_path)
    ledger = Ledger(home)
    start, end = _recent()
    tables = evidence_tables(ledger, start, end)
    last = max(r["last_seq"] for r in next(t for t in tables if t.name == "event_counts").records())
    size = ledger.merkle_root()[0]
    as_user(home, "ana").append(events.SessionEnded(reason="later work"))  # after the tables were made
    ledger.ingest()
    report = ledger.verify()

    def trail(checkpoint_size: int) -> Any:
        summary = VerificationSummary.from_report(report, "id", checkpoint_size=checkpoint_size,
                                                  checkpoint_origin="origin")
        return assess_controls(ledger, start, end, tables, summary).assessment("audit-trail")

    assert size >= last and trail(size).status == EVIDENCED
    short = trail(last - 1)
    assert short.status == PARTIAL
    assert short.gaps == (f"the signed checkpoint ({last - 1} events) does not cover the period's events after "
                          f"seq {last - 1} (the last is seq {last})",)


def test_the_audit_trail_reflects_verification_and_checkpoint(tmp_path: Path) -> None:
    home, _ = governed_ledger(tmp_path)
    assert _assess(home, "audit-trail").status == EVIDENCED
    unsigned = _assess(home, "audit-trail", checkpoint=False)
    assert unsigned.status == PARTIAL and unsigned.gaps == ("no signed checkpoint of the ledger was given for "
                                                            "the period",)
    ledger = Ledger(home)
    start, end = _recent()
    broken = VerificationSummary("x", False, 10, 10, "seq 4: leaf mismatch: the leaf hash does not match")
    report = assess_controls(ledger, start, end, evidence_tables(ledger, start, end), broken)
    trail = report.assessment("audit-trail")
    assert trail.status == MISSING
    assert "the ledger failed verification: seq 4: leaf mismatch" in trail.gaps[0]


# -- the page -----------------------------------------------------------------------------------------

MODEL_PAGES = [("credit@1", "models/credit@1.html"), ("credit@2", "models/credit@2.html")]


def _files(tables: list[EvidenceTable]) -> dict[str, list[tuple[str, str]]]:
    return {t.name: [("Parquet", f"tables/{t.name}.parquet"), ("SQL", f"tables/{t.name}.sql")] for t in tables}


def _page(world: dict[str, Any], assessed: ControlReport) -> str:
    return render_report(assessed, world["tables"], model_pages=MODEL_PAGES, table_files=_files(world["tables"]),
                         generated_at=NOW, title="Credit models: February 2026")


class _Tags(HTMLParser):
    """Every start tag with its attributes (HTML's own parser, as browsers read it)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_the_page_is_well_formed_standalone_and_complete(world: dict[str, Any], assessed: ControlReport) -> None:
    page = _page(world, assessed)
    root = ET.fromstring(page.split("\n", 1)[1])  # well-formed: it parses as XML (after the doctype)
    assert root.tag == "html"
    parser = _Tags()
    parser.feed(page)
    tags = {tag for tag, _ in parser.tags}
    assert not tags & {"script", "iframe", "object", "embed", "link", "img", "base", "form"}
    for _, attrs in parser.tags:
        assert not any(name.startswith("on") for name in attrs)
        for name in ("href", "src", "xlink:href", "action"):
            value = attrs.get(name)
            if value is not None:
                assert not re.match(r"^[a-z][a-z0-9+.-]*:|^//", value, re.I), value
    assert "url(" not in page and "@import" not in page
    ids = {attrs["id"] for _, attrs in parser.tags if attrs.get("id")}
    for _, attrs in parser.tags:  # every internal link lands somewhere
        href = attrs.get("href") or ""
        if href.startswith("#"):
            assert href[1:] in ids, href
    text = "".join(root.itertext())
    for criterion in CRITERIA:
        assert criterion.id in text and f"criterion-{criterion.id}" in ids
    for control in CONTROLS:
        assert f"control-{control.id}" in ids
    for table in world["tables"]:
        assert f"table-{table.name}" in ids
        assert f'href="tables/{table.name}.parquet"' in page and f'href="tables/{table.name}.sql"' in page
    assert 'href="models/credit@1.html"' in page
    assert "review job weekly-bias missed 2 runs" in text
    assert world["ledger"].query("SELECT value FROM ledger_meta WHERE key = 'ledger_id'")["value"].iloc[0] in text
    assert "2026-02-01 to 2026-02-28" in text
    svgs = root.findall(".//{http://www.w3.org/2000/svg}svg")
    labels = [svg.get("aria-label", "") for svg in svgs]
    assert any(label.startswith("Review runs by outcome") for label in labels)
    assert any(label.startswith("credit: demographic parity ratio") and "limit 0.8" in label for label in labels)
    assert any(label.startswith("credit: drift") for label in labels)
    assert any(label.startswith("Reviewers' decisions per model") for label in labels)


def test_the_review_chart_counts_runs_and_missed_runs_per_day(world: dict[str, Any], assessed: ControlReport) -> None:
    root = ET.fromstring(_page(world, assessed).split("\n", 1)[1])
    svg = next(s for s in root.iter("{http://www.w3.org/2000/svg}svg")
               if s.get("aria-label", "").startswith("Review runs by outcome"))
    bars = {(b.get("data-category"), b.get("data-series")): float(b.get("data-value", "0"))
            for b in svg.iter("{http://www.w3.org/2000/svg}rect") if "bar" in b.get("class", "").split()}
    assert bars == {("02 Feb", "succeeded"): 1.0, ("09 Feb", "failed"): 1.0, ("16 Feb", "missed"): 1.0,
                    ("23 Feb", "missed"): 1.0}


def test_hostile_names_are_escaped(tmp_path: Path) -> None:
    nasty = "<script>alert('x')</script>&\"q\""
    home, _ = governed_ledger(tmp_path)
    ana = as_user(home, "ana")
    ana.append(events.ModelFitted(node=f"model:{nasty}@1", model=nasty, version=1, estimator=nasty, params={},
                                  inputs=[]))
    ana.append(events.DatasetDeclared(path=nasty, fingerprint=None, algorithm=None, node=f"dataset:path:{nasty}",
                                      source=nasty, license=None, owner=None))
    report = tmp_path / "r.pdf"
    report.write_bytes(b"%PDF")
    register_vendor(ana, nasty, service=nasty, certifications=[f"{nasty}:2020-01-01"], evidence=report)
    link_vendor(ana, nasty, nasty)
    start, end = _recent()
    ledger = Ledger(home)
    tables = evidence_tables(ledger, start, end)
    assessed = assess_controls(ledger, start, end, tables, _verified(ledger))
    assert any(nasty in gap for gap in assessed.assessment("vendor-evidence").gaps)
    page = render_report(assessed, tables, model_pages=[(nasty, "models/x.html")], title=nasty)
    assert "<script" not in page and nasty not in page
    root = ET.fromstring(page.split("\n", 1)[1])
    text = "".join(root.itertext())
    assert text.count(nasty) >= 3  # the title, the model link, the vendor gap: shown as text
    for bad in ("javascript:alert(1)", "https://evil.example/x", "/etc/passwd", "//evil.example"):
        with pytest.raises(EvidenceError, match="not a relative path"):
            render_report(assessed, tables, model_pages=[("m", bad)])
        with pytest.raises(EvidenceError, match="not a relative path"):
            render_report(assessed, tables, table_files={"models": [("Parquet", bad)]})


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_the_report_renders_in_chromium_without_sideways_scrolling(world: dict[str, Any],
                                                                    assessed: ControlReport) -> None:
    from support.browser import artifacts_dir, chromium_page, fits_sideways, require_browser, screenshot

    require_browser()
    path = world["tmp"] / "bundle" / "report.html"
    path.parent.mkdir(exist_ok=True)
    path.write_text(_page(world, assessed), encoding="utf-8")
    artifacts = artifacts_dir()
    with chromium_page(artifacts, world["tmp"] / "browser") as browser:
        page = browser.page
        page.goto(path.as_uri())
        assert page.title() == "Credit models: February 2026: 2026-02-01 to 2026-02-28"
        assert page.locator("table.matrix tbody tr").count() == len(CRITERIA)
        assert page.locator("article.control").count() == len(CONTROLS)
        assert page.locator(".chart svg").count() >= 4
        assert fits_sideways(page, "html") and fits_sideways(page, "body")
        for selector in ("table.matrix", ".charts", "#tables"):
            box = page.locator(selector).first.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 1280, selector
        # nothing inside the page sticks out of the page's width either
        widest = page.evaluate("() => Math.max(...[...document.querySelectorAll('main *')]"
                               ".map(e => e.getBoundingClientRect().right))")
        assert widest <= 1280
        assert screenshot(page, artifacts, "evidence-report").stat().st_size > 0
        page.emulate_media(media="print")
        page.set_viewport_size({"width": 1050, "height": 740})  # A4 landscape less margins, at 96 dpi
        assert fits_sideways(page, "html")
        assert screenshot(page, artifacts, "evidence-report-print").stat().st_size > 0
    assert browser.unexpected_errors() == []
