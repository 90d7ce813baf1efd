"""Export schedules as Airflow DAGs that call ``nbgov review run``.

Airflow then provides distributed, highly available scheduling while nbgov stays the system of
record: each DAG run calls ``nbgov review run NOTEBOOK --job JOB --scheduled-for <the run's
logical time> --attempt <try number>``, so the run, its status, its outputs and the events inside
it land in the ledger exactly as with nbgov's own scheduler, and a repeated trigger of the same
attempt is a no-op.

Mapping: the cron and time zone become the DAG's schedule and a time-zone-aware start date;
``catch_up = "all"`` becomes ``catchup=True``; ``skip`` and ``latest`` become ``catchup=False``
(Airflow then runs only the latest interval); ``retries`` become task retries with exponential
backoff; ``timeout`` becomes the task's execution timeout (and the review's own ``--timeout``).
The generated files import only ``airflow`` and the standard library.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path

from nbgov.errors import NbgovError
from nbgov.reviews.schedules import Schedule

__all__ = ["dag_source", "export_airflow"]

_TEMPLATE = '''\
"""nbgov review schedule {job!r}, exported by `nbgov schedule export --airflow`.

Each run calls `nbgov review run`; nbgov records it in the ledger at {home}.
Re-export after changing the schedule in nbgov (`nbgov schedule add --replace ...`).
"""

import datetime

from airflow import DAG

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

try:
    import pendulum

    START = pendulum.datetime({year}, {month}, {day}, tz={tz!r})
except ImportError:
    from zoneinfo import ZoneInfo

    START = datetime.datetime({year}, {month}, {day}, tzinfo=ZoneInfo({tz!r}))

COMMAND = {command!r}

with DAG(
    dag_id={dag_id!r},
    schedule={cron!r},
    start_date=START,
    catchup={catchup!r},
    max_active_runs=1,
    tags=["nbgov", "review"],
    default_args={{
        "retries": {retries!r},
        "retry_delay": datetime.timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": datetime.timedelta(hours=1),
    }},
) as dag:
    BashOperator(
        task_id="review",
        bash_command=COMMAND
        + " --scheduled-for '{{{{ (data_interval_end or logical_date).isoformat() }}}}'"
        + " --attempt '{{{{ ti.try_number }}}}'",
        execution_timeout={execution_timeout},
    )
'''

_SAFE_ID = re.compile(r"[^A-Za-z0-9_.-]")


def dag_source(schedule: Schedule, *, home: Path, nbgov: Sequence[str] = ("nbgov",)) -> str:
    """The Python source of the Airflow DAG for *schedule* (*nbgov*: how the workers run nbgov)."""
    argv = [*nbgov, "--home", str(home), "review", "run", schedule.notebook, "--job", schedule.job]
    for name, value in schedule.parameters.items():
        argv += ["-p", name, value if isinstance(value, str) else json.dumps(value)]
    if schedule.timeout_s:
        argv += ["--timeout", f"{schedule.timeout_s:g}"]
    start = schedule.effective_from
    timeout = (f"datetime.timedelta(seconds={schedule.timeout_s + 60:g})" if schedule.timeout_s
               else "None")
    return _TEMPLATE.format(
        job=schedule.job, home=str(home), dag_id=f"nbgov_{_SAFE_ID.sub('_', schedule.job)}",
        cron=schedule.cron, tz=schedule.tz, year=start.year, month=start.month, day=start.day,
        catchup=schedule.catch_up == "all", retries=schedule.retries, execution_timeout=timeout,
        command=shlex.join(argv))


def export_airflow(schedules: Iterable[Schedule], directory: Path, *, home: Path,
                   nbgov: Sequence[str] = ("nbgov",)) -> list[Path]:
    """Write ``nbgov_<job>.py`` for each schedule into *directory*; return the files written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NbgovError(f"cannot create {directory}: {exc.strerror}") from None
    written = []
    for schedule in schedules:
        path = directory / f"nbgov_{_SAFE_ID.sub('_', schedule.job)}.py"
        source = dag_source(schedule, home=home, nbgov=nbgov)
        compile(source, str(path), "exec")  # a template bug must not reach Airflow
        path.write_text(source, encoding="utf-8")
        written.append(path)
    return written
