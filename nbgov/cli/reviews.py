"""Review commands of the ``nbgov`` CLI: ``review run``, ``review list``."""

from __future__ import annotations

from pathlib import Path

import click

from nbgov.cli.common import ProgressBar, echo_rows, output_format
from nbgov.cli.common import ledger_of as _ledger


@click.group()
def review() -> None:
    """Review notebooks run under nbgov's supervision."""


@review.command("run")
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option("-p", "--parameter", "parameters", nargs=2, multiple=True, metavar="NAME VALUE",
              help="Set a parameter of the notebook's parameters cell (converted to its type).")
@click.option("--timeout", type=float, default=None, metavar="SECONDS",
              help="Kill the run's kernel after this many seconds (status timed_out).")
@click.option("--cwd", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The kernel's working directory (default: the notebook's folder).")
@click.option("--job", default=None, help="The schedule this run belongs to (set by schedulers).")
@click.option("--scheduled-for", default=None, metavar="ISO-8601",
              help="The due time this run is for; with --job, a repeated trigger is a no-op.")
@click.option("--attempt", type=click.IntRange(min=1), default=1, show_default=True)
@click.pass_context
def review_run(ctx: click.Context, notebook: Path, parameters: tuple[tuple[str, str], ...],
               timeout: float | None, cwd: Path | None, job: str | None, scheduled_for: str | None,
               attempt: int) -> None:
    """Run NOTEBOOK with papermill under supervision; record its start, finish and status.

    Parameters are checked against the notebook's parameters cell before anything runs. The
    executed notebook is kept under <home>/runs/. Exit status: 0 succeeded, 1 failed, 3 timed
    out, 4 kernel died.

    \b
    Example:
      nbgov review run reviews/bias_review.ipynb -p model hmda_denial -p window_days 30 --timeout 600
    """
    from nbgov.alerts.sinks import find_alert_config
    from nbgov.reviews.runs import parameter_pairs, run_review

    alerts = find_alert_config()
    bar = ProgressBar("reviewing")
    try:
        result = run_review(_ledger(ctx), notebook, parameter_pairs(parameters), timeout=timeout,
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
@click.option("-p", "--parameter", "parameters", nargs=2, multiple=True, metavar="NAME VALUE")
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
def schedule_add(ctx: click.Context, notebook: Path, cron: str, tz: str,
                 parameters: tuple[tuple[str, str], ...], catch_up: str, retries: int,
                 timeout: float | None, grace: float | None, job: str | None, replace: bool) -> None:
    """Schedule NOTEBOOK (validated now: parameters, cron, time zone).

    \b
    Example:
      nbgov schedule add reviews/bias_review.ipynb --cron "0 6 * * MON" --tz Europe/Berlin \\
          -p model hmda_denial --catch-up latest --retries 2 --timeout 900
    """
    from nbgov.reviews.cron import next_occurrence
    from nbgov.reviews.runs import parameter_pairs
    from nbgov.reviews.schedules import add_schedule

    ledger = _ledger(ctx)
    added = add_schedule(ledger, notebook, cron=cron, tz=tz, parameters=parameter_pairs(parameters),
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

    \b
    Example:
      nbgov schedule export --airflow ~/airflow/dags
    """
    from nbgov.reviews.airflow import export_airflow
    from nbgov.reviews.schedules import list_schedules

    ledger = _ledger(ctx)
    written = export_airflow(list_schedules(ledger), airflow_dir, home=ledger.home.resolve())
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
