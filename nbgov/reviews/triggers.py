"""External triggers: a slot an external scheduler (an exported Airflow DAG) starts, judged by the
rules of nbgov's own scheduler (:mod:`nbgov.reviews.scheduler`).

nbgov's scheduler finds the due times itself; Airflow triggers one slot at a time and calls
``nbgov review run --as-scheduled``, which asks :func:`judge_trigger` whether that slot is one of
the schedule in force, whether it is past its grace period (then recorded as missed) and what the
catch-up policy says, so both schedulers run the same slots and record the same missed ones.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbgov.errors import ReviewError, ScheduleError
from nbgov.reviews.cron import Occurrence, occurrences
from nbgov.reviews.runs import claims_lock
from nbgov.reviews.scheduler import MAX_OCCURRENCES, handled_slots, record_missed
from nbgov.reviews.schedules import Schedule, list_schedules, same_values

if TYPE_CHECKING:
    from nbgov.alerts.sinks import LoadedAlerts
    from nbgov.ledger.facade import Ledger

__all__ = ["Trigger", "judge_trigger"]

#: How far before a trigger its slot may lie: Airflow places a wall-clock time in a daylight-saving
#: change differently (the second of a repeated time; a missing time an hour on), never further.
_DST_REACH = dt.timedelta(hours=3)


@dataclass(frozen=True)
class Trigger:
    """How nbgov's scheduling rules judge an external trigger of a schedule (see :func:`judge_trigger`).

    ``scheduled_for`` is the schedule's slot the trigger stands for (the run is recorded for it);
    ``run`` says whether to run it, ``reason`` why not (or how a trigger at another instant was
    mapped to the slot), ``missed`` the due times this judgement recorded as missed.
    """

    run: bool
    schedule: Schedule
    scheduled_for: dt.datetime
    reason: str | None = None
    missed: tuple[dt.datetime, ...] = ()


def judge_trigger(
    ledger: Ledger,
    job: str,
    at: dt.datetime,
    *,
    notebook: str | os.PathLike[str] | None = None,
    parameters: dict[str, Any] | None = None,
    attempt: int = 1,
    now: dt.datetime | None = None,
    alerts: LoadedAlerts | None = None,
) -> Trigger:
    """Judge an external scheduler's trigger of *job* for the time *at*, as nbgov's scheduler would.

    * *at* must be a slot of the schedule in force, after it took effect. On a day the clocks
      change, Airflow places a wall-clock time inside the change at another instant than nbgov
      (it runs a repeated 02:30 at its second occurrence, a missing one an hour later): such a
      trigger stands for the schedule's slot of that wall-clock time, the latest slot before it
      (the run is recorded for that slot, so a second trigger of it is a no-op).
    * A first attempt triggered after the slot's grace period (counted from *at*) is recorded as
      missed and alerted, once; then the catch-up policy decides: ``skip`` runs nothing,
      ``latest`` runs it only if no later slot is due by now, ``all`` runs it. A retry (attempt 2
      or more) always runs.
    * With ``skip`` or ``latest`` the external scheduler does not trigger the slots it skipped
      (Airflow's ``catchup=False``): the slots before this one that nothing handled and whose
      grace period is over are recorded as missed, as nbgov's scheduler records them.
    * *notebook* and *parameters*, when given, must be the schedule's (a DAG exported before the
      schedule changed is refused, not run with stale values).

    Raises
    ------
    ScheduleError
        No schedule named *job* is in force, *at* is not one of its slots, or the notebook or
        parameters differ from the schedule's.
    """
    now = now or dt.datetime.now(dt.UTC)
    if at.utcoffset() is None:
        raise ReviewError(f"the scheduled time {at.isoformat()} has no UTC offset")
    schedule = next((s for s in list_schedules(ledger) if s.job == job), None)
    if schedule is None:
        raise ScheduleError(f"no schedule named {job!r} is in force",
                            hint="it was removed or renamed: remove its Airflow DAG, or re-export "
                                 "the DAGs with nbgov schedule export --airflow")
    _same_as_scheduled(schedule, notebook, parameters)
    slot = _slot_of(schedule, at)
    if slot is None:
        raise ScheduleError(
            f"{at.isoformat()} is not a slot of schedule {job!r} ({schedule.cron}, {schedule.tz}) "
            f"after it took effect at {schedule.effective_from.isoformat()}",
            hint="the schedule changed since its DAG was exported: re-export it with nbgov schedule "
                 "export --airflow")
    note = (None if slot.at == at else
            f"triggered at {at.isoformat()} for the slot {slot.at.isoformat()} (daylight-saving change)")
    grace = dt.timedelta(seconds=schedule.grace_s)
    with claims_lock(ledger.home):
        if attempt > 1 or _started(ledger, job, slot.at):
            return Trigger(True, schedule, slot.at, note)  # a retry, or a repeat the run will refuse
        missed: list[dt.datetime] = []
        if schedule.catch_up != "all":
            since = max(schedule.effective_from, handled_slots(ledger).get(job, schedule.effective_from))
            for earlier in occurrences(schedule.cron, schedule.tz, since, slot.at, limit=MAX_OCCURRENCES):
                if earlier.at < slot.at and now > earlier.at + grace:
                    record_missed(ledger, alerts, schedule, earlier.at, now)
                    missed.append(earlier.at)
        if now <= at + grace:
            return Trigger(True, schedule, slot.at, note, tuple(missed))
        if not _missed(ledger, job, slot.at):
            record_missed(ledger, alerts, schedule, slot.at, now)
            missed.append(slot.at)
    late = (f"due {slot.at.isoformat()}, judged {(now - at).total_seconds():.0f}s after its trigger time "
            f"(grace {schedule.grace_s:.0f}s): recorded as missed")
    if schedule.catch_up == "skip":
        return Trigger(False, schedule, slot.at, f"{late}; catch-up skip runs no missed time", tuple(missed))
    if schedule.catch_up == "latest":
        later = occurrences(schedule.cron, schedule.tz, slot.at, now, limit=MAX_OCCURRENCES)
        if later:
            return Trigger(False, schedule, slot.at, f"{late}; catch-up latest runs only the most "
                           f"recent due time ({later[-1].at.isoformat()})", tuple(missed))
    return Trigger(True, schedule, slot.at, note, tuple(missed))


def _same_as_scheduled(schedule: Schedule, notebook: str | os.PathLike[str] | None,
                       parameters: dict[str, Any] | None) -> None:
    from pathlib import Path

    if notebook is not None and str(Path(notebook).expanduser().resolve()) != schedule.notebook:
        raise ScheduleError(f"schedule {schedule.job!r} runs {schedule.notebook}, not {notebook}",
                            hint="the schedule changed since its DAG was exported: re-export it "
                                 "with nbgov schedule export --airflow")
    if parameters is not None and not same_values(parameters, schedule.parameters):
        raise ScheduleError(f"the parameters given differ from schedule {schedule.job!r}'s",
                            hint="the schedule changed since its DAG was exported: re-export it "
                                 "with nbgov schedule export --airflow")


def _slot_of(schedule: Schedule, at: dt.datetime) -> Occurrence | None:
    """The schedule's slot a trigger at *at* stands for, or None (see :func:`judge_trigger`)."""
    from zoneinfo import ZoneInfo

    after = max(schedule.effective_from, at - _DST_REACH)
    found = occurrences(schedule.cron, schedule.tz, after, at, limit=MAX_OCCURRENCES)
    if not found:
        return None
    slot = found[-1]
    if slot.at == at:
        return slot
    zone = ZoneInfo(schedule.tz)
    if slot.shifted or slot.at.astimezone(zone).utcoffset() != at.astimezone(zone).utcoffset():
        return slot
    return None


def _started(ledger: Ledger, job: str, at: dt.datetime) -> bool:
    return not ledger.query("SELECT 1 FROM review_runs WHERE job = $job AND scheduled_for = $at LIMIT 1",
                            {"job": job, "at": at}).empty


def _missed(ledger: Ledger, job: str, at: dt.datetime) -> bool:
    return not ledger.query("SELECT 1 FROM missed_runs WHERE job = $job AND scheduled_for = $at LIMIT 1",
                            {"job": job, "at": at}).empty
