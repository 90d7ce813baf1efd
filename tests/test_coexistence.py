"""SQL clients reading the ledger never slow or lose capture (issue: coexistence with readers).

The whole picture, with real processes: four papermill notebooks fitting models at once, a
review run and an ``nbgov sql`` loop, while jupysql and a plain read-only ``duckdb`` client hold
the ledger open from start to end and a third process makes 500 short read-only connects. The
same notebooks run first with the same readers reading another ledger: each cell's duration
there is the baseline.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from nbgov.ledger.facade import Ledger
from support.helpers import WORKERS, clean_env, progress, review_notebook, run_cli, run_together, wait_for

NOTEBOOKS = 4
FITS = 6
SHORT_CONNECTS = 500


def _notebook(folder: Path, index: int) -> Path:
    data = folder / f"data_{index}.csv"
    data.write_text("x,y\n" + "".join(f"{(i * (index + 3)) % 17},{i % 2}\n" for i in range(80)))
    # Imports first, as notebooks do, before recording starts: importing scikit-learn is seconds
    # of CPU whose duration on a shared machine says nothing about the ledger.
    cells = ["import pandas as pd\nfrom sklearn.linear_model import LogisticRegression",
             "%load_ext nbgov",
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
    commands = [([sys.executable, "-m", "papermill", str(nb), str(folder / f"out_{nb.name}"), "-k", "python3",
                  "--no-progress-bar"], {"cwd": folder, "env": {**env, "NBGOV_NOTEBOOK": str(nb)}})
                for nb in notebooks]
    commands.append(([sys.executable, "-m", "nbgov", "--home", str(home), "review", "run", str(review),
                      "-p", "x", "5"], {"cwd": folder, "env": env}))
    for result in run_together(commands):
        assert result.returncode == 0, result.stderr


def _start_client(home: Path, stop: Path, kind: str, env: dict[str, str]) -> subprocess.Popen[str]:
    client = subprocess.Popen([sys.executable, str(WORKERS / "read_client.py"), str(home), str(stop), kind],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert client.stdout is not None
    for line in client.stdout:  # jupysql says "Connecting to ..." first
        if line.strip() == "ready":
            return client
    raise AssertionError(f"the {kind} client did not start: {client.stderr.read() if client.stderr else ''}")


def _cell_durations(home: Path) -> dict[tuple[str, int], float]:
    rows = Ledger(home).rows("SELECT notebook, execution_count, duration_us FROM cells "
                             "WHERE notebook LIKE '%train_%'")
    return {(Path(r["notebook"]).name, r["execution_count"]): r["duration_us"] / 1e6 for r in rows}


def _check_recorded(home: Path) -> None:
    ledger = Ledger(home)
    cells = ledger.rows("SELECT notebook, count(*) AS n FROM cells WHERE notebook LIKE '%train_%' "
                        "GROUP BY notebook")
    assert sorted(r["n"] for r in cells) == [FITS + 1] * NOTEBOOKS  # recording starts after %load_ext
    fits = ledger.rows("SELECT count(*) AS n FROM models WHERE model = 'clf'")
    assert fits[0]["n"] == NOTEBOOKS * FITS
    ended = ledger.rows("SELECT count(*) AS n FROM events WHERE type = 'session_ended'")
    started = ledger.rows("SELECT count(*) AS n FROM events WHERE type = 'session_started'")
    # the notebooks' and the review's kernel, each ended (none lost)
    assert ended[0]["n"] == started[0]["n"] >= NOTEBOOKS + 1, ledger.rows("SELECT notebook, status FROM sessions")
    reviews = ledger.rows("SELECT status FROM review_runs")
    assert [r["status"] for r in reviews] == ["succeeded"]


def _run_beside_readers(folder: Path, home: Path, read_home: Path) -> tuple[int, list[str]]:
    """Run the notebooks and the review recording into *home* while every reader (held jupysql
    and duckdb clients, the ``nbgov sql`` loop, 500 short connects) reads *read_home*. Returns
    how many queries the sql loop made during the run and each held client's final count."""
    stop = folder / "stop"
    folder.mkdir(parents=True, exist_ok=True)
    env = clean_env()
    clients = {kind: _start_client(read_home, stop, kind, env) for kind in ("jupysql", "duckdb")}
    # Paced like people and dashboards, not spinning.
    reader = subprocess.Popen([sys.executable, str(WORKERS / "reader.py"), str(read_home), str(stop), "0.5"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    connects = subprocess.Popen([sys.executable, str(WORKERS / "short_connects.py"), str(read_home),
                                 str(SHORT_CONNECTS), "0.05"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_for(lambda: Path(f"{stop}.ready-{reader.pid}").exists(), "the nbgov sql loop is up",
                 processes=[reader, *clients.values()])
        _run_all(folder, home)
        queries_during = progress(Path(f"{stop}.queries-{reader.pid}"))
        connect_out, connect_err = connects.communicate(timeout=600)
        assert run_cli("--home", str(home), "ingest").returncode == 0
    finally:
        stop.touch()
    finals = {kind: client.communicate(timeout=120) for kind, client in clients.items()}
    _, reader_err = reader.communicate(timeout=120)
    assert reader.returncode == 0, reader_err
    for kind, client in clients.items():
        assert client.returncode == 0, (kind, finals[kind][1])
    assert connect_out.split() == ["0", str(SHORT_CONNECTS)], connect_err[:2000]
    seen = [next(line for line in out.splitlines() if line.startswith("final ")) for out, _ in finals.values()]
    return queries_during, seen


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_clients_holding_the_ledger_never_slow_or_lose_capture(tmp_path: Path) -> None:
    # The baseline: the same readers, as busy, but on another ledger. Two cores are shared by
    # everything, so the readers' CPU is in both runs; what differs is only whether they hold
    # and read the ledger the notebooks record into.
    elsewhere = tmp_path / "elsewhere" / "ledger"
    Ledger.init(elsewhere).close()
    quiet_home = tmp_path / "quiet" / "ledger"
    Ledger.init(quiet_home).close()
    _run_beside_readers(tmp_path / "quiet", quiet_home, elsewhere)
    _check_recorded(quiet_home)
    baseline = _cell_durations(quiet_home)

    home = tmp_path / "busy" / "ledger"
    Ledger.init(home).close()
    queries_during, finals = _run_beside_readers(tmp_path / "busy", home, home)
    assert queries_during > 0
    _check_recorded(home)  # every cell, fit, session end and the review

    # The clients held their connections throughout, and see every event on their next query.
    total = Ledger(home).rows("SELECT count(*) AS n FROM events")[0]["n"]
    assert [int(final.split()[1]) for final in finals] == [total, total], finals

    held = _cell_durations(home)
    assert held.keys() == baseline.keys()
    slower = {key: held[key] - baseline[key] for key in held}
    assert max(slower.values()) < 1.0, sorted(slower.items(), key=lambda kv: -kv[1])[:3]
