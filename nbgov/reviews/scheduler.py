"""The scheduler: a long-running process (never a kernel) that runs due reviews.

One scheduler leads a ledger at a time (an exclusive lock on ``<home>/scheduler.lock``; a second
one waits as a standby and takes over when the leader exits). Each tick it reads the schedules in
force and, for each, the due times since the last one it handled:

* a due time within its grace period is started: ``nbgov review run ... --job --scheduled-for``
  in a child process, which claims ``(job, scheduled_for, attempt)`` under a lock, so a duplicate
  trigger (another scheduler, an Airflow retry) is a no-op;
* a due time past its grace period is recorded as missed (once) and alerted, then handled by the
  schedule's catch-up policy (skip, latest, all);
* a run that failed, timed out or lost its kernel is retried, up to the schedule's ``retries``,
  after a backoff of 1, 2, 4, ... minutes (at most an hour);
* alert deliveries that failed are retried.

An external scheduler (an exported Airflow DAG) triggers one slot at a time instead:
:func:`nbgov.reviews.triggers.judge_trigger` applies the same rules to it (is it a slot of the
schedule in force, is it past its grace period, what the catch-up policy says), so both run the
same slots.

At most ``concurrency`` runs go at once. SIGTERM stops launching, waits for the running reviews
and exits. The clock is injectable, so tests (and ``--now``) decide what "now" is.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from nbgov.alerts.raising import raise_alert, retry_alerts
from nbgov.errors import NbgovError
from nbgov.events import ReviewMissed, SchedulerStarted, SchedulerStopped
from nbgov.identity import hostname
from nbgov.reviews.cron import occurrences
from nbgov.reviews.parameters import parameter_argv
from nbgov.reviews.schedules import Schedule, list_schedules

if TYPE_CHECKING:
    from nbgov.alerts.sinks import LoadedAlerts
    from nbgov.ledger.facade import Ledger

__all__ = ["Clock", "Scheduler", "SystemClock", "TickReport", "handled_slots", "parse_instant",
           "record_missed"]

MAX_BACKOFF = 3600.0
MAX_OCCURRENCES = 100_000


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Launch:
    """One review run to start."""

    schedule: Schedule
    scheduled_for: dt.datetime
    attempt: int
    late: bool = False

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.schedule.job, self.scheduled_for.isoformat(), self.attempt)


@dataclass
class TickReport:
    """What one tick did."""

    launched: list[Launch] = field(default_factory=list)
    missed: list[tuple[str, dt.datetime]] = field(default_factory=list)
    retried: list[Launch] = field(default_factory=list)
    alerts_retried: int = 0


def backoff(attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``: 1, 2, 4, ... minutes, at most an hour."""
    return float(min(60.0 * 2 ** (attempt - 1), MAX_BACKOFF))


