"""Schedules exported as Airflow DAGs: they import in Airflow, trigger nbgov's slots and no earlier
one, render nothing as a template, carry the worker's environment, and Airflow's own
`airflow tasks test` runs the review into the ledger as nbgov's scheduler would.

With NBGOV_TEST_AIRFLOW_PYTHON pointing at a Python that has Airflow installed (CI sets one up with
.ci/run), the DAG files are imported by Airflow's own DagBag and run by Airflow's CLI; without it,
the import test uses a minimal stub of the DAG API (tests/airflow_stub) that accepts exactly the
arguments Airflow's DAG and BashOperator take here, and the tests that need Airflow itself skip.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from nbgov.errors import ScheduleError
from nbgov.ledger.facade import Ledger
from nbgov.reviews.airflow import export_airflow, start_instant
from nbgov.reviews.cron import occurrences
from nbgov.reviews.parameters import papermill_parameters
from nbgov.reviews.schedules import add_schedule, list_schedules, same_values
from nbgov.reviews.triggers import judge_trigger
from support.helpers import WORKERS, clean_env, review_notebook, run_cli, write_policy

AIRFLOW_PYTHON = os.environ.get("NBGOV_TEST_AIRFLOW_PYTHON")
STUB = Path(__file__).parent / "airflow_stub"
needs_airflow = pytest.mark.skipif(
    not AIRFLOW_PYTHON, reason="NBGOV_TEST_AIRFLOW_PYTHON is not set (CI's .ci/run sets it to a Python with "
                               "Apache Airflow installed)")
UTC = dt.UTC


def _describe(folder: Path, interval_end: str, tmp_path: Path, slots: int = 0) -> list[dict[str, object]]:
    env = clean_env(AIRFLOW_HOME=str(tmp_path / "airflow-home"))
    if AIRFLOW_PYTHON:
        python = AIRFLOW_PYTHON
    else:
        python = sys.executable
        env["PYTHONPATH"] = str(STUB)
    result = subprocess.run([python, str(WORKERS / "describe_dags.py"), str(folder), interval_end, str(slots)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _given_parameters(command: str) -> dict[str, object]:
    """The parameters a rendered command gives, read as papermill reads its -y."""
    argv = shlex.split(command)
    return papermill_parameters(yaml_texts=[argv[i + 1] for i, part in enumerate(argv) if part == "-y"])


@pytest.mark.slow
def test_exported_dags_import_and_their_command_runs_the_review(tmp_path: Path, home: Path) -> None:
    ledger = Ledger.init(home)
    notebook = review_notebook(tmp_path / "bias review.ipynb", "y = x + 1", "print(label)")
    origin = dt.datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    parameters = {"x": 4, "label": "{{ 7*7 }} and {% raw %}it's \"quoted\"\n$HOME `id`"}
    add_schedule(ledger, notebook, cron="0 6 * * MON", tz="Europe/Berlin", parameters=parameters,
                 catch_up="all", retries=2, timeout=300, job="bias.weekly", now=origin)
    add_schedule(ledger, notebook, cron="30 2 * * *", job="nightly", now=origin)
    dags = tmp_path / "dags"
    environment = {"NBGOV_HOME": str(home), "NBGOV_POLICY": str(tmp_path / "policy {{ x }}.toml")}
    written = export_airflow(list_schedules(ledger), dags, home=home, environment=environment, cwd=tmp_path)
    assert [p.name for p in written] == ["nbgov_bias.weekly.py", "nbgov_nightly.py"]

    described = _describe(dags, "2026-11-30T05:00:00+00:00", tmp_path)
    by_id = {d["dag_id"]: d for d in described}
    assert set(by_id) == {"nbgov_bias.weekly", "nbgov_nightly"}
    weekly, nightly = by_id["nbgov_bias.weekly"], by_id["nbgov_nightly"]
    assert weekly["timetable"] == "CronTriggerTimetable" and "0 6 * * MON" in str(weekly["schedule"])
    assert weekly["catchup"] is True and weekly["tz"] == "Europe/Berlin"
    assert weekly["retries"] == 2 and weekly["execution_timeout"] == 360.0
    assert weekly["start_date"] == "2026-11-01T09:30:01+00:00"  # not midnight: no slot before it was added
    assert "30 2 * * *" in str(nightly["schedule"]) and nightly["catchup"] is False
    assert nightly["retries"] == 0 and nightly["execution_timeout"] is None

    # nothing is rendered by Jinja: the parameters and the environment arrive as written
    assert same_values(_given_parameters(str(weekly["command"])), parameters)
    assert weekly["env"] == {**environment, "NBGOV_AIRFLOW_SLOT": "2026-11-30T05:00:00+00:00",
                             "NBGOV_AIRFLOW_TRY": "1"}
    assert weekly["append_env"] is True and weekly["cwd"] == str(tmp_path)

    # the rendered task, run as Airflow's BashOperator runs it, is a real review run of that slot
    task_env = clean_env(**weekly["env"])  # type: ignore[arg-type]
    for _ in range(2):  # the second trigger of the slot is a no-op
        run = subprocess.run(["bash", "-c", str(weekly["command"])], capture_output=True, text=True,
                             env=task_env, cwd=str(weekly["cwd"]), timeout=180)
        assert run.returncode == 0, run.stdout + run.stderr
    assert "already started for this schedule slot" in run.stdout
    runs = Ledger(home).query("SELECT job, scheduled_for, attempt, status, parameters, output FROM review_runs")
    assert list(runs[["job", "attempt", "status"]].itertuples(index=False, name=None)) == [
        ("bias.weekly", 1, "succeeded")]
    assert runs["scheduled_for"].iloc[0] == dt.datetime(2026, 11, 30, 5, tzinfo=UTC)
    assert json.loads(runs["parameters"].iloc[0]) == parameters
    # judged now, more than its grace period after the slot: recorded as missed, run by catch-up "all"
    missed = Ledger(home).query("SELECT scheduled_for FROM missed_runs")
    assert list(missed["scheduled_for"]) == [dt.datetime(2026, 11, 30, 5, tzinfo=UTC)]
    printed = json.dumps(nbformat.read(runs["output"].iloc[0], 4).cells[-1].outputs)
    assert json.dumps(parameters["label"] + "\n")[1:-1] in printed


def test_a_secret_is_never_written_into_a_dag(tmp_path: Path, home: Path) -> None:
    ledger = Ledger.init(home)
    notebook = review_notebook(tmp_path / "review.ipynb", "print(1)", parameters="x = 1\nlabel = None")
    add_schedule(ledger, notebook, cron="0 6 * * *", job="daily")
    (schedule,) = list_schedules(ledger)
    # a schedule recorded before schedules refused secrets, and a secret in the worker's environment
    leaked = schedule.__class__(**{**schedule.__dict__, "parameters": {"label": "sk-ant-" + "a1B2c3D4" * 6}})
    for schedules, environment, message in [
        ([leaked], None, "parameter 'label' looks like a secret"),
        ([schedule], {"NBGOV_HOME": str(home), "NBGOV_KEY_PASSPHRASE": "hunter2"},
         "NBGOV_KEY_PASSPHRASE looks like a secret"),
    ]:
        with pytest.raises(ScheduleError) as refusal:
            export_airflow(schedules, tmp_path / "dags", home=home, environment=environment)
        assert message in refusal.value.one_line() and "hunter2" not in refusal.value.one_line()
        assert not (tmp_path / "dags").exists()  # nothing written


def test_the_export_command_carries_the_workers_environment(tmp_path: Path, home: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.nbgov]\nlock_timeout = 12\n')
    write_policy(project)  # project/nbgov-policy.toml, found through pyproject.toml
    notebook = review_notebook(project / "review.ipynb", "print(1)")
    assert run_cli("--home", str(home), "init", cwd=project).returncode == 0
    assert run_cli("--home", str(home), "schedule", "add", str(notebook), "--cron", "0 6 * * *",
                   "-r", "label", "007", "-y", "x: 3", cwd=project).returncode == 0
    exported = run_cli("--home", str(home), "schedule", "export", "--airflow", str(tmp_path / "dags"), cwd=project,
                       env={"NBGOV_ALERTS": "alerts.toml", "NBGOV_DURABILITY": "fsync"})
    assert exported.returncode == 0, exported.stderr
    source = (tmp_path / "dags" / "nbgov_review.py").read_text()
    namespace: dict[str, object] = {}
    for name in ("ARGV", "ENVIRONMENT"):
        start = source.index(f"{name} = ")
        exec(source[start:source.index("\n\n", start)], namespace)  # noqa: S102 - our own generated literal
    assert namespace["ENVIRONMENT"] == {
        "NBGOV_HOME": str(home), "NBGOV_DURABILITY": "fsync", "NBGOV_LOCK_TIMEOUT": "12.0",
        "NBGOV_POLICY": str(project / "nbgov-policy.toml"), "NBGOV_ALERTS": str(project / "alerts.toml")}
    argv = namespace["ARGV"]
    assert isinstance(argv, list) and argv[:3] == [sys.executable, "-m", "nbgov"]
    assert papermill_parameters(yaml_texts=[argv[argv.index("-y") + 1]]) == {"label": "007", "x": 3}
    assert f"cwd=literal({str(project)!r})" in source


@needs_airflow
def test_airflow_triggers_nbgovs_slots_and_none_before_the_schedule_was_added(tmp_path: Path, home: Path) -> None:
    ledger = Ledger.init(home)
    notebook = review_notebook(tmp_path / "review.ipynb", "print(1)")
    future = (dt.datetime.now(UTC) + dt.timedelta(days=2)).replace(hour=10, minute=17, second=3)
    cases = {  # job: (cron, tz, catch-up, effective_from)
        "hourly": ("0 * * * *", "UTC", "all", dt.datetime(2026, 11, 30, 10, 17, 3, 500000, tzinfo=UTC)),
        "on_a_slot": ("0 6 * * *", "UTC", "all", dt.datetime(2026, 11, 30, 6, 0, tzinfo=UTC)),
        "future_skip": ("0 * * * *", "UTC", "skip", future),
        "weekly": ("0 6 * * MON", "Europe/Berlin", "all", dt.datetime(2026, 1, 1, tzinfo=UTC)),
        "berlin": ("30 2 * * *", "Europe/Berlin", "all", dt.datetime(2026, 3, 1, tzinfo=UTC)),
    }
    for job, (cron, tz, catch_up, effective_from) in cases.items():
        add_schedule(ledger, notebook, cron=cron, tz=tz, catch_up=catch_up, job=job, now=effective_from)
    export_airflow(list_schedules(ledger), tmp_path / "dags", home=home)
    described = {d["dag_id"].removeprefix("nbgov_"): d  # type: ignore[union-attr]
                 for d in _describe(tmp_path / "dags", "2026-12-01T00:00:00+00:00", tmp_path, slots=250)}
    for job, (cron, tz, _catch_up, effective_from) in cases.items():
        dag = described[job]
        airflows = [dt.datetime.fromisoformat(str(at)) for at in dag["slots"]]  # type: ignore[union-attr]
        assert len(airflows) == 250, job
        # nbgov's slots over the same span (Airflow's 250th slot, plus a day for a daylight-saving shift)
        nbgovs = [o.at for o in occurrences(cron, tz, effective_from, airflows[-1] + dt.timedelta(days=1))]
        # the scheduler's first run (start_date, catchup and timetable together) is nbgov's first slot
        assert dag["start_date"] == start_instant(effective_from).isoformat()
        assert dt.datetime.fromisoformat(str(dag["first_run"])) == nbgovs[0] > effective_from, job
        if job == "berlin":
            # On the two days the clocks change Airflow places 02:30 at another instant than nbgov;
            # each such trigger stands for nbgov's slot of that day, and every slot is triggered.
            differ = [at for at in airflows if at not in nbgovs]
            assert [at.date().isoformat() for at in differ] == ["2026-03-29", "2026-10-25"]
            mapped = [judge_trigger(ledger, job, at, now=at).scheduled_for for at in airflows]
            assert mapped == nbgovs[:len(airflows)]
        else:
            assert airflows == nbgovs[:250], job  # the same slots, none before the schedule was added
    assert described["on_a_slot"]["first_run"] == "2026-12-01T06:00:00+00:00"  # not the 06:00 it was added at
    assert described["hourly"]["first_run"] == "2026-11-30T11:00:00+00:00"     # not midnight


def _airflow(args: list[str], airflow_home: Path, dags: Path) -> subprocess.CompletedProcess[str]:
    assert AIRFLOW_PYTHON
    env = clean_env(AIRFLOW_HOME=str(airflow_home), AIRFLOW__CORE__DAGS_FOLDER=str(dags),
                    AIRFLOW__CORE__LOAD_EXAMPLES="False")
    airflow = Path(AIRFLOW_PYTHON).parent / "airflow"
    return subprocess.run([str(airflow), *args], capture_output=True, text=True, env=env, timeout=600)


@needs_airflow
@pytest.mark.slow
def test_airflows_own_task_test_runs_the_review_into_the_ledger(tmp_path: Path, home: Path) -> None:
    """`airflow tasks test` (Airflow's own command, in its own virtualenv without nbgov) runs an
    exported DAG's task against a real ledger, as nbgov's scheduler would run the schedule."""
    ledger = Ledger.init(home)
    (tmp_path / "governance").mkdir()
    policy = write_policy(tmp_path / "governance").source  # found only through NBGOV_POLICY
    (tmp_path / "reviews").mkdir()
    notebook = review_notebook(
        tmp_path / "reviews" / "hourly_review.ipynb", "%load_ext nbgov",
        "from nbgov.governance.policy import load_policy\nprint('policy:', load_policy().source)",
        "print('label:', label)", parameters="label = 'a'\nx = 1")
    now = dt.datetime.now(UTC).replace(second=0, microsecond=0)
    # hourly at this minute: the latest slot is this minute (on time), the two before it are past
    # the grace period of half an hour
    slot = now
    add_schedule(ledger, notebook, cron=f"{now.minute} * * * *", parameters={"label": "{{ 7*7 }}", "x": 4},
                 catch_up="skip", grace=1800, job="hourly", now=now - dt.timedelta(minutes=150))
    dags = tmp_path / "dags"
    exported = run_cli("--home", str(home), "schedule", "export", "--airflow", str(dags),
                       env={"NBGOV_POLICY": policy})
    assert exported.returncode == 0, exported.stderr
    airflow_home = tmp_path / "airflow-home"
    migrate = _airflow(["db", "migrate"], airflow_home, dags)
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]

    # Airflow triggers a slot two hours late: recorded as missed, and catch-up skip runs nothing
    late = _airflow(["tasks", "test", "nbgov_hourly", "review", (slot - dt.timedelta(hours=2)).isoformat()],
                    airflow_home, dags)
    log = late.stdout + late.stderr
    assert "returned exit code 99. Skipping" in log and "catch-up skip runs no missed time" in log, log[-4000:]
    # then the slot that is due now: the one in between is recorded as missed, this one runs
    due = _airflow(["tasks", "test", "nbgov_hourly", "review", slot.isoformat()], airflow_home, dags)
    log = due.stdout + due.stderr
    assert due.returncode == 0 and "Command exited with return code 0" in log, log[-4000:]

    result = Ledger(home)
    runs = result.query("SELECT job, scheduled_for, attempt, status, parameters, output FROM review_runs")
    assert list(runs[["job", "attempt", "status"]].itertuples(index=False, name=None)) == [("hourly", 1, "succeeded")]
    assert runs["scheduled_for"].iloc[0] == slot
    assert json.loads(runs["parameters"].iloc[0]) == {"label": "{{ 7*7 }}", "x": 4}
    missed = result.query("SELECT scheduled_for FROM missed_runs ORDER BY scheduled_for")
    assert list(missed["scheduled_for"]) == [slot - dt.timedelta(hours=2), slot - dt.timedelta(hours=1)]
    outputs = json.dumps([cell.outputs for cell in nbformat.read(runs["output"].iloc[0], 4).cells
                          if cell.cell_type == "code"])
    assert "label: {{ 7*7 }}" in outputs  # arrived unrendered
    assert f"policy: {policy}" in outputs  # the worker had NBGOV_POLICY from the DAG
