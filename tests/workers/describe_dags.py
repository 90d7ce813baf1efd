"""Import the DAG files in a folder and print what they declare, as JSON.

Run with real Airflow's Python (DagBag) when it is installed, else with the stub in
tests/airflow_stub on sys.path. Each task's command and environment are rendered as Airflow
renders template fields for a run whose interval ends at argv[2] (ISO-8601), try number 1: a value
wrapped in literal() as it is, a string through Jinja.

With real Airflow, each DAG also says when Airflow's scheduler would start its first run
(``first_run``: what the scheduler computes for a DAG without runs, after serialising it, so
``start_date``, ``catchup`` and the timetable all count) and, with argv[3] = N, the first N slots
it would trigger with catch-up from its start date (``slots``).
"""

from __future__ import annotations

import datetime as dt
import json
import runpy
import sys
from pathlib import Path

import jinja2

folder, interval_end = Path(sys.argv[1]), dt.datetime.fromisoformat(sys.argv[2])
count = int(sys.argv[3]) if len(sys.argv) > 3 else 0


def seconds(delta):
    return None if delta is None else delta.total_seconds()


def render(value):
    if hasattr(value, "value") and not isinstance(value, (str, dict)):  # literal(): as it is
        return value.value
    if isinstance(value, dict):
        return {key: render(item) for key, item in value.items()}
    if value is None:
        return None
    context = {"data_interval_end": interval_end, "logical_date": interval_end, "ti": {"try_number": 1}}
    return jinja2.Template(value).render(**context)


try:
    import airflow  # noqa: F401
    real = not hasattr(airflow, "DAGS")
except ImportError:
    real = False

described = []
if real:
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.timetables.base import TimeRestriction

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
        scheduled = LazyDeserializedDAG.from_dag(dag)  # what the scheduler reads
        first = scheduled.next_dagrun_info(None)
        slots, last = [], None
        restriction = TimeRestriction(earliest=dag.start_date, latest=None, catchup=True)
        for _ in range(count):
            info = dag.timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
            slots.append(info.logical_date.isoformat())
            last = info.data_interval
        described.append({
            "dag_id": dag_id, "schedule": dag.timetable.summary, "catchup": dag.catchup,
            "timetable": type(dag.timetable).__name__,
            "tz": str(getattr(dag.timetable, "_timezone", None).name),  # the cron's zone
            "start_date": dag.start_date.isoformat(),
            "first_run": None if first is None else first.logical_date.isoformat(), "slots": slots,
            "retries": task.retries, "execution_timeout": seconds(task.execution_timeout),
            "task_id": task.task_id, "command": render(task.bash_command), "env": render(task.env),
            "append_env": task.append_env, "cwd": render(task.cwd), "airflow": airflow.__version__,
        })
else:
    import airflow

    for path in sorted(folder.glob("*.py")):
        runpy.run_path(str(path))
    for dag in sorted(airflow.DAGS, key=lambda d: d.dag_id):
        task = dag.tasks[0]
        described.append({
            "dag_id": dag.dag_id, "schedule": dag.schedule.summary, "catchup": dag.catchup,
            "timetable": type(dag.schedule).__name__, "tz": dag.schedule.timezone,
            "start_date": dag.start_date.isoformat(), "first_run": None, "slots": [],
            "retries": dag.default_args["retries"], "execution_timeout": seconds(task.execution_timeout),
            "task_id": task.task_id, "command": render(task.bash_command), "env": render(task.env),
            "append_env": task.append_env, "cwd": render(task.cwd), "airflow": "stub",
        })
print(json.dumps(described))
