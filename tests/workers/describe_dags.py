"""Import the DAG files in a folder and print what they declare, as JSON.

Run with real Airflow's Python (DagBag) when it is installed, else with the stub in
tests/airflow_stub on sys.path. Each task's command is rendered with Jinja as Airflow would for a
run whose interval ends at argv[2] (ISO-8601), try number 1.
"""

from __future__ import annotations

import datetime as dt
import json
import runpy
import sys
from pathlib import Path

import jinja2

folder, interval_end = Path(sys.argv[1]), dt.datetime.fromisoformat(sys.argv[2])


def seconds(delta):
    return None if delta is None else delta.total_seconds()


def render(command):
    context = {"data_interval_end": interval_end, "logical_date": interval_end, "ti": {"try_number": 1}}
    return jinja2.Template(command).render(**context)


try:
    import airflow  # noqa: F401
    real = not hasattr(airflow, "DAGS")
except ImportError:
    real = False

described = []
if real:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:
        from airflow.models.dagbag import DagBag
    bag = DagBag(dag_folder=str(folder), include_examples=False)
    if bag.import_errors:
        print(json.dumps({"import_errors": {str(k): str(v) for k, v in bag.import_errors.items()}}))
        sys.exit(1)
    for dag_id, dag in sorted(bag.dags.items()):
        task = dag.tasks[0]
        described.append({
            "dag_id": dag_id, "schedule": dag.timetable.summary, "catchup": dag.catchup,
            "start_tz": str(getattr(dag.timezone, "name", dag.timezone)),  # the cron's zone
            "retries": task.retries, "execution_timeout": seconds(task.execution_timeout),
            "task_id": task.task_id, "command": render(task.bash_command), "airflow": airflow.__version__,
        })
else:
    import airflow

    for path in sorted(folder.glob("*.py")):
        runpy.run_path(str(path))
    for dag in sorted(airflow.DAGS, key=lambda d: d.dag_id):
        task = dag.tasks[0]
        described.append({
            "dag_id": dag.dag_id, "schedule": dag.schedule, "catchup": dag.catchup,
            "start_tz": str(getattr(dag.start_date.tzinfo, "name", None) or dag.start_date.tzinfo),
            "retries": dag.default_args["retries"], "execution_timeout": seconds(task.execution_timeout),
            "task_id": task.task_id, "command": render(task.bash_command), "airflow": "stub",
        })
print(json.dumps(described))
