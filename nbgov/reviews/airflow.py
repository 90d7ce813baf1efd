"""Export schedules as Airflow DAGs that call ``nbgov review run --as-scheduled``.

Airflow then provides distributed, highly available scheduling while nbgov stays the system of
record: each DAG run calls ``nbgov review run NOTEBOOK --job JOB --as-scheduled --scheduled-for
<the slot Airflow triggers> --attempt <try number>``, and nbgov judges that trigger as its own
scheduler judges a due time (:func:`nbgov.reviews.triggers.judge_trigger`), so the same slots run
under the same catch-up rule, and the run, its status, its outputs and the events inside it land
in the ledger exactly as with nbgov's scheduler.

The mapping:

* **Slots.** The cron and time zone become a ``CronTriggerTimetable`` (a run at each cron time,
  like nbgov; its logical date is the slot). ``start_date`` is the first whole second after the
  schedule took effect (``effective_from``), so Airflow never triggers a slot from before the
  schedule existed (nbgov's slots are the cron times strictly after ``effective_from``).
* **Catch-up.** ``all`` becomes ``catchup=True`` (Airflow triggers every slot since
  ``start_date``); ``skip`` and ``latest`` become ``catchup=False`` (Airflow triggers only the
  latest slot due). A trigger past the slot's grace period is recorded as missed and then run or
  skipped by the catch-up policy; exit status 99 marks the task skipped.
* **No templates.** The command and the environment are wrapped in Airflow's ``literal()``: no
  part of them is rendered by Jinja (a parameter ``{{ 7*7 }}`` arrives as written). The only
  templates are two variables of their own: the slot (``data_interval_end``) and the try number.
* **Parameters** are the schedule's recorded values, passed as papermill's ``-y`` YAML (read back
  exactly). A parameter that looks like a secret is refused: nothing secret is written into a
  DAG file.
* **Environment.** The task carries what the worker needs to run the review as the exporting
  nbgov would: ``NBGOV_HOME``, the settings that did not come from their defaults (the team
  ledger URL, durability, ...), ``NBGOV_POLICY`` (the policy file in force at export) and
  ``NBGOV_ALERTS`` (when set); its working directory is the folder of the ``pyproject.toml`` in
  force, so ``[tool.nbgov.alerts]`` is found as well. The signing-key directory, credentials
  (``PGPASSWORD``, ``NBGOV_KEY_PASSPHRASE``) and the identity (``NBGOV_ACTOR``) are the worker's
  own and never written. nbgov runs with the exporting Python (``python -m nbgov``, the command
  nbgov's scheduler uses).
* ``retries`` become task retries with exponential backoff; ``timeout`` becomes the review's own
  ``--timeout`` and the task's execution timeout (a minute longer).

The generated files import only ``airflow`` and the standard library (tested with Airflow 3.1).
"""

from __future__ import annotations

import datetime as dt
import os
import pprint
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from nbgov.errors import NbgovError, ScheduleError
from nbgov.reviews.parameters import parameter_argv
from nbgov.reviews.schedules import Schedule, refuse_secrets
from nbgov.settings import SETTINGS, Settings

__all__ = ["dag_source", "export_airflow", "start_instant", "worker_environment"]

_TEMPLATE = '''\
"""nbgov review schedule {job!r}, exported by `nbgov schedule export --airflow`.

Each run calls `nbgov review run --as-scheduled` for the slot Airflow triggers: nbgov judges it
as its own scheduler would (a slot of the schedule in force, its grace period, the catch-up
policy {catch_up!r}), runs the review and records it in the ledger at {home}.
Exit status 99 (a missed slot the catch-up policy does not run) marks the task skipped.

Re-export after changing the schedule in nbgov (`nbgov schedule add --replace ...`): nbgov refuses
a trigger with a stale notebook, parameters or cron rather than run it.

Nothing below is rendered by Jinja (literal()): the command and the environment reach the worker
exactly as written. ENVIRONMENT is what the exporting nbgov resolved (ledger, settings, policy,
alerts) and holds no secret: credentials (PGPASSWORD, NBGOV_KEY_PASSPHRASE), the signing-key
directory and the identity (NBGOV_ACTOR) are the worker's own.
"""

import datetime
import shlex

from airflow import DAG

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk.definitions.template import literal
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator
    from airflow.utils.template import literal
from airflow.timetables.trigger import CronTriggerTimetable

#: The review command; the parameters are the schedule's values as papermill's -y YAML.
ARGV = {argv}

#: What the worker needs to run the review as the exporting nbgov would.
ENVIRONMENT = {environment}

#: The first whole second after the schedule took effect ({effective_from}): Airflow triggers
#: no slot before it.
START = datetime.datetime.fromisoformat({start!r})

with DAG(
    dag_id={dag_id!r},
    schedule=CronTriggerTimetable({cron!r}, timezone={tz!r}),
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
        bash_command=literal(
            shlex.join(ARGV) + ' --scheduled-for "$NBGOV_AIRFLOW_SLOT" --attempt "$NBGOV_AIRFLOW_TRY"'),
        env={{
            **{{name: literal(value) for name, value in ENVIRONMENT.items()}},
            # The only templates: the slot this run is for, and its try number (0 under `airflow tasks test`).
            "NBGOV_AIRFLOW_SLOT": "{{{{ (data_interval_end or logical_date).isoformat() }}}}",
            "NBGOV_AIRFLOW_TRY": "{{{{ [ti.try_number, 1] | max }}}}",
        }},
        append_env=True,
        cwd={cwd},
        execution_timeout={execution_timeout},
    )
'''

