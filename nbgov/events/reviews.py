"""Events of reviews: review runs, schedules, missed runs, the scheduler, and alerts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from nbgov.events.base import Event

__all__ = [
    "AlertDelivered",
    "AlertDeliveryFailed",
    "AlertRaised",
    "ReviewMissed",
    "ReviewRunFinished",
    "ReviewRunStarted",
    "ScheduleRemoved",
    "ScheduleSet",
    "SchedulerStarted",
    "SchedulerStopped",
]


@dataclass(frozen=True)
class ReviewRunStarted(Event):
    """``nbgov review run`` launched a notebook (its events carry ``session.run_id``).

    ``job``, ``scheduled_for`` and ``attempt`` identify a scheduled run: ``(job, scheduled_for,
    attempt)`` is started at most once.
    """

    TYPE: ClassVar[str] = "review_run_started"
    run_id: str
    notebook: str
    notebook_sha256: str
    parameters: dict[str, Any]
    output: str
    timeout_s: float | None = None
    job: str | None = None
    scheduled_for: str | None = None
    attempt: int = 1
    host: str | None = None
    pid: int | None = None


@dataclass(frozen=True)
class ReviewRunFinished(Event):
    """How a review run ended, as nbgov's supervision saw it (not the output notebook's metadata).

    ``status``: succeeded, failed, timed_out or kernel_died; ``cell_index`` the cell that failed,
    was running at the timeout or when the kernel died; ``output_fingerprint`` the BLAKE3 of the
    executed notebook kept under the ledger directory.
    """

    TYPE: ClassVar[str] = "review_run_finished"
    run_id: str
    status: str
    cells_total: int
    cells_executed: int
    duration_us: int
    output: str
    output_fingerprint: str | None = None
    cell_index: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    job: str | None = None
    scheduled_for: str | None = None
    attempt: int = 1


@dataclass(frozen=True)
class ScheduleSet(Event):
    """A review schedule was added or changed (the latest ``schedule_set`` of a job is in force)."""

    TYPE: ClassVar[str] = "schedule_set"
    job: str
    notebook: str
    cron: str
    tz: str
    parameters: dict[str, Any]
    catch_up: str
    retries: int
    timeout_s: float | None
    grace_s: float
    effective_from: str


@dataclass(frozen=True)
class ScheduleRemoved(Event):
    """A review schedule was removed."""

    TYPE: ClassVar[str] = "schedule_removed"
    PLAIN: ClassVar[bool] = True
    job: str
    reason: str | None = None


@dataclass(frozen=True)
class ReviewMissed(Event):
    """A scheduled review did not start within its grace period (recorded once per due time)."""

    TYPE: ClassVar[str] = "review_missed"
    job: str
    scheduled_for: str
    grace_s: float
    catch_up: str


@dataclass(frozen=True)
class AlertRaised(Event):
    """An alert (failure, timeout, dead kernel, missed run, policy breach), deduplicated by ``key``
    (job, reason and time window)."""

    TYPE: ClassVar[str] = "alert_raised"
    key: str
    reason: str
    message: str
    job: str | None = None
    run_id: str | None = None
    window_start: str | None = None
    sinks: list[str] | None = None


@dataclass(frozen=True)
class AlertDelivered(Event):
    """An alert reached a sink."""

    TYPE: ClassVar[str] = "alert_delivered"
    PLAIN: ClassVar[bool] = True
    alert: str
    sink: str
    attempt: int


@dataclass(frozen=True)
class AlertDeliveryFailed(Event):
    """Delivering an alert to a sink failed; it is retried from ``retry_after`` on."""

    TYPE: ClassVar[str] = "alert_delivery_failed"
    PLAIN: ClassVar[bool] = True
    alert: str
    sink: str
    attempt: int
    error: str
    retry_after: str


@dataclass(frozen=True)
class SchedulerStarted(Event):
    """A scheduler process became the leader of this ledger."""

    TYPE: ClassVar[str] = "scheduler_started"
    PLAIN: ClassVar[bool] = True
    host: str
    pid: int
    concurrency: int


@dataclass(frozen=True)
class SchedulerStopped(Event):
    """The leading scheduler stopped (``reason``: signal, once, error)."""

    TYPE: ClassVar[str] = "scheduler_stopped"
    PLAIN: ClassVar[bool] = True
    host: str
    pid: int
    reason: str
