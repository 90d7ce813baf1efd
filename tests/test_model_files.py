"""Saved and loaded models: the same version after a save and a load, an unrecorded model when a
file matches nothing recorded, and a finding for every model such a model feeds."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
import skops.io as sio
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nbgov.fingerprint.models import model_fingerprint
from nbgov.governance.checks import check_model
from nbgov.governance.policy import load_policy
from nbgov.ledger import Ledger

X = np.random.default_rng(0).random((120, 3))
Y = (X[:, 0] > 0.5).astype(int)


@pytest.mark.parametrize("model", [
    LogisticRegression().fit(X, Y),
    make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=5, random_state=0)).fit(X, Y),
], ids=["logistic", "pipeline"])
def test_the_model_fingerprint_survives_every_save_and_load(model) -> None:  # type: ignore[no-untyped-def]
    digest = model_fingerprint(model)
    assert digest is not None
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    assert model_fingerprint(joblib.load(buffer)) == digest
    assert model_fingerprint(pickle.loads(pickle.dumps(model, protocol=2))) == digest
    data = sio.dumps(model)
    assert model_fingerprint(sio.loads(data, trusted=sio.get_untrusted_types(data=data))) == digest


def test_different_learned_state_gives_a_different_fingerprint() -> None:
    one = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y)
    other = RandomForestClassifier(n_estimators=5, random_state=1).fit(X, Y)
    assert model_fingerprint(one) != model_fingerprint(other)
    assert model_fingerprint(LogisticRegression(C=0.1).fit(X, Y)) != model_fingerprint(
        LogisticRegression(C=1.0).fit(X, Y))


def test_save_then_load_in_another_session_is_the_same_version(make_shell, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    setup = ("import joblib, numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
             "X = np.random.default_rng(0).random((120, 3)); y = (X[:, 0] > 0.5).astype(int)\n")
    first = make_shell(raise_errors=True)
    first.run_cell(setup)
    first.run_cell("clf = LogisticRegression(C=0.5).fit(X, y)")
    first.run_cell(f"joblib.dump(clf, {str(tmp_path / 'clf.joblib')!r})")
    first.run_cell("%unload_ext nbgov")
    second = make_shell(raise_errors=True)
    second.run_cell(setup)
    second.run_cell(f"champion = joblib.load({str(tmp_path / 'clf.joblib')!r})")
    second.run_cell("from sklearn.metrics import accuracy_score\n"
                    "score = accuracy_score(y, champion.predict(X))")
    second.run_cell("%unload_ext nbgov")
    ledger = Ledger(tmp_path / "ledger")
    files = ledger.rows("SELECT direction, model, version, matched_by, file_sha256 FROM model_files ORDER BY seq")
    assert [(f["direction"], f["model"], f["version"]) for f in files] == [("saved", "clf", 1), ("loaded", "clf", 1)]
    assert files[0]["file_sha256"] == files[1]["file_sha256"] and files[1]["matched_by"] == "file"
    assert ledger.rows("SELECT model, version, metric FROM metrics") == [
        {"model": "clf", "version": 1, "metric": "accuracy_score"}]
    assert ledger.rows("SELECT model, version FROM models") == [{"model": "clf", "version": 1}]
    assert ledger.rows("SELECT * FROM unrecorded_models") == []


def test_a_model_from_an_unrecorded_file_is_a_finding_of_what_it_feeds(make_shell, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    legacy = tmp_path / "legacy.pkl"
    subprocess.run([sys.executable, "-c",
                    "import pickle, numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
                    "X = np.random.default_rng(1).random((50, 3)); y = (X[:, 1] > 0.5).astype(int)\n"
                    f"pickle.dump(LogisticRegression().fit(X, y), open({str(legacy)!r}, 'wb'))"], check=True)
    shell = make_shell(raise_errors=True)
    shell.run_cell("import pickle, numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
                   "X = np.random.default_rng(0).random((120, 3)); y = (X[:, 0] > 0.5).astype(int)")
    shell.run_cell(f"with open({str(legacy)!r}, 'rb') as fh:\n    legacy = pickle.load(fh)")
    shell.run_cell("X2 = np.column_stack([X, legacy.predict_proba(X)[:, 1]])")
    shell.run_cell("stacked = LogisticRegression().fit(X2, y)")
    shell.run_cell("%unload_ext nbgov")
    ledger = Ledger(tmp_path / "ledger")
    unrecorded = ledger.rows("SELECT path, node FROM unrecorded_models")
    assert [u["path"] for u in unrecorded] == [str(legacy)]
    upstream = {r["node"] for r in ledger.rows("SELECT node FROM lineage_upstream('model:stacked@1')")}
    assert unrecorded[0]["node"] in upstream
    policy = tmp_path / "nbgov-policy.toml"
    policy.write_text("[fairness]\nrequired = false\n")
    report = check_model(ledger, "stacked@1", load_policy(policy), record=False)
    (finding,) = [f for f in report.findings if f.code == "unrecorded_model"]
    assert finding.status == "fail" and str(legacy) in finding.message
    assert ledger.rows("SELECT code, subject FROM findings WHERE code = 'unrecorded_model'") == [
        {"code": "unrecorded_model", "subject": str(legacy)}]
    # the evidence of the period lists it for the auditor
    import datetime as dt

    from nbgov.evidence.tables import evidence_tables

    today = dt.datetime.now(dt.UTC).date()
    tables = {t.name: t for t in evidence_tables(ledger, today - dt.timedelta(days=1), today + dt.timedelta(days=1))}
    assert [row["path"] for row in tables["unrecorded_models"].records()] == [str(legacy)]
