"""When a scheduled review runs: cron expressions read on a time zone's wall clock.

A schedule is a standard five-field cron expression (``minute hour day-of-month month
day-of-week``, with ranges ``1-5``, steps ``*/15``, lists ``1,15``, names ``MON``/``JAN`` and the
aliases ``@hourly``, ``@daily``/``@midnight``, ``@weekly`` (Sunday 00:00), ``@monthly``,
``@yearly``/``@annually``) plus an IANA time zone such as ``Europe/Berlin``. When both the
day-of-month and the day-of-week are restricted, a day matching either one runs, as in Vixie cron.
Seconds and year fields, and croniter's hashed (``H``) and random (``R``) values, are refused.

The expression names wall-clock times in the schedule's zone, and each becomes one UTC instant:

* An ordinary wall-clock time runs at the one instant it names.
* A repeated wall-clock time (clocks go back: in Europe/Berlin on 2026-10-25 the hour from 02:00
  happens twice) runs **once, at its first occurrence**. A daily 02:30 job runs at 00:30 UTC that
  day and not again at 01:30 UTC. A job every 15 minutes therefore has no runs during the second
  pass of the repeated hour: each wall-clock time it names already ran.
* A missing wall-clock time (clocks go forward: in Europe/Berlin on 2026-03-29 the hour from 02:00
  does not exist) is **not skipped**: it runs at the first instant after the gap, 03:00 local
  (01:00 UTC), and its :class:`Occurrence` has ``shifted=True`` and a ``note`` saying so. Several
  times of one gap, and a run the expression names at the gap's end (03:00 here), become a single
  run at that instant; the first is kept and its note lists them all.

Every run is therefore a distinct UTC instant, and runs come in increasing order.

Examples
--------
>>> from datetime import datetime, UTC
>>> run = next_occurrence("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 28, 12, tzinfo=UTC))
>>> run.at.isoformat(), run.shifted
('2026-03-29T01:00:00+00:00', True)
>>> run.note
'02:30 does not exist on 2026-03-29 in Europe/Berlin (DST gap); runs at 03:00'
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import (  # type: ignore[import-untyped]
    CroniterBadDateError,
    CroniterError,
    croniter,
)

from nbgov.errors import CronError

__all__ = ["Occurrence", "next_occurrence", "occurrences", "validate"]

_FIELD_HINT = "cron takes 5 fields: minute hour day-of-month month day-of-week, e.g. '30 2 * * MON'"
_ALIASES = ("@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually")
# A value as plain cron writes it: '*', a number or a name, an optional range end, an optional step.
# Tokens outside this shape (croniter's L, W, # and ?) are left to croniter to judge.
_PLAIN_TOKEN = re.compile(r"(?P<first>\*|[0-9]+|[a-z]+)(?:-(?P<last>[0-9]+|[a-z]+))?(?:/(?P<step>.*))?")
# croniter's hashed (H) and random (R) values: hashed ones need an id, random ones change per call.
_HASHED_TOKEN = re.compile(r"[hr](?:\(.*\))?(?:/.*)?")
_CRONITER_PREFIX = re.compile(r"^\[.*?\] is not acceptable[.,]?\s*")


@dataclass(frozen=True)
class Occurrence:
    """One run of a schedule.

    Attributes
    ----------
    at : datetime
        The UTC instant to run (tz-aware, ``tzinfo=UTC``).
    local : datetime
        The wall-clock time the cron expression named (naive, in the schedule's zone).
    shifted : bool
        True when that wall-clock time did not exist (DST gap) and the run moved to the end of the gap.
    note : str or None
        Why the run moved, e.g. ``"02:30 does not exist on 2026-03-29 in Europe/Berlin (DST gap);
        runs at 03:00"``; None when it did not.
    """

    at: datetime
    local: datetime
    shifted: bool
    note: str | None


class _Field(NamedTuple):
    name: str
    low: int
    high: int
    names: Mapping[str, int]


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day-of-month", 1, 31, {}),
    _Field("month", 1, 12, {name: number for number, name in enumerate(_MONTHS, start=1)}),
    _Field("day-of-week", 0, 7, {name: number for number, name in enumerate(_WEEKDAYS)}),
)
_NAME_RANGES = {"month": "JAN-DEC", "day-of-week": "SUN-SAT"}


class _Run(NamedTuple):
    local: datetime
    at: datetime
    shifted: bool


def validate(cron: str, tz: str = "UTC") -> None:
    """Check a schedule without computing any run.

    Parameters
    ----------
    cron
        A five-field cron expression or an alias such as ``@daily``.
    tz
        An IANA time zone name.

    Raises
    ------
    CronError
        The expression or the zone is invalid; the message quotes it and says what is wrong.
    """
    _parse_expression(cron)
    _load_zone(tz)


def occurrences(
    cron: str, tz: str, after: datetime, until: datetime, *, limit: int = 10_000
) -> list[Occurrence]:
    """Runs strictly after `after` and at or before `until` (both tz-aware), in order, unique by `at`.

    Parameters
    ----------
    cron
        A five-field cron expression or an alias such as ``@daily``.
    tz
        The IANA time zone whose wall clock the expression is read on.
    after, until
        The window, as tz-aware datetimes (any zone).
    limit
        The most runs the window may hold.

    Returns
    -------
    list of Occurrence
        Empty when ``until`` is not later than ``after``.

    Raises
    ------
    CronError
        The expression or zone is invalid, or the window holds more than ``limit`` runs.
    ValueError
        ``after`` or ``until`` is naive, or ``limit`` is negative.
    """
    expression = _parse_expression(cron)
    zone = _load_zone(tz)
    _require_aware("after", after)
    _require_aware("until", until)
    if limit < 0:
        raise ValueError(f"limit must be 0 or more, got {limit}")
    found: list[Occurrence] = []
    for occurrence in _runs_after(expression, tz, zone, after):
        if occurrence.at > until:
            break
        if len(found) == limit:
            raise CronError(
                f"the window {after.isoformat()} to {until.isoformat()} holds more than {limit} runs "
                f"of {cron!r}",
                hint="ask for a shorter window, or raise the limit",
            )
        found.append(occurrence)
    return found


def next_occurrence(cron: str, tz: str, after: datetime) -> Occurrence:
    """The first run strictly after ``after``.

    Parameters
    ----------
    cron
        A five-field cron expression or an alias such as ``@daily``.
    tz
        The IANA time zone whose wall clock the expression is read on.
    after
        A tz-aware datetime (any zone).

    Raises
    ------
    CronError
        The expression or zone is invalid, or the expression has no run in the next 50 years.
    ValueError
        ``after`` is naive.
    """
    expression = _parse_expression(cron)
    zone = _load_zone(tz)
    _require_aware("after", after)
    occurrence = next(_runs_after(expression, tz, zone, after), None)
    if occurrence is not None:
        return occurrence
    raise CronError(f"cron expression {cron!r} has no run in the 50 years after {after.isoformat()}")


# -- parsing -------------------------------------------------------------------------------------------


def _parse_expression(cron: str) -> str:
    """The expression normalized for croniter, or CronError saying what is wrong with it."""
    fields = cron.split()
    normalized = " ".join(fields)
    if normalized.startswith("@"):
        if normalized.lower() in _ALIASES:
            return normalized.lower()
        raise _invalid(cron, f"unknown alias {normalized!r}; use one of {', '.join(_ALIASES)}")
    if not fields:
        raise _invalid(cron, "it is empty")
    if len(fields) in (6, 7):
        raise _invalid(cron, f"it has {len(fields)} fields; seconds and year fields are not supported")
    if len(fields) != len(_FIELDS):
        raise _invalid(cron, f"it has {len(fields)} field{'s' * (len(fields) != 1)}, not 5")
    for field, text in zip(_FIELDS, fields):
        if any(_HASHED_TOKEN.fullmatch(token) for token in text.lower().split(",")):
            raise _invalid(cron, f"{field.name} uses a hashed (H) or random (R) value, which nbgov "
                                 "does not support")
    try:
        expanded, _ = croniter.expand(normalized)
    except CroniterError as error:
        raise _invalid(cron, _explain(fields, error)) from None
    if expanded[4] == ["*"]:
        # Only when the day-of-week is unrestricted: otherwise the days are OR-ed and
        # '0 0 31 2 MON' still runs on Mondays in February.
        try:
            croniter.expand(normalized, strict=True)
        except CroniterError as error:
            raise _invalid(cron, f"it can never run ({_croniter_detail(error)})") from None
    return normalized


def _invalid(cron: str, problem: str) -> CronError:
    return CronError(f"invalid cron expression {cron!r}: {problem}", hint=_FIELD_HINT)


def _explain(fields: list[str], error: CroniterError) -> str:
    """Name the field croniter refused, since its own messages rarely do."""
    for field, text in zip(_FIELDS, fields):
        problem = _check_plain_field(field, text)
        if problem:
            return problem
    for index, (field, text) in enumerate(zip(_FIELDS, fields)):
        alone = " ".join(text if position == index else "*" for position in range(len(_FIELDS)))
        try:
            croniter.expand(alone)
        except CroniterError as field_error:
            detail = _croniter_detail(field_error)
            return f"cannot read {field.name} {text!r}" + (f" ({detail})" if detail else "")
    return _croniter_detail(error) or "croniter cannot read it"


def _check_plain_field(field: _Field, text: str) -> str | None:
    """The problem with a field's plain tokens (numbers, names, ranges, steps), if any."""
    for token in text.lower().split(","):
        if not token:
            return f"{field.name} {text!r} has an empty list item"
        match = _PLAIN_TOKEN.fullmatch(token)
        if match is None:
            continue
        for value in (match["first"], match["last"]):
            if value is None or value == "*" or value in field.names:
                continue
            if value.isdigit():
                if not field.low <= int(value) <= field.high:
                    return f"{field.name} must be {field.low}-{field.high} (got {value})"
            elif not (field.name == "day-of-month" and value == "l"):
                names = f" or a name ({_NAME_RANGES[field.name]})" if field.names else ""
                return f"{field.name} {value.upper()!r} is not a number{names}"
        step = match["step"]
        if step is not None and not (step.isdigit() and int(step) >= 1):
            return f"{field.name} step must be a whole number of at least 1 (got {step!r})"
    return None


def _croniter_detail(error: CroniterError) -> str:
    return _CRONITER_PREFIX.sub("", str(error)).strip()


def _load_zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        # ValueError: keys that are not relative paths ('', '/etc/localtime', '../x').
        raise CronError(
            f"unknown time zone {tz!r}", hint="use an IANA name such as 'Europe/Berlin' or 'UTC'"
        ) from None


def _require_aware(name: str, value: datetime) -> None:
    if value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


# -- computing runs ------------------------------------------------------------------------------------


def _runs_after(expression: str, tz: str, zone: ZoneInfo, after: datetime) -> Iterator[Occurrence]:
    """Every run strictly after ``after``, one per UTC instant, in increasing order."""
    # Mapping wall-clock times to instants never decreases (a repeated time takes its first instant,
    # a missing one the gap's end), so nothing at or before the wall-clock time of ``after`` can run
    # after it; the filter drops the few just after it that did (the second pass of a repeated hour).
    start = after.astimezone(zone).replace(tzinfo=None)
    runs = (_Run(local, *_to_instant(local, zone)) for local in _wall_clock_times(expression, start))
    later = (run for run in runs if run.at > after)
    for at, group in itertools.groupby(later, key=lambda run: run.at):
        yield _merge(at, list(group), tz, zone)


def _wall_clock_times(expression: str, start: datetime) -> Iterator[datetime]:
    """The naive wall-clock times the expression names, strictly after the naive ``start``."""
    # Given a naive start, croniter counts on the bare calendar with no DST logic of its own; nbgov
    # maps to UTC itself because croniter's tz-aware mode runs a repeated 02:30 twice.
    schedule = croniter(expression, start, ret_type=datetime)
    while True:
        try:
            local: datetime = schedule.get_next()
        except CroniterBadDateError:
            return  # no run within croniter's search horizon (50 years)
        yield local


def _to_instant(local: datetime, zone: ZoneInfo) -> tuple[datetime, bool]:
    """The UTC instant a wall-clock time names, and whether it fell in a DST gap."""
    # fold=0 is the first of a repeated time's two instants (PEP 495).
    at = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if at.astimezone(zone).replace(tzinfo=None) == local:
        return at, False
    return _gap_end(local, zone), True


def _gap_end(local: datetime, zone: ZoneInfo) -> datetime:
    """The first instant after the DST gap that swallows the wall-clock time ``local``."""
    # In a gap the two folds read ``local`` with the offsets either side of the transition, giving
    # one instant before it and one after it: bisect between them (tz transitions fall on whole
    # seconds, and croniter's times have none).
    low, high = sorted(int(local.replace(tzinfo=zone, fold=fold).timestamp()) for fold in (0, 1))
    offset_before = datetime.fromtimestamp(low, zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == offset_before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def _merge(at: datetime, group: list[_Run], tz: str, zone: ZoneInfo) -> Occurrence:
    """One occurrence for the runs that share an instant (only the times of one DST gap do)."""
    first = group[0]
    if not first.shifted:
        return Occurrence(at=at, local=first.local, shifted=False, note=None)
    day = first.local.date()
    missing = [_clock(run.local, day) for run in group if run.shifted]
    named = [_clock(run.local, day) for run in group if not run.shifted]
    target = _clock(at.astimezone(zone).replace(tzinfo=None), day)
    if len(missing) == 1:
        note = f"{missing[0]} does not exist on {day} in {tz} (DST gap); runs at {target}"
    else:
        note = f"{', '.join(missing)} do not exist on {day} in {tz} (DST gap); run once at {target}"
    if named:
        note += f", merged with the {named[0]} run"
    return Occurrence(at=at, local=first.local, shifted=True, note=note)


def _clock(moment: datetime, day: date) -> str:
    """``HH:MM`` (with seconds if any), prefixed by the date when it is not ``day``."""
    text = f"{moment:%H:%M:%S}" if moment.second or moment.microsecond else f"{moment:%H:%M}"
    return text if moment.date() == day else f"{moment.date()} {text}"