class Scheduler:
    """Runs due reviews for one ledger (see the module documentation).

    Parameters
    ----------
    ledger
        The ledger whose schedules to run.
    clock
        Where "now" comes from (default: the system clock, UTC).
    concurrency
        Most review runs at once.
    alerts
        Alert sinks (default: none; alerts are still recorded).
    command
        The command that runs one review (default: this Python's ``-m nbgov``).
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        clock: Clock | None = None,
        concurrency: int = 2,
        alerts: LoadedAlerts | None = None,
        command: list[str] | None = None,
    ) -> None:
        if concurrency < 1:
            raise NbgovError(f"concurrency must be 1 or more, not {concurrency}")
        self.ledger = ledger
        self.clock = clock or SystemClock()
        self.concurrency = concurrency
        self.alerts = alerts
        self.command = command or [sys.executable, "-m", "nbgov"]
        self.running: dict[tuple[str, str, int], subprocess.Popen[bytes]] = {}
        self.queue: list[Launch] = []
        self._queued: set[tuple[str, str, int]] = set()
        #: Set once the scheduler is told to stop (run_forever's event): nothing queued starts after.
        self._stop: threading.Event | None = None

    # -- leadership --------------------------------------------------------------------------

    @contextmanager
    def leadership(self, *, wait: bool, stop: threading.Event | None = None,
                   poll: float = 5.0) -> Iterator[bool]:
        """Hold the ledger's scheduler lock (or, with ``wait=False``, yield False if another holds it)."""
        self.ledger.ensure_home()
        with open(self.ledger.home / "scheduler.lock", "a+") as fh:
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not wait or (stop is not None and stop.is_set()):
                        yield False
                        return
                    (stop.wait(poll) if stop is not None else time.sleep(poll))
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- one tick ------------------------------------------------------------------------------

    def tick(self) -> TickReport:
        """Handle everything due now: record misses, queue and start runs, retry, deliver alerts."""
        now = self.clock.now()
        report = TickReport()
        self._reap()
        handled = self._handled()
        for schedule in list_schedules(self.ledger):
            self._plan(schedule, now, handled, report)
        report.retried = self._retries(now)
        for launch in report.retried:
            self._enqueue(launch)
        self._start_queued()
        report.alerts_retried = retry_alerts(self.ledger, self.alerts, now=now)
        return report

    def _handled(self) -> dict[str, dt.datetime]:
        return handled_slots(self.ledger)

    def _plan(self, schedule: Schedule, now: dt.datetime, handled: dict[str, dt.datetime],
              report: TickReport) -> None:
        after = max(schedule.effective_from, handled.get(schedule.job, schedule.effective_from))
        due = [o for o in occurrences(schedule.cron, schedule.tz, after, now, limit=MAX_OCCURRENCES)
               if (schedule.job, o.at.isoformat(), 1) not in self._queued]
        grace = dt.timedelta(seconds=schedule.grace_s)
        late = [o.at for o in due if now > o.at + grace]
        for at in late:
            self._record_missed(schedule, at, now)
            report.missed.append((schedule.job, at))
        catch_up = {"skip": [], "latest": late[-1:], "all": late}[schedule.catch_up]
        on_time = [o.at for o in due if now <= o.at + grace]
        if on_time and schedule.catch_up == "latest":
            catch_up = []  # a run on time is the latest run
        for at in catch_up:
            launch = Launch(schedule, at, 1, late=True)
            self._enqueue(launch)
            report.launched.append(launch)
        for at in on_time:
            launch = Launch(schedule, at, 1)
            self._enqueue(launch)
            report.launched.append(launch)

    def _record_missed(self, schedule: Schedule, at: dt.datetime, now: dt.datetime) -> None:
        record_missed(self.ledger, self.alerts, schedule, at, now)

    def _retries(self, now: dt.datetime) -> list[Launch]:
        """Failed scheduled runs whose next attempt is due (after the backoff)."""
        schedules = {s.job: s for s in list_schedules(self.ledger)}
        frame = self.ledger.query("""
            SELECT job, scheduled_for, max(attempt) AS attempt,
                   arg_max(status, attempt) AS status, arg_max(finished_at, attempt) AS finished_at
            FROM review_runs WHERE job IS NOT NULL GROUP BY job, scheduled_for""")
        launches = []
        for job, at, attempt, status, finished in zip(frame["job"], frame["scheduled_for"], frame["attempt"],
                                                      frame["status"], frame["finished_at"]):
            schedule = schedules.get(str(job))
            if schedule is None or status in ("succeeded", "running") or attempt > schedule.retries:
                continue
            if finished.to_pydatetime() + dt.timedelta(seconds=backoff(int(attempt))) > now:
                continue
            launch = Launch(schedule, at.to_pydatetime(), int(attempt) + 1)
            if launch.key not in self._queued:
                launches.append(launch)
        return launches

    # -- running -------------------------------------------------------------------------------

    def _enqueue(self, launch: Launch) -> None:
        if launch.key in self._queued:
            return
        self._queued.add(launch.key)
        self.queue.append(launch)

    def _start_queued(self) -> None:
        if self._stop is not None and self._stop.is_set():
            self.queue.clear()  # told to stop: a run that ended meanwhile frees no slot for another
            return
        while self.queue and len(self.running) < self.concurrency:
            launch = self.queue.pop(0)
            self.running[launch.key] = self._spawn(launch)

    def review_argv(self, launch: Launch) -> list[str]:
        """The ``nbgov review run`` command of *launch* (the parameters exactly as recorded)."""
        schedule = launch.schedule
        argv = [*self.command, "--home", str(self.ledger.home), "review", "run", schedule.notebook,
                "--job", schedule.job, "--scheduled-for", launch.scheduled_for.isoformat(),
                "--attempt", str(launch.attempt), *parameter_argv(schedule.parameters)]
        if schedule.timeout_s:
            argv += ["--timeout", str(schedule.timeout_s)]
        return argv

    def _spawn(self, launch: Launch) -> subprocess.Popen[bytes]:
        argv = self.review_argv(launch)
        log = self.ledger.home / "runs" / "scheduler.log"
        log.parent.mkdir(mode=0o700, exist_ok=True)
        with open(log, "ab") as out:
            return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)

    def _reap(self) -> None:
        for key, process in list(self.running.items()):
            if process.poll() is not None:
                del self.running[key]

    def wait(self, stop: threading.Event | None = None) -> None:
        """Start everything queued and wait until every run has ended."""
        if stop is not None:
            self._stop = stop
        while self.queue or self.running:
            self._reap()
            self._start_queued()
            time.sleep(0.2)

    # -- the process ---------------------------------------------------------------------------

    def run_once(self) -> TickReport | None:
        """Run what is due now and wait for it; None when another scheduler leads this ledger."""
        with self.leadership(wait=False) as leading:
            if not leading:
                return None
            self._announce()
            report = self.tick()
            self.wait()
            self._farewell("once")
            return report

    def run_forever(self, stop: threading.Event, *, poll: float = 30.0,
                    on_tick: Callable[[TickReport], Any] | None = None) -> None:
        """Lead (or stand by until leading), tick every ``poll`` seconds until ``stop`` is set."""
        self._stop = stop
        with self.leadership(wait=True, stop=stop) as leading:
            if not leading:
                return
            self._announce()
            try:
                while not stop.is_set():
                    report = self.tick()
                    if on_tick is not None:
                        on_tick(report)
                    stop.wait(poll)
                    self._reap()
                self.wait(stop)
            finally:
                self._farewell("signal" if stop.is_set() else "error")

    def _announce(self) -> None:
        self.ledger.append(SchedulerStarted(host=hostname(), pid=os.getpid(), concurrency=self.concurrency))

    def _farewell(self, reason: str) -> None:
        self.ledger.append(SchedulerStopped(host=hostname(), pid=os.getpid(), reason=reason))
        self.ledger.ingest()


