"""Review commands of the ``nbgov`` CLI: ``review run``, ``review list``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from nbgov.cli.common import ProgressBar, echo_rows, output_format
from nbgov.cli.common import ledger_of as _ledger

F = TypeVar("F", bound=Callable[..., Any])


def papermill_options(function: F) -> F:
    """papermill's parameter options (-p, -r, -y, -f, -b), with its long spellings as aliases."""
    options = [
        click.option("-p", "--parameter", "--parameters", "parameters", nargs=2, multiple=True,
                     metavar="NAME VALUE", help="A parameter, read as papermill reads -p: True, False, "
                     "None, an int, a float, else text."),
        click.option("-r", "--parameter-raw", "--parameters_raw", "parameters_raw", nargs=2, multiple=True,
                     metavar="NAME VALUE", help="A parameter whose value is the text as given."),
        click.option("-y", "--parameters-yaml", "--parameters_yaml", "parameters_yaml", multiple=True,
                     metavar="YAML", help="Parameters as a YAML mapping."),
        click.option("-f", "--parameters-file", "--parameters_file", "parameters_file", multiple=True,
                     metavar="FILE", help="Parameters from a YAML (or JSON) file."),
        click.option("-b", "--parameters-base64", "--parameters_base64", "parameters_base64", multiple=True,
                     metavar="BASE64", help="Parameters as base64-encoded YAML."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _parameters(options: dict[str, Any]) -> dict[str, Any]:
    """The values papermill's command line gives (merged as papermill merges them)."""
    from nbgov.reviews.parameters import papermill_parameters

    return papermill_parameters(
        typed=options.pop("parameters"), raw=options.pop("parameters_raw"),
        yaml_texts=options.pop("parameters_yaml"), files=options.pop("parameters_file"),
        base64_texts=options.pop("parameters_base64"))


@click.group()
def review() -> None:
    """Review notebooks run under nbgov's supervision."""


@review.command("run")
@click.argument("notebook", type=click.Path(path_type=Path))
@papermill_options
@click.option("--timeout", type=float, default=None, metavar="SECONDS",
              help="Kill the run's kernel after this many seconds (status timed_out).")
@click.option("--cwd", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The kernel's working directory (default: the notebook's folder).")
@click.option("--job", default=None, help="The schedule this run belongs to (set by schedulers).")
@click.option("--scheduled-for", default=None, metavar="ISO-8601",
              help="The due time this run is for; with --job, a repeated trigger is a no-op.")
@click.option("--attempt", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--as-scheduled", is_flag=True,
              help="For external schedulers (Airflow): judge --scheduled-for as nbgov's scheduler "
                   "would (a slot of schedule --job, its grace period, its catch-up policy); exit 99 "
                   "when there is nothing to run.")
@click.pass_context
def review_run(ctx: click.Context, /, notebook: Path, timeout: float | None, cwd: Path | None,
               job: str | None, scheduled_for: str | None, attempt: int, as_scheduled: bool,
               **options: Any) -> None:
    """Run NOTEBOOK with papermill under supervision; record its start, finish and status.

    Parameters take papermill's options and values (-p, -r, -y, -f, -b, merged in papermill's
    order: -b, -f, -y, -p, -r) and are checked against the notebook's parameters cell before
    anything runs: an unknown name or a value of the wrong type is refused, never converted. The
    executed notebook is kept under <home>/runs/. Exit status: 0 succeeded (or a repeated
    trigger), 1 failed, 3 timed out, 4 kernel died, 99 nothing to run (--as-scheduled).

    \b
    Example:
      nbgov review run reviews/bias_review.ipynb -p model hmda_denial -p window_days 30 --timeout 600
      nbgov review run reviews/bias_review.ipynb -f params.yaml -r model_version 007
    """
    from nbgov.alerts.sinks import find_alert_config
    from nbgov.reviews.runs import run_review

    parameters = _parameters(options)
    alerts = find_alert_config()
    ledger = _ledger(ctx)
    if as_scheduled:
        from nbgov.reviews.scheduler import parse_instant
        from nbgov.reviews.triggers import judge_trigger

        if job is None or scheduled_for is None:
            raise click.UsageError("--as-scheduled needs --job and --scheduled-for")
        trigger = judge_trigger(ledger, job, parse_instant(scheduled_for, "--scheduled-for"),
                                notebook=notebook, parameters=parameters, attempt=attempt, alerts=alerts)
        if trigger.reason:
            click.echo(f"{job}: {trigger.reason}", err=not trigger.run)
        if not trigger.run:
            ctx.exit(99)
        scheduled_for = trigger.scheduled_for.isoformat()
    bar = ProgressBar("reviewing")
    try:
        result = run_review(ledger, notebook, parameters, timeout=timeout,
                            cwd=cwd, job=job, scheduled_for=scheduled_for, attempt=attempt, progress=bar,
                            alerts=alerts)
    finally:
        bar.close()
    click.echo(result.describe(), err=not result.ok and not result.duplicate)
    ctx.exit(result.exit_code)


@review.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@output_format()
@click.pass_context
def review_list(ctx: click.Context, limit: int, fmt: str) -> None:
    """The most recent review runs and how they ended.

    \b
    Example:
      nbgov review list --limit 5
    """
    table = _ledger(ctx).query_arrow(
        "SELECT started_at, regexp_extract(notebook, '[^/]+$') AS notebook, job, scheduled_for, attempt, "
        "status, cell_index, error_type, round(seconds, 1) AS seconds FROM review_runs "
        "ORDER BY started_at DESC LIMIT $n", {"n": limit}).table
    echo_rows(table, fmt, max_rows=limit)


_CATCH_UP = click.Choice(["skip", "latest", "all"])


@click.group()
def schedule() -> None:
    """Review schedules as code: every change is a recorded event."""


@schedule.command("add")
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option("--cron", required=True, help='A 5-field cron expression, e.g. "0 6 * * MON".')
@click.option("--tz", default="UTC", show_default=True, help="The cron's time zone (IANA name).")
@papermill_options
@click.option("--catch-up", type=_CATCH_UP, default="skip", show_default=True,
              help="What to run of due times found past their grace period (each is recorded as missed).")
@click.option("--retries", type=click.IntRange(0, 20), default=0, show_default=True)
@click.option("--timeout", type=float, default=None, metavar="SECONDS")
@click.option("--grace", type=float, default=None, metavar="SECONDS",
              help="How late a run may start before it counts as missed (default: an hour, or half "
                   "the interval for frequent jobs).")
@click.option("--job", default=None, help="The schedule's name (default: the notebook's name).")
@click.option("--replace", is_flag=True, help="Change an existing schedule of that name.")
@click.pass_context
def schedule_add(ctx: click.Context, /, notebook: Path, cron: str, tz: str, catch_up: str, retries: int,
                 timeout: float | None, grace: float | None, job: str | None, replace: bool,
                 **options: Any) -> None:
    """Schedule NOTEBOOK (validated now: parameters, cron, time zone).

    Parameters take the options and values of `nbgov review run` (papermill's) and are recorded
    as given: every run of the schedule gets exactly these values.

    \b
    Example:
      nbgov schedule add reviews/bias_review.ipynb --cron "0 6 * * MON" --tz Europe/Berlin \\
          -p model hmda_denial --catch-up latest --retries 2 --timeout 900
    """
    from nbgov.reviews.cron import next_occurrence
    from nbgov.reviews.schedules import add_schedule

    ledger = _ledger(ctx)
    added = add_schedule(ledger, notebook, cron=cron, tz=tz, parameters=_parameters(options),
                         catch_up=catch_up, retries=retries, timeout=timeout, grace=grace, job=job,
                         replace=replace)
    ledger.ingest()
    upcoming = next_occurrence(added.cron, added.tz, added.effective_from)
    click.echo(f"scheduled {added.job}: {added.cron} ({added.tz}); next run {upcoming.at.isoformat()}"
               + (f" ({upcoming.note})" if upcoming.note else ""))


@schedule.command("list")
@output_format()
@click.pass_context
def schedule_list(ctx: click.Context, fmt: str) -> None:
    """The schedules in force.

    \b
    Example:
      nbgov schedule list
    """
    echo_rows(_ledger(ctx).query_arrow(
        "SELECT job, regexp_extract(notebook, '[^/]+$') AS notebook, cron, tz, catch_up, retries, "
        "timeout_s, grace_s, parameters, changed_by, changed_at FROM schedules ORDER BY job").table, fmt)


@schedule.command("remove")
@click.argument("job")
@click.option("--reason", default=None)
@click.pass_context
def schedule_remove(ctx: click.Context, job: str, reason: str | None) -> None:
    """Remove the schedule JOB (recorded; its history stays).

    \b
    Example:
      nbgov schedule remove bias_review --reason "model retired"
    """
    from nbgov.reviews.schedules import remove_schedule

    ledger = _ledger(ctx)
    remove_schedule(ledger, job, reason=reason)
    ledger.ingest()
    click.echo(f"removed schedule {job}")


@schedule.command("history")
@click.argument("job", required=False)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@output_format()
@click.pass_context
def schedule_history(ctx: click.Context, job: str | None, limit: int, fmt: str) -> None:
    """Changes, runs and missed runs of JOB (or of every schedule), newest first.

    \b
    Example:
      nbgov schedule history bias_review
    """
    echo_rows(_ledger(ctx).query_arrow("""
        SELECT * FROM (
          SELECT event_time AS "at", job, 'schedule ' || change AS what,
                 coalesce(cron || ' ' || tz, reason) AS detail FROM schedule_events
          UNION ALL
          SELECT started_at, job, 'run ' || status || ' (attempt ' || attempt || ')',
                 'for ' || scheduled_for::VARCHAR || coalesce(': ' || error_type, '') FROM review_runs
          WHERE job IS NOT NULL
          UNION ALL
          SELECT detected_at, job, 'missed', 'due ' || scheduled_for::VARCHAR FROM missed_runs)
        WHERE $job IS NULL OR job = $job ORDER BY "at" DESC LIMIT $n""",
        {"job": job, "n": limit}).table, fmt, max_rows=limit)


@schedule.command("export")
@click.option("--airflow", "airflow_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Write one Airflow DAG per schedule into this folder.")
@click.pass_context
def schedule_export(ctx: click.Context, airflow_dir: Path) -> None:
    """Write an Airflow DAG per schedule, each calling `nbgov review run` (nbgov stays the record).

    Each DAG triggers the schedule's slots after it took effect and runs them with
    `nbgov review run --as-scheduled`, which applies the grace period and catch-up policy as
    nbgov's scheduler does. The task carries the ledger, the settings, the policy file and the
    alerts file this command resolves (never a secret) and runs nbgov with this Python.

    \b
    Example:
      nbgov schedule export --airflow ~/airflow/dags
    """
    from nbgov.governance.policy import find_policy
    from nbgov.reviews.airflow import export_airflow, worker_environment
    from nbgov.reviews.schedules import list_schedules

    ledger = _ledger(ctx)
    policy = find_policy()
    environment = worker_environment(ledger.settings, policy_file=policy[1] if policy else None)
    pyproject = ledger.settings.pyproject
    written = export_airflow(list_schedules(ledger), airflow_dir, home=ledger.home.resolve(),
                             environment=environment, cwd=pyproject.parent.resolve() if pyproject else None)
    for path in written:
        click.echo(f"wrote {path}")
    if not written:
        click.echo("no schedules to export")


@click.command()
@click.option("--once", is_flag=True,
              help="Run what is due now, wait for it, and exit (for cron/systemd/CI).")
@click.option("--concurrency", type=click.IntRange(min=1), default=2, show_default=True,
              help="Most review runs at once.")
@click.option("--poll", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds between ticks.")
@click.option("--now", "now_text", default=None, hidden=True, help="Evaluate schedules as of this time.")
@click.pass_context
def scheduler(ctx: click.Context, once: bool, concurrency: int, poll: float, now_text: str | None) -> None:
    """Run due reviews: lead this ledger's schedules until SIGTERM (or --once).

    One scheduler leads a ledger at a time; a second waits as a standby. Due runs start within
    their grace period or are recorded as missed and alerted; failed runs are retried.

    \b
    Example:
      nbgov scheduler --concurrency 2
      nbgov scheduler --once          # from cron or a CI job
    """
    import threading

    from nbgov.alerts.sinks import find_alert_config
    from nbgov.reviews.scheduler import (
        FixedClock,
        Scheduler,
        TickReport,
        install_signal_handlers,
        parse_now,
    )

    clock = FixedClock(parse_now(now_text)) if now_text else None
    runner = Scheduler(_ledger(ctx), clock=clock, concurrency=concurrency, alerts=find_alert_config())
    if once:
        report = runner.run_once()
        if report is None:
            click.echo("another scheduler leads this ledger; nothing to do")
            return
        click.echo(f"started {len(report.launched) + len(report.retried)} run(s), recorded "
                   f"{len(report.missed)} missed, retried {report.alerts_retried} alert delivery(ies)")
        return
    stop = threading.Event()
    install_signal_handlers(stop)
    click.echo(f"scheduler: leading {runner.ledger.home} (or standing by); SIGTERM to stop", err=True)

    def show(tick: TickReport) -> None:
        if tick.launched or tick.missed or tick.retried:
            click.echo(f"started {len(tick.launched) + len(tick.retried)} run(s), recorded "
                       f"{len(tick.missed)} missed", err=True)

    runner.run_forever(stop, poll=poll, on_tick=show)


@click.group()
def alerts() -> None:
    """Alerts raised by reviews and schedules, and their deliveries."""


@alerts.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@output_format()
@click.pass_context
def alerts_list(ctx: click.Context, limit: int, fmt: str) -> None:
    """Recent alerts, where they were delivered and which sinks still fail.

    \b
    Example:
      nbgov alerts list
    """
    echo_rows(_ledger(ctx).query_arrow(
        "SELECT raised_at, reason, job, message, sinks, delivered, failing FROM alerts "
        "ORDER BY seq DESC LIMIT $n", {"n": limit}).table, fmt, max_rows=limit)


@alerts.command("retry")
@click.pass_context
def alerts_retry(ctx: click.Context) -> None:
    """Deliver again every alert whose delivery failed and whose wait is over.

    \b
    Example:
      nbgov alerts retry
    """
    from nbgov.alerts.raising import retry_alerts
    from nbgov.alerts.sinks import find_alert_config

    tried = retry_alerts(_ledger(ctx), find_alert_config())
    click.echo(f"retried {tried} delivery(ies)")


COMMANDS = (review, schedule, scheduler, alerts)
