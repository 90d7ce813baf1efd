"""Schedules exported as Airflow DAGs: they import in Airflow and their command runs the review.

With NBGOV_TEST_AIRFLOW_PYTHON pointing at a Python that has Airflow installed (CI sets one up),
the DAG files are imported by Airflow's own DagBag; without it, by a minimal stub of the DAG API
(tests/airflow_stub) that accepts exactly the arguments Airflow's DAG and BashOperator take here.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from nbgov.ledger.facade import Ledger
from nbgov.reviews.airflow import export_airflow
from nbgov.reviews.schedules import add_schedule, list_schedules
from support.helpers import WORKERS, clean_env, review_notebook

AIRFLOW_PYTHON = os.environ.get("NBGOV_TEST_AIRFLOW_PYTHON")
STUB = Path(__file__).parent / "airflow_stub"


def _describe(folder: Path, interval_end: str, tmp_path: Path) -> list[dict[str, object]]:
    env = clean_env(AIRFLOW_HOME=str(tmp_path / "airflow-home"))
    if AIRFLOW_PYTHON:
        python = AIRFLOW_PYTHON
    else:
        python = sys.executable
        env["PYTHONPATH"] = str(STUB)
    result = subprocess.run([python, str(WORKERS / "describe_dags.py"), str(folder), interval_end],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.slow
def test_exported_dags_import_and_their_command_runs_the_review(tmp_path: Path, home: Path) -> None:
    ledger = Ledger.init(home)
    notebook = review_notebook(tmp_path / "bias review.ipynb", "y = x + 1")
    origin = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    add_schedule(ledger, notebook, cron="0 6 * * MON", tz="Europe/Berlin", parameters={"x": "4", "label": "b c"},
                 catch_up="all", retries=2, timeout=300, job="bias.weekly", now=origin)
    add_schedule(ledger, notebook, cron="30 2 * * *", job="nightly", now=origin)
    dags = tmp_path / "dags"
    written = export_airflow(list_schedules(ledger), dags, home=home, nbgov=[sys.executable, "-m", "nbgov"])
    assert [p.name for p in written] == ["nbgov_bias.weekly.py", "nbgov_nightly.py"]

    described = _describe(dags, "2026-11-30T05:00:00+00:00", tmp_path)
    by_id = {d["dag_id"]: d for d in described}
    assert set(by_id) == {"nbgov_bias.weekly", "nbgov_nightly"}
    weekly, nightly = by_id["nbgov_bias.weekly"], by_id["nbgov_nightly"]
    assert "0 6 * * MON" in str(weekly["schedule"]) and weekly["catchup"] is True
    assert weekly["start_tz"] == "Europe/Berlin" and weekly["retries"] == 2
    assert weekly["execution_timeout"] == 360.0
    assert "30 2 * * *" in str(nightly["schedule"]) and nightly["catchup"] is False
    assert nightly["retries"] == 0 and nightly["execution_timeout"] is None

    # the rendered command is a real `nbgov review run` of that slot, recorded in the ledger
    command = str(weekly["command"])
    assert "--scheduled-for '2026-11-30T05:00:00+00:00' --attempt '1'" in command
    argv = shlex.split(command)
    run = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    again = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), timeout=180)
    assert again.returncode == 0 and "already started for this schedule slot" in again.stdout
    runs = Ledger(home).query("SELECT job, scheduled_for, attempt, status, parameters FROM review_runs")
    assert list(runs[["job", "attempt", "status"]].itertuples(index=False, name=None)) == [
        ("bias.weekly", 1, "succeeded")]
    assert runs["scheduled_for"].iloc[0] == dt.datetime(2026, 11, 30, 5, tzinfo=dt.UTC)
    assert json.loads(runs["parameters"].iloc[0]) == {"x": 4, "label": "b c"}
