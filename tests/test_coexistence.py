"""SQL clients reading the ledger never slow or lose capture (issue: coexistence with readers).

The whole picture, with real processes: four papermill notebooks fitting models at once, a
review run and an ``nbgov sql`` loop, while jupysql and a plain read-only ``duckdb`` client hold
the ledger open from start to end and a third process makes 500 short read-only connects. The
same notebooks run first with no client at all: each cell's duration there is the baseline.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from nbgov.ledger.facade import Ledger
from support.helpers import WORKERS, clean_env, progress, review_notebook, run_cli, wait_for

NOTEBOOKS = 4
FITS = 6
SHORT_CONNECTS = 500


def _notebook(folder: Path, index: int) -> Path:
    data = folder / f"data_{index}.csv"
    data.write_text("x,y\n" + "".join(f"{(i * (index + 3)) % 17},{i % 2}\n" for i in range(80)))
    cells = ["%load_ext nbgov",
             f"import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
             f"frame = pd.read_csv({str(data)!r})\nX, y = frame[['x']], frame['y']"]
    cells += [f"clf = LogisticRegression(C={step + 1}).fit(X, y)\nscore = clf.score(X, y)" for step in range(FITS)]
    path = folder / f"train_{index}.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}), path)
    return path


def _run_all(folder: Path, home: Path) -> None:
    """The four notebooks at once, and a review run beside them; all must succeed."""
    folder.mkdir(parents=True, exist_ok=True)
    notebooks = [_notebook(folder, i) for i in range(NOTEBOOKS)]
    review = review_notebook(folder / "review.ipynb", "%load_ext nbgov", "y = x * 2", "print(label, y)")
    env = clean_env(NBGOV_HOME=str(home))
    runs = [subprocess.Popen(
        [sys.executable, "-m", "papermill", str(nb), str(folder / f"out_{nb.name}"), "-k", "python3",
         "--no-progress-bar"], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**env, "NBGOV_NOTEBOOK": str(nb)}) for nb in notebooks]
    runs.append(subprocess.Popen(
        [sys.executable, "-m", "nbgov", "--home", str(home), "review", "run", str(review), "-p", "x", "5"],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    for run in runs:
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0, err


def _cell_durations(home: Path) -> dict[tuple[str, int], float]:
    rows = Ledger(home).rows("SELECT notebook, execution_count, duration_us FROM cells "
                             "WHERE notebook LIKE '%train_%'")
    return {(Path(r["notebook"]).name, r["execution_count"]): r["duration_us"] / 1e6 for r in rows}


def _check_recorded(home: Path) -> None:
    ledger = Ledger(home)
    cells = ledger.rows("SELECT notebook, count(*) AS n FROM cells WHERE notebook LIKE '%train_%' "
                        "GROUP BY notebook")
    assert sorted(r["n"] for r in cells) == [FITS + 2] * NOTEBOOKS
    fits = ledger.rows("SELECT count(*) AS n FROM models WHERE model = 'clf'")
    assert fits[0]["n"] == NOTEBOOKS * FITS
    ended = ledger.rows("SELECT count(*) AS n FROM events WHERE type = 'session_ended'")
    started = ledger.rows("SELECT count(*) AS n FROM events WHERE type = 'session_started'")
    assert ended[0]["n"] == started[0]["n"] >= NOTEBOOKS + 1  # the notebooks' and the review's kernel
    reviews = ledger.rows("SELECT status FROM review_runs")
    assert [r["status"] for r in reviews] == ["succeeded"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_clients_holding_the_ledger_never_slow_or_lose_capture(tmp_path: Path) -> None:
    quiet_home = tmp_path / "quiet" / "ledger"
    Ledger.init(quiet_home).close()
    _run_all(tmp_path / "quiet", quiet_home)
    assert run_cli("--home", str(quiet_home), "ingest").returncode == 0
    _check_recorded(quiet_home)
    baseline = _cell_durations(quiet_home)

    home = tmp_path / "busy" / "ledger"
    Ledger.init(home).close()
    stop = tmp_path / "stop"
    env = clean_env()
    client = subprocess.Popen([sys.executable, str(WORKERS / "read_client.py"), str(home), str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert client.stdout is not None and client.stdout.readline().strip() == "ready", client.stderr
    reader = subprocess.Popen([sys.executable, str(WORKERS / "reader.py"), str(home), str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    connects = subprocess.Popen([sys.executable, str(WORKERS / "short_connects.py"), str(home),
                                 str(SHORT_CONNECTS), "0.02"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_for(lambda: Path(f"{stop}.ready-{reader.pid}").exists(), "the nbgov sql loop is up",
                 processes=[reader, client])
        _run_all(tmp_path / "busy", home)
        queries_during = progress(Path(f"{stop}.queries-{reader.pid}"))
        connect_out, connect_err = connects.communicate(timeout=600)
        assert run_cli("--home", str(home), "ingest").returncode == 0
    finally:
        stop.touch()
    client_out, client_err = client.communicate(timeout=120)
    reader_out, reader_err = reader.communicate(timeout=120)

    assert reader.returncode == 0, reader_err
    assert queries_during > 0
    assert client.returncode == 0, client_err
    assert connect_out.split() == ["0", str(SHORT_CONNECTS)], connect_err[:2000]
    _check_recorded(home)  # every cell, fit, session end and the review

    # The clients held their connections throughout, and see every event on their next query.
    total = Ledger(home).rows("SELECT count(*) AS n FROM events")[0]["n"]
    jupysql_seen, duckdb_seen = (int(n) for n in client_out.split()[1:3])
    assert jupysql_seen == duckdb_seen == total, client_out

    held = _cell_durations(home)
    assert held.keys() == baseline.keys()
    slower = {key: held[key] - baseline[key] for key in held}
    assert max(slower.values()) < 1.0, sorted(slower.items(), key=lambda kv: -kv[1])[:3]
