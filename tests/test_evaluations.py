"""Bias and drift tests as recorded evidence: attribution, fingerprints, policy judgement, magics,
and a failed check failing a papermill run."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from IPython.utils.capture import capture_output
from nbformat.v4 import new_code_cell, new_notebook

from nbgov.api import drift, fairness
from nbgov.capture.recorder import Recorder, activate, deactivate
from nbgov.errors import EvaluationError
from nbgov.fingerprint import fingerprint_object
from nbgov.ledger.facade import Ledger
from nbgov.reviews.execution import execute_notebook
from support.helpers import TEST_POLICY, as_user, bias_test, train_version, write_policy


@pytest.fixture
def trained(tmp_path: Path, home: Path):  # type: ignore[no-untyped-def]
    Ledger.init(home)
    data = tmp_path / "loans.csv"
    data.write_text("income,default\n1,0\n2,1\n")
    return home, train_version(home, data), write_policy(tmp_path)


def test_a_biased_model_is_recorded_with_the_known_answers(trained) -> None:  # type: ignore[no-untyped-def]
    home, ref, policy = trained
    result = bias_test(home, ref, gap=True, policy=policy)  # 60/100 vs 40/100 selected
    assert result.verdict == "fail" and (result.model, result.version) == ("credit", 1)
    assert [f["rule"] for f in result.failures] == [
        "fairness.min_demographic_parity_ratio", "fairness.max_demographic_parity_difference"]
    row = Ledger(home).query("SELECT * FROM fairness_results").iloc[0]
    assert row["demographic_parity_difference"] == pytest.approx(0.2, abs=1e-12)
    assert row["demographic_parity_ratio"] == pytest.approx(2 / 3, abs=1e-12)
    assert row["min_p_value"] == pytest.approx(0.0047, abs=1e-4)
    assert bool(row["four_fifths_violated"]) and row["significant_gaps"] == 1
    assert (row["model"], row["version"], row["verdict"]) == ("credit", 1, "fail")
    assert row["policy_sha256"] == policy.sha256
    data = json.loads(row["data"])
    race = pd.Series(["a"] * 100 + ["b"] * 100, name="race")
    assert data["sensitive"] == {"race": fingerprint_object(race).digest}
    assert data["y_true"] == fingerprint_object([1, 0] * 100).digest
    groups = Ledger(home).query("SELECT \"group\", n, selection_rate FROM fairness_groups ORDER BY \"group\"")
    assert list(groups.itertuples(index=False, name=None)) == [("a", 100, 0.6), ("b", 100, 0.4)]
    findings = Ledger(home).query("SELECT origin, code FROM findings ORDER BY code")
    assert list(findings.itertuples(index=False, name=None)) == [
        ("fairness", "fairness.max_demographic_parity_difference"),
        ("fairness", "fairness.min_demographic_parity_ratio")]
    lineage = Ledger(home).query("SELECT src FROM lineage_edges WHERE kind = 'fairness_evaluated'")
    assert "model:credit@1" in set(lineage["src"])


def test_policy_options_change_the_judgement(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home, ref, _ = trained
    lenient = write_policy(tmp_path, TEST_POLICY.replace(
        "max_equalized_odds_difference = 0.2", "max_equalized_odds_difference = 0.2\nsignificant_only = true"))
    # a 0.2 gap on 10 + 10 rows is not significant: not counted under significant_only
    recorder = Recorder(as_user(home, "ana"), flush_interval=0)
    activate(recorder)
    try:
        small = fairness([1, 0] * 10, [1] * 6 + [0] * 4 + [1] * 4 + [0] * 6,
                         pd.Series(["a"] * 10 + ["b"] * 10, name="race"), model=ref, min_group_size=5,
                         policy=lenient)
        uncovered = fairness([1, 0] * 50, [1, 0] * 50, pd.Series(["x", "y"] * 50, name="sex"), model=ref,
                             policy=lenient)
        unjudged = fairness([1, 0] * 50, [1, 0] * 50, pd.Series(["x", "y"] * 50, name="race"), model=ref,
                            policy=None)
    finally:
        deactivate(recorder)
    assert small.verdict == "pass" and small.report.attributes[0].comparisons[0].significant is False
    assert uncovered.verdict == "fail"
    assert uncovered.failures[0]["rule"] == "fairness.sensitive_features"
    assert unjudged.verdict == "unjudged" and unjudged.policy_sha256 is None  # no policy in the work dir


def test_drift_is_recorded_with_its_method_and_threshold_source(trained) -> None:  # type: ignore[no-untyped-def]
    home, ref, policy = trained
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"income": rng.normal(0, 1, 1000), "region": rng.choice(["n", "s"], 1000)})
    same = pd.DataFrame({"income": rng.normal(0, 1, 1000), "region": rng.choice(["n", "s"], 1000)})
    shifted = same.assign(income=rng.normal(0.5, 1, 1000))
    recorder = Recorder(as_user(home, "ana"), flush_interval=0)
    activate(recorder)
    try:
        calm = drift(reference, same, model=ref, policy=policy)
        moved = drift(reference, shifted, model=ref, policy=policy)
    finally:
        deactivate(recorder)
    recorder.ledger.ingest()
    assert calm.verdict == "pass" and moved.verdict == "fail"
    assert moved.drifted_features == ("income",)
    rows = Ledger(home).query(
        "SELECT feature, test, effect_size_name, threshold, threshold_source, decided_by, drifted, "
        "n_reference, n_current, verdict FROM drift_results WHERE event_id = $e ORDER BY feature",
        {"e": moved.event_id})
    assert list(rows.itertuples(index=False, name=None)) == [
        ("income", "ks_2samp", "wasserstein / reference std", 0.1, "policy", "effect size", True, 1000, 1000,
         "fail"),
        ("region", "chi2_contingency", "jensen-shannon distance", 0.1, "policy", "effect size", False, 1000,
         1000, "fail")]
    drift_findings = Ledger(home).query("SELECT subject FROM findings WHERE origin = 'drift'")
    assert list(drift_findings["subject"]) == ["income"]


def test_bad_input_is_one_line_and_records_nothing(trained) -> None:  # type: ignore[no-untyped-def]
    home, ref, policy = trained
    before = Ledger(home).query("SELECT count(*) AS n FROM events")["n"].iloc[0]
    recorder = Recorder(as_user(home, "ana"), flush_interval=0)
    activate(recorder)
    try:
        with pytest.raises(EvaluationError, match="fairness: ") as info:
            fairness([1, 0, 1], [1, 0], pd.Series(["a", "b", "a"], name="race"), model=ref, policy=policy)
        assert "\n" not in info.value.one_line()
        with pytest.raises(EvaluationError, match="drift: "):
            drift(pd.DataFrame({"a": [1.0]}), pd.DataFrame({"b": [1.0]}), features=["a"], policy=policy)
        with pytest.raises(EvaluationError, match="no model version matches 'ghost'"):
            fairness([1, 0], [1, 0], pd.Series(["a", "b"], name="race"), model="ghost", policy=policy)
    finally:
        deactivate(recorder)
    recorder.ledger.ingest()
    assert Ledger(home).query("SELECT count(*) AS n FROM events")["n"].iloc[0] == before


@pytest.fixture
def shell(make_shell, tmp_path: Path, home: Path):  # type: ignore[no-untyped-def]
    """The shared shell (conftest.py), acting as ana under the test policy."""
    write_policy(tmp_path)
    return make_shell(home=home, env={"NBGOV_ACTOR": "ana", "NBGOV_POLICY": str(tmp_path / "nbgov-policy.toml")})


def test_magics_attribute_judge_and_fail_closed(shell) -> None:  # type: ignore[no-untyped-def]
    setup = shell.run_cell(
        "import pandas as pd\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "X = pd.DataFrame({'x': [float(i % 7) for i in range(200)]})\n"
        "y = [int(i % 7 > 3) for i in range(200)]\n"
        "race = pd.Series(['a', 'b'] * 100, name='race')\n"
        "credit = LogisticRegression().fit(X, y)\n"
        "pred = credit.predict(X)\n")
    assert setup.success
    with capture_output() as shown:
        result = shell.run_cell("%nbgov fairness y pred --sensitive race -o bias")
    assert result.success, shown.stdout + shown.stderr
    bias = shell.user_ns["bias"]
    assert (bias.model, bias.version, bias.verdict) == ("credit", 1, "pass")  # found from `pred`
    assert "fairness test of credit@1: PASS" in repr(bias)
    with capture_output() as shown:
        failed = shell.run_cell("%nbgov check credit")
    text = shown.stdout + shown.stderr
    assert not failed.success  # no data lineage, no roc_auc: the check fails, so the cell raises
    assert "CheckFailed: credit@1 fails the policy check: 2 finding(s): no training data" in text
    assert "no roc_auc recorded for credit@1" in text
    assert "Traceback" not in text
    with capture_output() as shown:
        denied = shell.run_cell("%nbgov approve credit@1")
    assert not denied.success and "ApprovalRefused: approval of credit@1 by ana denied" in shown.stdout
    with capture_output() as shown:
        moved = shell.run_cell("%nbgov drift X 'X.assign(x=X.x + 3)' --model credit")
    assert moved.success and "drift test of credit@1: FAIL" in shown.stdout


def test_a_failed_check_fails_the_papermill_run(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home, ref, _ = trained
    bias_test(home, ref, gap=True)
    review = tmp_path / "review.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("%load_ext nbgov"), new_code_cell(f"%nbgov check {ref}"),
                                       new_code_cell("reached = True")],
                                metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                         "language": "python"}}), review)
    run = execute_notebook(review, home=home, cwd=tmp_path / "run",
                           environment={"NBGOV_POLICY": str(tmp_path / "nbgov-policy.toml")})
    assert not run.ok and run.error is not None and "CheckFailed" in run.error
    executed = nbformat.read(run.output, 4)
    assert executed.cells[2].get("execution_count") is None  # nothing after the failed check ran
    verdicts = Ledger(home).query("SELECT verdict, purpose FROM policy_evaluations")
    assert list(verdicts.itertuples(index=False, name=None)) == [("fail", "check")]
