"""A session's end is never lost: not to a kernel slow to shut down, not to a killed kernel.

papermill asks the kernel to shut down, sends SIGTERM after 2.5 s and SIGKILL after 5 s. Exit
handlers that take longer (here: one that sleeps 4 s, registered after ``%load_ext nbgov`` so
that it runs first) used to take ``session_ended`` down with them. A kernel killed outright
cannot record anything: the ingest that finds its segment released records it as lost.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nbgov.ledger.facade import Ledger
from support.helpers import clean_env, review_notebook, run_cli, run_together

RUNS = 20
AT_ONCE = 4


def _papermill(notebook: Path, out: Path, home: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "papermill", str(notebook), str(out), "-k", "python3", "--no-progress-bar"],
        cwd=notebook.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=clean_env(NBGOV_HOME=str(home), NBGOV_NOTEBOOK=str(notebook)))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_session_end_is_recorded_however_slow_the_kernel_is_to_shut_down(tmp_path: Path) -> None:
    home = tmp_path / "ledger"
    Ledger.init(home).close()
    notebook = review_notebook(tmp_path / "slow_exit.ipynb", "%load_ext nbgov",
                               "import atexit, time\natexit.register(time.sleep, 4)", "y = x + 1")
    for first in range(0, RUNS, AT_ONCE):
        commands = [([sys.executable, "-m", "papermill", str(notebook), str(tmp_path / f"out_{i}.ipynb"),
                      "-k", "python3", "--no-progress-bar"],
                     {"cwd": tmp_path, "env": clean_env(NBGOV_HOME=str(home), NBGOV_NOTEBOOK=str(notebook))})
                    for i in range(first, min(first + AT_ONCE, RUNS))]
        for result in run_together(commands, timeout=300):
            assert result.returncode == 0, result.stderr
    sessions = Ledger(home).rows("""
        SELECT s.session_id, s.status, s.end_reason, s.cells, count(c.seq) AS recorded FROM sessions s
        LEFT JOIN cells c USING (session_id) WHERE s.notebook = $n
        GROUP BY ALL""", {"n": str(notebook)})
    assert len(sessions) == RUNS
    # Every run ended in time, and says so: the cells it counted are the cells the ledger holds
    # (the atexit cell and the one after it among them).
    assert [(s["status"], s["end_reason"]) for s in sessions] == [("ended", "kernel shutdown")] * RUNS
    assert all(s["cells"] == s["recorded"] >= 2 for s in sessions), sessions


@pytest.mark.slow
def test_a_killed_kernel_is_shown_as_lost_with_its_last_event(tmp_path: Path) -> None:
    home = tmp_path / "ledger"
    Ledger.init(home).close()
    notebook = review_notebook(tmp_path / "killed.ipynb", "%load_ext nbgov", "y = x + 1",
                               "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    run = _papermill(notebook, tmp_path / "out.ipynb", home)
    run.communicate(timeout=300)
    assert run.returncode != 0  # papermill: the kernel died

    ledger = Ledger(home)
    lost = ledger.rows("SELECT session_id, status, end_reason, last_event_type, cells, ended_at, notebook "
                       "FROM sessions")
    assert len(lost) == 1
    session = lost[0]
    assert (session["status"], session["end_reason"], session["notebook"]) == (
        "ended: lost", "lost", str(notebook))
    # The last event the ledger holds of it: the cell before the one that killed the kernel.
    last = ledger.rows("SELECT type, event_time FROM events WHERE session->>'session_id' = $s "
                       "AND type NOT IN ('session_lost') ORDER BY seq DESC LIMIT 1", {"s": session["session_id"]})
    assert session["last_event_type"] == last[0]["type"] == "cell_executed"
    assert session["ended_at"] == last[0]["event_time"]
    cells = ledger.rows("SELECT count(*) AS n FROM cells WHERE session_id = $s", {"s": session["session_id"]})
    assert session["cells"] == cells[0]["n"] >= 1  # the cells recorded before the kill
    recorded = ledger.rows("SELECT actor FROM events WHERE type = 'session_lost'")
    assert len(recorded) == 1  # recorded once, by the ingest that noticed

    status = run_cli("--home", str(home), "status")
    assert status.returncode == 0, status.stderr
    assert f"ended: lost  {session['session_id']}  {notebook}  last event cell_executed" in status.stdout
    assert "sessions    0 open" in status.stdout
    # Ingesting again never records it twice.
    assert run_cli("--home", str(home), "ingest").returncode == 0
    assert len(Ledger(home).rows("SELECT 1 FROM events WHERE type = 'session_lost'")) == 1


def test_a_live_writer_is_open_not_lost(tmp_path: Path) -> None:
    # A session whose process still holds its segment is running, however long since its last event.
    from nbgov.events import SessionStarted
    from nbgov.ledger.envelope import Session

    home = tmp_path / "ledger"
    Ledger.init(home).close()
    writer = Ledger(home)
    writer.append(SessionStarted(host="h", python="3.11", pid=1), session=Session(session_id="alive"))
    reader = Ledger(home)
    reader.ingest()
    assert reader.rows("SELECT status FROM sessions") == [{"status": "open"}]
    writer.close()  # the process lets go of its segment without ending the session: lost
    reader.ingest()
    assert reader.rows("SELECT status, last_event_type FROM sessions") == [
        {"status": "ended: lost", "last_event_type": "session_started"}]