def handled_slots(ledger: Ledger) -> dict[str, dt.datetime]:
    """Per job, the latest due time already started or recorded as missed."""
    frame = ledger.query("""
        SELECT job, max(due) AS due FROM (
          SELECT job, scheduled_for AS due FROM review_runs WHERE job IS NOT NULL
          UNION ALL SELECT job, scheduled_for FROM missed_runs) AS handled GROUP BY job""")
    return {str(job): due.to_pydatetime() for job, due in zip(frame["job"], frame["due"])}


def record_missed(ledger: Ledger, alerts: LoadedAlerts | None, schedule: Schedule, at: dt.datetime,
                  now: dt.datetime) -> None:
    """Record that the due time *at* did not start within its grace period, and alert."""
    ledger.append(ReviewMissed(job=schedule.job, scheduled_for=at.isoformat(),
                               grace_s=schedule.grace_s, catch_up=schedule.catch_up))
    ledger.ingest()
    raise_alert(ledger, alerts, reason="missed", job=schedule.job, now=now,
                message=f"review {schedule.job} due {at.isoformat()} did not start within "
                        f"{schedule.grace_s:.0f}s (catch-up: {schedule.catch_up})")


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set *stop*: the scheduler finishes running reviews and exits."""
    def handle(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def parse_now(text: str) -> dt.datetime:
    """``--now``: an ISO-8601 instant (UTC when no offset is given)."""
    return parse_instant(text, "--now")


def parse_instant(text: str, option: str) -> dt.datetime:
    """An ISO-8601 instant given to *option* (UTC when no offset is given)."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise NbgovError(f"{option} {text!r} is not an ISO-8601 time "
                         "(e.g. 2026-11-30T06:00:00+00:00)") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class FixedClock:
    """A clock that says what it is told (``--now``, tests)."""

    def __init__(self, now: dt.datetime) -> None:
        self.value = now

    def now(self) -> dt.datetime:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += dt.timedelta(seconds=seconds)