_SAFE_ID = re.compile(r"[^A-Za-z0-9_.-]")
#: Settings never written into a DAG: the home is written on its own, and the signing-key
#: directory is per user (the worker signs with its own key).
_NOT_EXPORTED = frozenset({"home", "key_dir"})


def start_instant(effective_from: dt.datetime) -> dt.datetime:
    """The DAG's ``start_date``: the first whole second after *effective_from* (UTC).

    Cron slots fall on whole minutes, so Airflow's first slot at or after it is nbgov's first slot
    strictly after *effective_from*.
    """
    utc = effective_from.astimezone(dt.UTC)
    return utc.replace(microsecond=0) + dt.timedelta(seconds=1)


def worker_environment(settings: Settings, *, policy_file: Path | None = None,
                       environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> dict[str, str]:
    """The ``NBGOV_*`` variables a worker needs to run a review as this process would.

    ``NBGOV_HOME``; each setting that did not come from its default (except the per-user
    ``key_dir``); ``NBGOV_POLICY`` for *policy_file* (the policy file in force, found by the
    caller); ``NBGOV_ALERTS`` when *environ* sets it (made absolute against *cwd*).
    """
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    result = {"NBGOV_HOME": str(settings.home.resolve())}
    for setting in SETTINGS:
        if setting.name in _NOT_EXPORTED or settings.sources.get(setting.name, "default") == "default":
            continue
        value = getattr(settings, setting.name)
        if value is not None:
            result[setting.env] = str(value)
    if policy_file is not None:
        result["NBGOV_POLICY"] = str((cwd / policy_file.expanduser()).resolve())
    if environ.get("NBGOV_ALERTS"):
        result["NBGOV_ALERTS"] = str((cwd / Path(environ["NBGOV_ALERTS"]).expanduser()).resolve())
    return result


def dag_source(schedule: Schedule, *, home: Path, nbgov: Sequence[str] | None = None,
               environment: Mapping[str, str] | None = None, cwd: Path | None = None) -> str:
    """The Python source of the Airflow DAG for *schedule*.

    *nbgov* is how the worker runs nbgov (default: this Python's ``-m nbgov``), *environment* the
    variables the task sets (default: ``NBGOV_HOME``; see :func:`worker_environment`), *cwd* the
    task's working directory (default: Airflow's).

    Raises
    ------
    ScheduleError
        A parameter or an environment value looks like a secret.
    """
    refuse_secrets(schedule.parameters, where=f"the Airflow DAG of schedule {schedule.job!r}")
    env = dict(environment or {"NBGOV_HOME": str(home)})
    _refuse_secret_environment(env, schedule.job)
    argv = [*(nbgov or (sys.executable, "-m", "nbgov")), "--home", str(home), "review", "run",
            schedule.notebook, "--job", schedule.job, "--as-scheduled",
            *parameter_argv(schedule.parameters)]
    if schedule.timeout_s:
        argv += ["--timeout", f"{schedule.timeout_s:g}"]
    timeout = (f"datetime.timedelta(seconds={schedule.timeout_s + 60:g})" if schedule.timeout_s
               else "None")
    return _TEMPLATE.format(
        job=schedule.job, home=str(home), catch_up=schedule.catch_up,
        dag_id=f"nbgov_{_SAFE_ID.sub('_', schedule.job)}", argv=_literal(argv),
        environment=_literal(env), effective_from=schedule.effective_from.isoformat(),
        start=start_instant(schedule.effective_from).isoformat(), cron=schedule.cron, tz=schedule.tz,
        catchup=schedule.catch_up == "all", retries=schedule.retries, execution_timeout=timeout,
        cwd="None" if cwd is None else f"literal({str(cwd)!r})")


def _literal(value: object) -> str:
    return pprint.pformat(value, width=100, sort_dicts=False)


def _refuse_secret_environment(environment: Mapping[str, str], job: str) -> None:
    from nbgov.redaction import looks_secret_name, redact_text

    for name, value in environment.items():
        if looks_secret_name(name) or redact_text(value)[1]:
            raise ScheduleError(f"the environment variable {name} looks like a secret: nbgov does not "
                                f"write secrets into the Airflow DAG of schedule {job!r}",
                                hint="set it in the Airflow workers' own environment instead")


def export_airflow(schedules: Iterable[Schedule], directory: Path, *, home: Path,
                   nbgov: Sequence[str] | None = None, environment: Mapping[str, str] | None = None,
                   cwd: Path | None = None) -> list[Path]:
    """Write ``nbgov_<job>.py`` for each schedule into *directory*; return the files written.

    Every DAG is built (and a secret refused) before any file is written.
    """
    sources = []
    for schedule in schedules:
        path = directory / f"nbgov_{_SAFE_ID.sub('_', schedule.job)}.py"
        source = dag_source(schedule, home=home, nbgov=nbgov, environment=environment, cwd=cwd)
        compile(source, str(path), "exec")  # a template bug must not reach Airflow
        sources.append((path, source))
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NbgovError(f"cannot create {directory}: {exc.strerror}") from None
    for path, source in sources:
        path.write_text(source, encoding="utf-8")
    return [path for path, _ in sources]
