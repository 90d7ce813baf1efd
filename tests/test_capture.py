"""Notebook capture in a real IPython shell: cells, datasets, training, evaluation, lineage."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import blake3
import numpy as np
import pandas as pd
import pytest

from nbgov.ledger.facade import Ledger


class Notebook:
    """An IPython shell with nbgov loaded, run cell by cell like a notebook."""

    def __init__(self, shell: Any, home: Path) -> None:
        self.home = home
        self.shell = shell
        self.count = 0

    def run(self, code: str, *, ok: bool = True) -> Any:
        self.count += 1
        result = self.shell.run_cell(code, store_history=True)
        if ok:
            assert result.success, (code, result.error_before_exec, result.error_in_exec)
        return result.result if ok else result

    def sql(self, query: str) -> pd.DataFrame:
        return Ledger(self.home).query(query)

    @property
    def ns(self) -> dict[str, Any]:
        return self.shell.user_ns


@pytest.fixture
def nb(make_shell, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The shared shell (conftest.py; unloaded after the test), nbgov loaded as the first cell."""
    home = tmp_path / "ledger"
    (tmp_path / "work" / "data").mkdir(parents=True, exist_ok=True)
    notebook = Notebook(make_shell(home=home, load=False), home)
    notebook.run("%load_ext nbgov")
    return notebook


def quiet() -> Any:
    """The test's own pandas calls are not the notebook's: keep them out of the ledger."""
    from contextlib import nullcontext

    from nbgov.capture.recorder import active

    recorder = active()
    return recorder.internal() if recorder is not None else nullcontext()


def _write_loans(path: Path, rows: int = 300) -> None:
    with quiet():
        _loans(rows).to_csv(path, index=False)


