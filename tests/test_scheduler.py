"""Schedules and the scheduler, with an injectable clock and real review runs."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nbgov.alerts.raising import raise_alert, retry_alerts
from nbgov.alerts.sinks import AlertConfig, LoadedAlerts
from nbgov.errors import CronError, ReviewError, ScheduleError
from nbgov.ledger.facade import Ledger
from nbgov.reviews.cron import occurrences
from nbgov.reviews.parameters import papermill_parameters
from nbgov.reviews.scheduler import FixedClock, Launch, Scheduler, TickReport
from nbgov.reviews.schedules import add_schedule, list_schedules, remove_schedule, same_values
from nbgov.reviews.triggers import judge_trigger
from support.helpers import clean_env, review_notebook, run_cli, wait_for

UTC = dt.UTC


@pytest.fixture
def ledger(home: Path) -> Ledger:
    return Ledger.init(home)


@pytest.fixture
def notebooks(tmp_path: Path) -> Path:
    folder = tmp_path / "reviews"
    folder.mkdir()
    review_notebook(folder / "ok.ipynb", "y = x * 2")
    review_notebook(folder / "fails.ipynb", "raise RuntimeError('always')")
    # Runs until the test releases it (creates reviews/release), saying first that it is running.
    review_notebook(folder / "slow.ipynb", "import pathlib, time",
                    f"here = pathlib.Path({str(folder)!r})\n"
                    "(here / 'started').touch()\n"
                    "deadline = time.monotonic() + 300\n"
                    "while not (here / 'release').exists():\n"
                    "    if time.monotonic() > deadline:\n"
                    "        raise TimeoutError('the test never released this review')\n"
                    "    time.sleep(0.05)")
    return folder


def _recent_midnight() -> dt.datetime:
    """A clock origin close to the real time (run timestamps are real; backoffs compare them)."""
    return dt.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _file_alerts(path: Path) -> LoadedAlerts:
    config = AlertConfig.model_validate({"sinks": [{"type": "file", "path": str(path)}]})
    return LoadedAlerts(config, "test")


def _runs(ledger: Ledger) -> list[tuple[str, str, int, str]]:
    frame = ledger.query("SELECT job, scheduled_for, attempt, status FROM review_runs ORDER BY job, scheduled_for, attempt")
    return [(j, s.isoformat(), int(a), st) for j, s, a, st in frame.itertuples(index=False, name=None)]


def test_schedule_changes_are_recorded_and_bad_input_records_nothing(ledger: Ledger, notebooks: Path) -> None:
    origin = _recent_midnight()
    added = add_schedule(ledger, notebooks / "ok.ipynb", cron="0 6 * * MON", tz="Europe/Berlin",
                         parameters={"x": 7}, catch_up="latest", retries=2, timeout=60, now=origin)
    assert added.parameters == {"x": 7} and added.grace_s == 3600  # as given: nothing is converted
    with pytest.raises(ScheduleError, match="a schedule named 'ok' exists"):
        add_schedule(ledger, notebooks / "ok.ipynb", cron="0 7 * * *", now=origin)
    add_schedule(ledger, notebooks / "ok.ipynb", cron="*/10 * * * *", replace=True, now=origin)
    assert [(s.job, s.cron, s.grace_s) for s in list_schedules(ledger)] == [("ok", "*/10 * * * *", 300)]
    remove_schedule(ledger, "ok", reason="done")
    assert list_schedules(ledger) == []
    history = ledger.query("SELECT change, coalesce(cron, '-') FROM schedule_events ORDER BY seq")
    assert list(history.itertuples(index=False, name=None)) == [
        ("set", "0 6 * * MON"), ("set", "*/10 * * * *"), ("removed", "-")]
    bad = [
        (CronError, dict(cron="61 * * * *"), "minute must be 0-59"),
        (CronError, dict(cron="0 6 * * *", tz="Mars/Olympus"), "unknown time zone"),
        # text is never converted: "7" for an int parameter is refused like "seven" (nbgov once made it 7)
        (ReviewError, dict(cron="0 6 * * *", parameters={"x": "7"}), "must be int"),
        (ReviewError, dict(cron="0 6 * * *", parameters={"z": 1}), "unknown parameter"),
        # what the ledger's JSON cannot give back exactly, and what looks like a secret
        (ScheduleError, dict(cron="0 6 * * *", parameters={"x": 2**60}), "cannot be recorded exactly"),
        (ScheduleError, dict(cron="0 6 * * *", parameters={"label": "ghp_" + "a1B2" * 9}), "looks like a secret"),
        (ScheduleError, dict(cron="0 6 * * *", catch_up="some"), "catch-up 'some'"),
    ]
    for error, options, message in bad:
        with pytest.raises(error, match=message):
            add_schedule(ledger, notebooks / "ok.ipynb", **options)  # type: ignore[arg-type]
    with pytest.raises(ReviewError, match="no notebook at"):
        add_schedule(ledger, notebooks / "missing.ipynb", cron="0 6 * * *")
    assert ledger.query("SELECT count(*) AS n FROM schedule_events")["n"].iloc[0] == 3
    cli = run_cli("--home", str(ledger.home), "schedule", "add", str(notebooks / "ok.ipynb"), "--cron", "* * *")
    assert cli.returncode == 1 and "invalid cron expression '* * *'" in cli.stderr


@pytest.mark.slow
def test_catch_up_policies_record_misses_once_and_run_as_documented(ledger: Ledger, notebooks: Path,
                                                                    tmp_path: Path) -> None:
    origin = _recent_midnight() - dt.timedelta(days=4)
    for policy in ("skip", "latest", "all"):
        add_schedule(ledger, notebooks / "ok.ipynb", cron="0 6 * * *", catch_up=policy, job=policy,
                     grace=600, now=origin)
    clock = FixedClock(origin + dt.timedelta(days=2, hours=7))  # three due times, the last an hour late
    alerts = tmp_path / "alerts.jsonl"
    scheduler = Scheduler(ledger, clock=clock, concurrency=2, alerts=_file_alerts(alerts))
    scheduler.tick()
    scheduler.wait()
    scheduler.tick()  # nothing new: misses are recorded once, runs started once
    scheduler.wait()
    due = [(origin + dt.timedelta(days=d, hours=6)).isoformat() for d in range(3)]
    missed = ledger.query("SELECT job, scheduled_for FROM missed_runs ORDER BY job, scheduled_for")
    assert [(j, s.isoformat()) for j, s in missed.itertuples(index=False, name=None)] == [
        (job, at) for job in ("all", "latest", "skip") for at in due]
    assert _runs(ledger) == [("all", at, 1, "succeeded") for at in due] + [("latest", due[-1], 1, "succeeded")]
    # one alert per job and window, delivered to the sink
    lines = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert sorted((line["job"], line["reason"]) for line in lines) == [
        ("all", "missed"), ("latest", "missed"), ("skip", "missed")]


@pytest.mark.slow
def test_a_dst_fall_back_day_runs_a_0230_local_job_once(ledger: Ledger, notebooks: Path) -> None:
    # Europe/Berlin, 2026-10-25: 02:30 local happens at 00:30 UTC and again at 01:30 UTC.
    add_schedule(ledger, notebooks / "ok.ipynb", cron="30 2 * * *", tz="Europe/Berlin", job="berlin",
                 now=dt.datetime(2026, 10, 24, 12, 0, tzinfo=UTC))
    clock = FixedClock(dt.datetime(2026, 10, 24, 23, 0, tzinfo=UTC))
    scheduler = Scheduler(ledger, clock=clock)
    while clock.now() < dt.datetime(2026, 10, 25, 3, 0, tzinfo=UTC):
        scheduler.tick()
        scheduler.wait()
        clock.advance(15 * 60)
    assert _runs(ledger) == [("berlin", "2026-10-25T00:30:00+00:00", 1, "succeeded")]
    assert ledger.query("SELECT count(*) AS n FROM missed_runs")["n"].iloc[0] == 0


@pytest.mark.slow
def test_failed_runs_are_retried_after_the_backoff(ledger: Ledger, notebooks: Path) -> None:
    hour = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    # scheduled a minute before this hour's run (also in the first hour of a UTC day)
    add_schedule(ledger, notebooks / "fails.ipynb", cron="0 * * * *", retries=1, job="flaky",
                 now=hour - dt.timedelta(minutes=1))
    clock = FixedClock(hour + dt.timedelta(minutes=1))
    scheduler = Scheduler(ledger, clock=clock)
    assert len(scheduler.tick().launched) == 1
    scheduler.wait()
    assert scheduler.tick().retried == []  # the backoff (a minute) has not passed
    clock.value = dt.datetime.now(UTC) + dt.timedelta(seconds=61)
    retried = scheduler.tick().retried
    assert [launch.attempt for launch in retried] == [2]
    scheduler.wait()
    clock.advance(600)
    assert scheduler.tick().retried == []  # retries exhausted
    assert [row[2:] for row in _runs(ledger)] == [(1, "failed"), (2, "failed")]


@pytest.mark.slow
def test_two_schedulers_run_each_due_time_exactly_once(ledger: Ledger, notebooks: Path) -> None:
    origin = _recent_midnight()
    add_schedule(ledger, notebooks / "ok.ipynb", cron="0 6 * * *", job="daily", now=origin)
    ledger.ingest()
    now = (origin + dt.timedelta(hours=6, minutes=5)).isoformat()
    # two scheduler processes at once: one leads, the other finds the ledger led or nothing left to do
    argv = [sys.executable, "-m", "nbgov", "--home", str(ledger.home), "scheduler", "--once", "--now", now]
    both = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
            for _ in range(2)]
    for process in both:
        process.communicate(timeout=180)
    assert [p.returncode for p in both] == [0, 0]
    # and two in-process schedulers that both decide to start it (no leader lock): the claim decides
    clock = FixedClock(dt.datetime.fromisoformat(now) + dt.timedelta(days=1))
    first, second = Scheduler(ledger, clock=clock), Scheduler(ledger, clock=clock)
    assert len(first.tick().launched) == len(second.tick().launched) == 1
    first.wait()
    second.wait()
    runs = _runs(ledger)
    assert [(job, attempt, status) for job, _, attempt, status in runs] == [("daily", 1, "succeeded")] * 2
    assert len({at for _, at, _, _ in runs}) == 2


@pytest.mark.slow
def test_concurrency_limit_and_clean_shutdown_on_sigterm(ledger: Ledger, notebooks: Path) -> None:
    origin = _recent_midnight()
    for job in ("a", "b"):
        add_schedule(ledger, notebooks / "slow.ipynb", cron="0 6 * * *", job=job, now=origin)
    ledger.ingest()
    now = (origin + dt.timedelta(hours=6, minutes=1)).isoformat()
    process = subprocess.Popen(
        [sys.executable, "-m", "nbgov", "--home", str(ledger.home), "scheduler", "--concurrency", "1",
         "--poll", "0.5", "--now", now], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    try:
        # SIGTERM while one review runs (held in its cell) and the other is queued; the running one
        # is released only after the signal was sent.
        wait_for(lambda: (notebooks / "started").exists(), "the first review to run", processes=[process])
        process.send_signal(signal.SIGTERM)
        (notebooks / "release").touch()
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    runs = Ledger(ledger.home).query("SELECT job, status, started_at, finished_at FROM review_runs ORDER BY started_at")
    assert list(runs["status"]) == ["succeeded"]  # the running review finished; the queued one was not started
    stopped = Ledger(ledger.home).query("SELECT payload->>'reason' AS reason FROM events WHERE type = 'scheduler_stopped'")
    assert list(stopped["reason"]) == ["signal"]
    # --once with concurrency 1 runs the remaining one after the other, never both at once
    once = run_cli("--home", str(ledger.home), "scheduler", "--once", "--concurrency", "1", "--now", now)
    assert once.returncode == 0, once.stderr
    runs = Ledger(ledger.home).query("SELECT job, started_at, finished_at FROM review_runs ORDER BY started_at")
    assert sorted(runs["job"]) == ["a", "b"]


def test_a_second_scheduler_stands_by_while_one_leads(ledger: Ledger) -> None:
    leader = Scheduler(ledger)
    with leader.leadership(wait=False) as leading:
        assert leading
        result = run_cli("--home", str(ledger.home), "scheduler", "--once")
        assert result.returncode == 0 and "another scheduler leads this ledger" in result.stdout


class _FlakyHook(BaseHTTPRequestHandler):
    calls: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).calls.append(body)
        self.send_response(503 if len(type(self).calls) == 1 else 204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_failing_webhook_is_recorded_and_retried_until_delivered(ledger: Ledger) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyHook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        alerts = LoadedAlerts(AlertConfig.model_validate({"sinks": [{"type": "webhook", "url": url, "name": "ops"}]}),
                              "test")
        now = dt.datetime.now(UTC)
        alert = raise_alert(ledger, alerts, reason="failed", job="nightly", message="review failed", now=now)
        assert alert is not None
        assert raise_alert(ledger, alerts, reason="failed", job="nightly", message="again", now=now) is None
        assert retry_alerts(ledger, alerts, now=now) == 0  # its wait is not over
        assert retry_alerts(ledger, alerts, now=now + dt.timedelta(seconds=61)) == 1
        assert retry_alerts(ledger, alerts, now=now + dt.timedelta(hours=2)) == 0  # delivered: done
    finally:
        server.shutdown()
    assert len(_FlakyHook.calls) == 2 and json.loads(_FlakyHook.calls[1])["message"] == "review failed"
    deliveries = ledger.query("SELECT sink, outcome, attempt, error FROM alert_deliveries ORDER BY seq")
    rows = list(deliveries.itertuples(index=False, name=None))
    assert [r[:3] for r in rows] == [("ops", "failed", 1), ("ops", "delivered", 2)]
    assert "503" in rows[0][3]
    state = ledger.query("SELECT delivered, failing FROM alerts").iloc[0]
    assert state["delivered"] == 1 and state["failing"] is None


def test_a_schedules_parameters_are_given_to_every_run_exactly(ledger: Ledger, tmp_path: Path) -> None:
    notebook = review_notebook(tmp_path / "typed.ipynb", parameters=(
        "label = 'a'\nx = 1\nratio = 0.5\nflags = {}\nanything = None\napi_token = None"))
    values = {"label": "007", "x": 7, "ratio": 2.5, "flags": {"when": "2026-01-01", "on": "yes", "b": True},
              "anything": "{{ 7*7 }}\nit's \"quoted\""}
    add_schedule(ledger, notebook, cron="0 6 * * *", parameters=values, job="typed",
                 now=dt.datetime(2026, 11, 1, tzinfo=UTC))
    (schedule,) = list_schedules(ledger)
    assert same_values(schedule.parameters, values)
    argv = Scheduler(ledger).review_argv(Launch(schedule, dt.datetime(2026, 11, 2, 6, tzinfo=UTC), 1))
    given = argv.index("-y")
    assert same_values(papermill_parameters(yaml_texts=[argv[given + 1]]), values)  # papermill's -y reading
    for refused, message in [({"ratio": 3.0}, "stored as 3"), ({"ratio": float("nan")}, "no NaN"),
                             ({"flags": {1: "a"}}, "text keys"), ({"api_token": "hunter2"}, "looks like a secret")]:
        with pytest.raises(ScheduleError) as refusal:
            add_schedule(ledger, notebook, cron="0 6 * * *", parameters=refused, job="refused")
        assert message in refusal.value.one_line() and "hunter2" not in refusal.value.one_line()


def _missed(ledger: Ledger) -> list[str]:
    frame = ledger.query("SELECT scheduled_for FROM missed_runs ORDER BY scheduled_for")
    return [at.isoformat() for at in frame["scheduled_for"]]


@pytest.mark.parametrize("policy", ["skip", "latest", "all"])
@pytest.mark.parametrize("last_on_time", [False, True])
def test_airflow_triggers_run_the_slots_nbgovs_scheduler_runs(tmp_path: Path, notebooks: Path, policy: str,
                                                              last_on_time: bool) -> None:
    origin = dt.datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
    # three due times at 06:00; the last one 5 minutes ago (on time, grace 10 min) or an hour ago (late)
    now = origin + dt.timedelta(days=2, hours=6, minutes=5 if last_on_time else 60)
    ours, airflows = Ledger.init(tmp_path / "scheduler"), Ledger.init(tmp_path / "airflow")
    for ledger in (ours, airflows):
        add_schedule(ledger, notebooks / "ok.ipynb", cron="0 6 * * *", catch_up=policy, job="daily", grace=600,
                     now=origin)
    # nbgov's scheduler: what one tick plans (its runs are not started here)
    report = TickReport()
    Scheduler(ours, clock=FixedClock(now))._plan(list_schedules(ours)[0], now, {}, report)
    planned = sorted(launch.scheduled_for.isoformat() for launch in report.launched)
    # Airflow: catchup=True (all) triggers every slot since start_date, in order; catchup=False only the latest
    slots = [o.at for o in occurrences("0 6 * * *", "UTC", origin, now)]
    assert len(slots) == 3
    triggered = slots if policy == "all" else slots[-1:]
    judged = [judge_trigger(airflows, "daily", at, now=now) for at in triggered]
    assert [t.scheduled_for.isoformat() for t in judged if t.run] == planned
    assert _missed(airflows) == _missed(ours)  # the same missed times recorded, once
    again = judge_trigger(airflows, "daily", triggered[-1], now=now)  # a repeated trigger records nothing more
    assert again.run == judged[-1].run and _missed(airflows) == _missed(ours)
    retry = judge_trigger(airflows, "daily", slots[0], attempt=2, now=now)
    assert retry.run  # a retry always runs (as nbgov's scheduler retries a failed run)


def test_a_trigger_must_be_a_slot_of_the_schedule_in_force(ledger: Ledger, notebooks: Path) -> None:
    origin = dt.datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    add_schedule(ledger, notebooks / "ok.ipynb", cron="0 6 * * *", parameters={"x": 3}, job="daily", now=origin)
    ok = judge_trigger(ledger, "daily", dt.datetime(2026, 11, 3, 6, tzinfo=UTC), notebook=notebooks / "ok.ipynb",
                       parameters={"x": 3}, now=dt.datetime(2026, 11, 3, 6, 1, tzinfo=UTC))
    assert ok.run and ok.reason is None
    for at, kwargs, message in [
        (dt.datetime(2026, 11, 2, 6, tzinfo=UTC), {}, "is not a slot of schedule 'daily'"),  # before it was added
        (dt.datetime(2026, 11, 3, 6, 30, tzinfo=UTC), {}, "is not a slot"),
        (dt.datetime(2026, 11, 3, 6, tzinfo=UTC), {"parameters": {"x": 4}}, "parameters given differ"),
        (dt.datetime(2026, 11, 3, 6, tzinfo=UTC), {"notebook": notebooks / "fails.ipynb"}, "runs .*ok.ipynb"),
    ]:
        with pytest.raises(ScheduleError, match=message):
            judge_trigger(ledger, "daily", at, now=at, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ScheduleError, match="no schedule named 'weekly' is in force"):
        judge_trigger(ledger, "weekly", dt.datetime(2026, 11, 3, 6, tzinfo=UTC))
    assert _missed(ledger) == []


@pytest.mark.parametrize(("cron", "airflow_at", "slot"), [
    # fall back: Airflow runs a repeated 02:30 at its second occurrence (01:30 UTC), nbgov at its first
    ("30 2 * * *", "2026-10-25T01:30:00+00:00", "2026-10-25T00:30:00+00:00"),
    # spring forward: Airflow runs a missing 02:30 at 03:30 local, nbgov at the gap's end, 03:00
    ("30 2 * * *", "2026-03-29T01:30:00+00:00", "2026-03-29T01:00:00+00:00"),
    # an hourly cron: Airflow also runs the repeated hour's second pass; it stands for slots already run
    ("*/15 * * * *", "2026-10-25T01:15:00+00:00", "2026-10-25T00:45:00+00:00"),
])
def test_airflows_daylight_saving_instants_stand_for_nbgovs_slots(ledger: Ledger, notebooks: Path, cron: str,
                                                                  airflow_at: str, slot: str) -> None:
    at = dt.datetime.fromisoformat(airflow_at)
    add_schedule(ledger, notebooks / "ok.ipynb", cron=cron, tz="Europe/Berlin", job="berlin",
                 now=dt.datetime.fromisoformat(slot) - dt.timedelta(minutes=1))
    trigger = judge_trigger(ledger, "berlin", at, now=at + dt.timedelta(seconds=5))
    assert trigger.run and trigger.scheduled_for.isoformat() == slot
    assert trigger.reason is not None and "daylight-saving" in trigger.reason
