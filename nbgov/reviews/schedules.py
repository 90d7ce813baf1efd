"""Schedules as code: which review notebook runs when, with which parameters, recorded in the ledger.

Every change is an event (``schedule_set``, ``schedule_removed``); the ``schedules`` view shows the
ones in force. Times follow a 5-field cron expression in a time zone (UTC by default; see
:mod:`nbgov.reviews.cron` for daylight-saving rules). A schedule is due only for times after it was set.

``catch_up`` says what the scheduler does with due times it finds already past their grace period
(it was down, or busy): every such time is recorded as missed and alerted, and then ``skip`` runs
none of them, ``latest`` runs the most recent one, ``all`` runs each of them.

A schedule's parameters follow :mod:`nbgov.reviews.parameters` (papermill's values, nbgov's
checks) and are recorded as they are given, so every run of the schedule (by nbgov's scheduler or
an exported Airflow DAG) gets exactly those values. Two kinds of value are therefore refused: one
the ledger's JSON cannot hold exactly (NaN, infinity, an integer beyond 2**53, a float without a
fractional part such as ``3.0``, which canonical JSON writes as ``3``, a non-text key), and one
that looks like a secret (a schedule is recorded and exported verbatim; secrets never reach the
ledger): the notebook reads a secret from its environment instead.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from nbgov.errors import ScheduleError
from nbgov.events import ScheduleRemoved, ScheduleSet
from nbgov.reviews.cron import next_occurrence, validate
from nbgov.reviews.parameters import check_parameters, notebook_parameters

if TYPE_CHECKING:
    from nbgov.ledger.facade import Ledger

__all__ = ["CATCH_UP", "Schedule", "add_schedule", "list_schedules", "refuse_secrets", "remove_schedule",
           "same_values"]

CATCH_UP = ("skip", "latest", "all")
_JOB = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
DEFAULT_GRACE = 3600.0


@dataclass(frozen=True)
class Schedule:
    """A schedule in force."""

    job: str
    notebook: str
    cron: str
    tz: str
    parameters: dict[str, Any]
    catch_up: str
    retries: int
    timeout_s: float | None
    grace_s: float
    effective_from: dt.datetime


def _default_grace(cron: str, tz: str, now: dt.datetime) -> float:
    """An hour, or half the interval between runs when they come more often than every two hours."""
    first = next_occurrence(cron, tz, now).at
    second = next_occurrence(cron, tz, first).at
    return min(DEFAULT_GRACE, (second - first).total_seconds() / 2)


def add_schedule(
    ledger: Ledger,
    notebook: str | os.PathLike[str],
    *,
    cron: str,
    tz: str = "UTC",
    parameters: dict[str, Any] | None = None,
    catch_up: str = "skip",
    retries: int = 0,
    timeout: float | None = None,
    grace: float | None = None,
    job: str | None = None,
    replace: bool = False,
    now: dt.datetime | None = None,
) -> Schedule:
    """Schedule a review notebook (validated now: notebook, parameters, cron, zone).

    ``job`` defaults to the notebook's name without ``.ipynb``; an existing job is changed only
    with ``replace=True``.

    Raises
    ------
    ScheduleError, ReviewError, CronError
        Anything invalid; nothing is recorded.
    """
    path = Path(notebook).expanduser().resolve()
    values = check_parameters(notebook_parameters(path), dict(parameters or {}))
    refuse_secrets(values, where="a schedule")
    _refuse_inexact(values)
    validate(cron, tz)
    if catch_up not in CATCH_UP:
        raise ScheduleError(f"catch-up {catch_up!r} is not one of: {', '.join(CATCH_UP)}")
    if retries < 0 or retries > 20:
        raise ScheduleError(f"retries must be between 0 and 20, not {retries}")
    if timeout is not None and not timeout > 0:
        raise ScheduleError(f"timeout must be a positive number of seconds, not {timeout}")
    job = job or path.stem
    if not _JOB.fullmatch(job):
        raise ScheduleError(f"job name {job!r}: use letters, digits, '.', '_' or '-' (up to 100)")
    exists = any(s.job == job for s in list_schedules(ledger))
    if exists and not replace:
        raise ScheduleError(f"a schedule named {job!r} exists", hint="pass --replace to change it, "
                            "or --job NAME for another one")
    now = now or dt.datetime.now(dt.UTC)
    grace_s = _default_grace(cron, tz, now) if grace is None else grace
    if not grace_s > 0:
        raise ScheduleError(f"grace must be a positive number of seconds, not {grace_s}")
    from nbgov.canonical import to_json_value

    ledger.append(ScheduleSet(
        job=job, notebook=str(path), cron=cron, tz=tz, parameters=to_json_value(values),
        catch_up=catch_up, retries=retries, timeout_s=timeout, grace_s=grace_s,
        effective_from=now.isoformat()))
    return Schedule(job, str(path), cron, tz, values, catch_up, retries, timeout, grace_s, now)


def refuse_secrets(values: dict[str, Any], *, where: str) -> None:
    """Refuse a parameter that looks like a secret (its name, or a known credential format).

    Raises
    ------
    ScheduleError
        Naming the parameter, never its value.
    """
    from nbgov.canonical import to_json_value
    from nbgov.redaction import redact_value

    for name, value in values.items():
        if redact_value(to_json_value(value), name) != to_json_value(value):
            raise ScheduleError(
                f"parameter {name!r} looks like a secret: nbgov does not write secrets into {where}",
                hint=f"let the notebook read it from its environment (e.g. os.environ[{name.upper()!r}]) "
                     "and set that variable where the review runs")


def _refuse_inexact(values: dict[str, Any]) -> None:
    """Refuse a value the ledger's canonical JSON would not give back exactly."""
    from nbgov.canonical import encode, to_json_value

    for name, value in values.items():
        try:
            back = orjson.loads(encode(to_json_value(value)))
        except Exception:  # noqa: BLE001 - anything the encoder refuses is inexact here
            back = _Inexact
        if not same_values(back, value):
            raise ScheduleError(
                f"parameter {name!r}: {value!r} cannot be recorded exactly in a schedule",
                hint="the ledger stores JSON: no NaN or infinity, integers within 2**53, text keys, "
                     "and a float such as 3.0 is stored as 3 (give 3: an int is accepted where the "
                     "default is a float)")


class _Inexact:
    pass


def same_values(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (3 is not 3.0; True is not 1; keys in any
    order, as canonical JSON sorts them)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return set(a) == set(b) and all(same_values(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_values(x, y) for x, y in zip(a, b))
    return bool(a == b)


def remove_schedule(ledger: Ledger, job: str, *, reason: str | None = None) -> str:
    if not any(s.job == job for s in list_schedules(ledger)):
        raise ScheduleError(f"no schedule named {job!r}",
                            hint="see them with: nbgov schedule list")
    return ledger.append(ScheduleRemoved(job=job, reason=reason))


def list_schedules(ledger: Ledger) -> list[Schedule]:
    """The schedules in force."""
    frame = ledger.query(
        "SELECT job, notebook, cron, tz, parameters, catch_up, retries, timeout_s, grace_s, "
        "effective_from FROM schedules ORDER BY job")
    result = []
    for row in frame.to_dict("records"):
        timeout = row["timeout_s"]
        result.append(Schedule(
            str(row["job"]), str(row["notebook"]), str(row["cron"]), str(row["tz"]),
            orjson.loads(row["parameters"]) if row["parameters"] else {}, str(row["catch_up"]),
            int(row["retries"]), None if timeout is None or timeout != timeout else float(timeout),
            float(row["grace_s"]), row["effective_from"].to_pydatetime()))
    return result