def _loans(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({
        "income": rng.normal(50, 10, rows).round(2),
        "debt": rng.normal(20, 5, rows).round(2),
        "group": rng.integers(0, 2, rows),
        "noise": rng.normal(size=rows),
    })
    frame["denied"] = (frame.debt / frame.income + rng.normal(0, 0.05, rows) > 0.4).astype(int)
    return frame


def test_session_and_cells_are_recorded(nb: Notebook) -> None:
    nb.run("x = 1")
    nb.run("y = x + 1")
    nb.run("1 / 0", ok=False)
    sessions = nb.sql("SELECT * FROM sessions")
    assert len(sessions) == 1
    session = sessions.iloc[0]
    assert session["python"].endswith(sys.version.split()[0])
    assert len(session["packages_sha256"]) == 64
    assert (nb.home / "artifacts" / f"packages-{session['packages_sha256']}.txt").exists()
    cells = nb.sql("SELECT * FROM cells ORDER BY seq")
    assert cells["source"].tolist() == ["x = 1", "y = x + 1", "1 / 0"]
    assert cells["ok"].tolist() == [True, True, False]
    assert cells["error_type"].tolist()[2] == "ZeroDivisionError"
    assert cells["source_sha256"][0] == hashlib.sha256(b"x = 1").hexdigest()
    assert cells["execution_count"].tolist() == [2, 3, 4]  # the %load_ext cell was 1
    assert list(cells["inputs"][1]) == [cells["node"][0]]  # y = x + 1 depends on x = 1
    assert (cells["duration_us"] >= 0).all()


def test_dataset_reads_and_writes_carry_true_fingerprints(nb: Notebook, tmp_path: Path) -> None:
    source = tmp_path / "work" / "data" / "loans.csv"
    _write_loans(source)
    nb.run("import pandas as pd")
    nb.run(f"loans = pd.read_csv({str(source)!r})")
    nb.run(f"loans.to_parquet({str(source.with_suffix('.parquet'))!r})")
    datasets = nb.sql("SELECT * FROM datasets ORDER BY seq")
    read = datasets[datasets.direction == "read"].iloc[0]
    assert read["path"] == str(source)
    assert read["fingerprint"] == blake3.blake3(source.read_bytes()).hexdigest()
    assert read["algorithm"] == "blake3" and read["coverage"] == "file"
    assert read["rows"] == 300 and read["size_bytes"] == source.stat().st_size
    assert read["via"] == "pandas.read_csv"
    written = datasets[datasets.direction == "write"].iloc[0]
    parquet = source.with_suffix(".parquet")
    assert written["fingerprint"] == blake3.blake3(parquet.read_bytes()).hexdigest()
    assert written["via"] == "pandas.DataFrame.to_parquet"


def test_training_lineage_reaches_the_source_file_across_cells(nb: Notebook, tmp_path: Path) -> None:
    source = tmp_path / "work" / "data" / "loans.csv"
    other = tmp_path / "work" / "data" / "unrelated.csv"
    _write_loans(source)
    _write_loans(other, rows=50)
    nb.run("import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
           "from sklearn.model_selection import train_test_split")
    nb.run(f"loans = pd.read_csv({str(source)!r})\nside = pd.read_csv({str(other)!r})")  # cell: read
    nb.run("clean = loans.dropna()\nclean['ratio'] = clean.debt / clean.income")            # cell: clean
    nb.run("X_train, X_test, y_train, y_test = train_test_split(\n"
           "    clean[['income', 'debt', 'ratio']], clean.denied, test_size=0.25, random_state=0)")
    nb.run("model = LogisticRegression(C=0.7, max_iter=500)\nmodel.fit(X_train, y_train)")  # fit
    model = nb.sql("SELECT * FROM models").iloc[0]
    assert (model["model"], model["version"]) == ("model", 1)
    assert model["estimator"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert model["n_samples"] == 225 and list(model["features"]) == ["income", "debt", "ratio"]

    fitted = nb.ns["model"]
    import json

    from nbgov.canonical import to_json_value
    assert json.loads(model["params"]) == to_json_value(fitted.get_params())

    upstream = nb.sql(f"SELECT * FROM lineage_upstream('{model['node']}')")
    assert "side" not in " ".join(upstream["node"])
    datasets = upstream[upstream.kind == "dataset"]["label"].tolist()
    assert datasets == [str(source)], "the unrelated file read in the same cell must not be upstream"
    variables = upstream[upstream.kind == "variable"]["node"].tolist()
    names = {node.rsplit(":", 1)[1] for node in variables}
    assert names == {"loans", "clean", "X_train", "y_train"}
    assert len({node.rsplit(":", 1)[0] for node in variables}) == 3  # read, clean, split cells
    training = json.loads(model["training_data"])
    from nbgov.fingerprint import fingerprint_object
    assert training["X"]["digest"] == fingerprint_object(nb.ns["X_train"]).digest
    assert training["y"]["digest"] == fingerprint_object(nb.ns["y_train"]).digest


def test_evaluation_and_predictions_are_attributed(nb: Notebook, tmp_path: Path) -> None:
    source = tmp_path / "work" / "data" / "loans.csv"
    _write_loans(source)
    nb.run("import pandas as pd\nimport nbgov\nfrom sklearn.ensemble import RandomForestClassifier\n"
           "from sklearn.metrics import accuracy_score, roc_auc_score, f1_score")
    nb.run(f"df = pd.read_csv({str(source)!r})\nX, y = df[['income', 'debt']], df.denied")
    nb.run("%%nbgov train --model credit\nclf = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)")
    nb.run("pred = clf.predict(X)\nacc = accuracy_score(y, pred)\n"
           "auc = roc_auc_score(y, clf.predict_proba(X)[:, 1])\nscore = clf.score(X, y)")
    nb.run("nbgov.log_metrics({'custom': 0.25}, model=clf, dataset=X)\n"
           "nbgov.log_params({'threshold': 0.5, 'api_key': 'sk-live-abcdefghijklmnopqrstuvwx'}, model='credit')")
    metrics = nb.sql("SELECT metric, value, model, version, via, dataset FROM metrics ORDER BY seq")
    got = dict(zip(metrics.metric, metrics.value))
    assert got["accuracy_score"] == pytest.approx(nb.ns["acc"])
    assert got["roc_auc_score"] == pytest.approx(nb.ns["auc"])
    assert got["score"] == pytest.approx(nb.ns["score"])
    assert got["custom"] == 0.25
    assert set(metrics.model) == {"credit"} and set(metrics.version) == {1}
    from nbgov.fingerprint import fingerprint_object
    assert set(metrics.dataset) == {fingerprint_object(nb.ns["X"]).digest}
    predictions = nb.sql("SELECT * FROM predictions ORDER BY seq")
    assert predictions["method"].tolist() == ["predict", "predict_proba"]
    assert predictions["rows"].tolist() == [300, 300]
    assert predictions["output_fingerprint"][0] == fingerprint_object(nb.ns["pred"]).digest
    params = nb.sql("SELECT params FROM params").iloc[0]["params"]
    assert '"threshold":0.5' in params and "sk-live" not in params and "[REDACTED]" in params


def test_model_named_by_the_variable_it_is_bound_to_and_versions_increase(nb: Notebook) -> None:
    nb.run("import numpy as np\nfrom sklearn.linear_model import Ridge\n"
           "X = np.arange(40.0).reshape(20, 2)\ny = X.sum(axis=1)")
    nb.run("reg = Ridge(alpha=1.0).fit(X, y)\nfirst = reg.predict(X)")  # bound after fit returns
    nb.run("reg = Ridge(alpha=2.0).fit(X, y)")
    models = nb.sql("SELECT model, version, name_source FROM models ORDER BY seq")
    assert models.values.tolist() == [["reg", 1, "variable"], ["reg", 2, "variable"]]
    assert nb.sql("SELECT count(*) AS n FROM predictions")["n"][0] == 1


def test_pipeline_records_one_model_not_its_steps(nb: Notebook) -> None:
    nb.run("import numpy as np\nfrom sklearn.pipeline import make_pipeline\n"
           "from sklearn.preprocessing import StandardScaler\nfrom sklearn.linear_model import LogisticRegression\n"
           "X = np.random.default_rng(0).normal(size=(60, 3))\ny = (X[:, 0] > 0).astype(int)")
    nb.run("pipe = make_pipeline(StandardScaler(), LogisticRegression())\npipe.fit(X, y)")
    models = nb.sql("SELECT model, estimator FROM models")
    assert models.values.tolist() == [["pipe", "sklearn.pipeline.Pipeline"]]


def test_estimators_defined_later_are_captured(nb: Notebook) -> None:
    nb.run("import numpy as np\nfrom sklearn.base import BaseEstimator, RegressorMixin\n"
           "class Mean(BaseEstimator, RegressorMixin):\n"
           "    def fit(self, X, y):\n        self.mean_ = float(np.mean(y))\n        return self\n"
           "    def predict(self, X):\n        return np.full(len(X), self.mean_)\n"
           "m = Mean().fit(np.zeros((5, 1)), np.arange(5))")
    assert nb.sql("SELECT model, estimator FROM models").values.tolist() == [["m", "__main__.Mean"]]


def test_duckdb_pyarrow_and_polars_reads(nb: Notebook, tmp_path: Path) -> None:
    source = tmp_path / "work" / "data" / "loans.csv"
    _write_loans(source)
    pq = source.with_suffix(".parquet")
    with quiet():
        pd.read_csv(source).to_parquet(pq)
    digest = blake3.blake3(source.read_bytes()).hexdigest()
    nb.run(f"import duckdb\nrel = duckdb.sql(\"SELECT count(*) FROM '{source}'\").fetchall()")
    nb.run(f"import pyarrow.parquet as pq\ntable = pq.read_table({str(pq)!r})")
    nb.run(f"con = duckdb.connect()\nframe = con.read_parquet({str(pq)!r}).df()")
    polars = pytest.importorskip("polars")
    nb.run(f"import polars as pl\nlazy = pl.read_csv({str(source)!r})")
    reads = nb.sql("SELECT via, path, fingerprint FROM datasets WHERE direction = 'read' ORDER BY seq")
    assert reads["via"].tolist() == ["duckdb.sql", "pyarrow.parquet.read_table",
                                     "duckdb.DuckDBPyConnection.read_parquet", "polars.read_csv"]
    assert reads["fingerprint"][0] == digest and reads["fingerprint"][3] == digest
    assert polars is not None


def test_declared_provenance(nb: Notebook, tmp_path: Path) -> None:
    source = tmp_path / "work" / "data" / "loans.csv"
    _write_loans(source)
    nb.run(f'%nbgov dataset {source} --source "FFIEC HMDA" --license public --owner risk --contains-pii group,income')
    declared = nb.sql("SELECT * FROM dataset_declarations").iloc[0]
    assert (declared["source"], declared["license"], declared["owner"]) == ("FFIEC HMDA", "public", "risk")
    assert list(declared["contains_pii"]) == ["group", "income"]
    assert declared["fingerprint"] == blake3.blake3(source.read_bytes()).hexdigest()


def test_unload_removes_every_hook_and_patch(make_shell, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import pandas
    import sklearn.base
    import sklearn.metrics
    from sklearn.linear_model import LogisticRegression

    before = {
        "read_csv": pandas.read_csv, "to_csv": pandas.DataFrame.to_csv,
        "fit": vars(LogisticRegression)["fit"], "accuracy": sklearn.metrics.accuracy_score,
        "init_subclass": vars(sklearn.base.BaseEstimator).get("__init_subclass__"),
        "meta_path": list(sys.meta_path),
    }
    shell = make_shell(home=tmp_path / "ledger", load=False)
    shell.user_ns["my_accuracy"] = sklearn.metrics.accuracy_score
    pre, post, transformers = (len(shell.events.callbacks["pre_run_cell"]),
                               len(shell.events.callbacks["post_run_cell"]), len(shell.ast_transformers))
    for _ in range(2):  # loading twice is the same as once
        assert shell.run_cell("%load_ext nbgov").success
    assert pandas.read_csv is not before["read_csv"]
    assert shell.user_ns["my_accuracy"] is not before["accuracy"]  # rebound to the wrapper
    assert len(shell.events.callbacks["pre_run_cell"]) == pre + 1
    assert shell.run_cell("%unload_ext nbgov").success
    assert pandas.read_csv is before["read_csv"] and pandas.DataFrame.to_csv is before["to_csv"]
    assert vars(LogisticRegression)["fit"] is before["fit"]
    assert sklearn.metrics.accuracy_score is before["accuracy"]
    assert shell.user_ns["my_accuracy"] is before["accuracy"]
    assert vars(sklearn.base.BaseEstimator).get("__init_subclass__") is before["init_subclass"]
    assert sys.meta_path == before["meta_path"]
    assert len(shell.events.callbacks["pre_run_cell"]) == pre
    assert len(shell.events.callbacks["post_run_cell"]) == post
    assert len(shell.ast_transformers) == transformers
    assert "nbgov" not in shell.magics_manager.magics["line"]
    assert "nbgov_sql" not in shell.magics_manager.magics["cell"]
    ended = Ledger(tmp_path / "ledger").query("SELECT end_reason FROM sessions")
    assert ended["end_reason"].tolist() == ["unload"]


def test_a_failing_capture_hook_never_breaks_the_cell(nb: Notebook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbgov import NbgovWarning
    from nbgov.fingerprint import FileFingerprinter

    def broken(self: Any, path: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(FileFingerprinter, "fingerprint", broken)
    source = tmp_path / "work" / "data" / "loans.csv"
    _write_loans(source)
    nb.run("import pandas as pd")
    with pytest.warns(NbgovWarning, match="disk on fire"):
        frame = nb.run(f"pd.read_csv({str(source)!r})")
    assert len(frame) == 300
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")
        nb.run(f"again = pd.read_csv({str(source)!r})")  # warned once only
    failures = nb.sql("SELECT hook, error_type, message FROM capture_failures")
    assert failures.values.tolist() == [["pandas.read_csv", "RuntimeError", "disk on fire"]] * 2


def test_lightgbm_sklearn_api_is_captured(nb: Notebook) -> None:
    pytest.importorskip("lightgbm")
    nb.run("import numpy as np, lightgbm as lgb\nX = np.random.default_rng(0).normal(size=(200, 4))\n"
           "y = (X[:, 0] > 0).astype(int)")
    nb.run("booster = lgb.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, y)\np = booster.predict(X)")
    model = nb.sql("SELECT model, estimator, params FROM models").iloc[0]
    assert (model["model"], model["estimator"]) == ("booster", "lightgbm.sklearn.LGBMClassifier")
    assert '"n_estimators":10' in model["params"]
    assert nb.sql("SELECT rows FROM predictions")["rows"].tolist() == [200]


def test_nbgov_prints_no_library_warning_of_its_own_into_the_notebook(
        shell, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import warnings

    from IPython.utils.capture import capture_output

    import nbgov.capture.recorder as recorder_module

    fingerprint = recorder_module.fingerprint_object

    def noisy(value: object):  # type: ignore[no-untyped-def]
        # What numpy does when nbgov fingerprints some arrays: a library warning inside capture.
        warnings.warn("a library warning raised while nbgov fingerprints", UserWarning, stacklevel=2)
        return fingerprint(value)

    monkeypatch.setattr(recorder_module, "fingerprint_object", noisy)
    with capture_output() as shown, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ran = shell.run_cell("from sklearn.linear_model import LogisticRegression\n"
                             "X = [[0.0], [1.0], [2.0], [3.0]]; y = [0, 0, 1, 1]\n"
                             "model = LogisticRegression().fit(X, y)\n"
                             "predicted = model.predict(X)")
    assert ran.success
    assert [str(w.message) for w in caught if "nbgov fingerprints" in str(w.message)] == []
    assert "nbgov fingerprints" not in shown.stdout + shown.stderr
    # the user's own warnings still show
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shell.run_cell("import warnings; warnings.warn('the user warns', UserWarning)")
    assert any("the user warns" in str(w.message) for w in caught)
