"""Schedule times: cron read on a zone's wall clock, with DST gaps and repeats handled explicitly.

Expected instants are worked out by hand from the 2026 transitions:

* Europe/Berlin: CET (UTC+1) -> CEST (UTC+2) at 2026-03-29 01:00 UTC (02:00-02:59 local is missing);
  CEST -> CET at 2026-10-25 01:00 UTC (02:00-02:59 local happens twice).
* America/New_York: EST (UTC-5) -> EDT (UTC-4) at 2026-03-08 07:00 UTC (02:00-02:59 missing);
  EDT -> EST at 2026-11-01 06:00 UTC (01:00-01:59 local happens twice).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from nbgov.errors import CronError, NbgovError
from nbgov.reviews import cron as cron_module
from nbgov.reviews.cron import Occurrence, next_occurrence, occurrences, validate

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


def instants(runs: list[Occurrence]) -> list[datetime]:
    return [run.at for run in runs]


# -- DST fall-back: a repeated wall-clock time runs once, at its first occurrence -------------------


def test_berlin_fall_back_runs_0230_once_at_the_first_occurrence() -> None:
    runs = occurrences("30 2 * * *", BERLIN, utc(2026, 10, 23), utc(2026, 10, 27))
    assert instants(runs) == [
        utc(2026, 10, 23, 0, 30),  # CEST, UTC+2
        utc(2026, 10, 24, 0, 30),
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST, the first of the two 02:30s; not again at 01:30 UTC
        utc(2026, 10, 26, 1, 30),  # CET, UTC+1
    ]
    assert [run.local for run in runs] == [datetime(2026, 10, day, 2, 30) for day in (23, 24, 25, 26)]
    assert not any(run.shifted for run in runs)
    assert all(run.note is None for run in runs)


def test_new_york_fall_back_runs_0130_once() -> None:
    runs = occurrences("30 1 * * *", NEW_YORK, utc(2026, 10, 31), utc(2026, 11, 3))
    assert instants(runs) == [
        utc(2026, 10, 31, 5, 30),  # EDT, UTC-4
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT, the first of the two 01:30s (not 06:30 UTC)
        utc(2026, 11, 2, 6, 30),  # EST, UTC-5
    ]
    assert not any(run.shifted for run in runs)


def test_a_frequent_job_does_not_rerun_the_repeated_hour() -> None:
    runs = occurrences("*/15 * * * *", BERLIN, utc(2026, 10, 24, 23, 50), utc(2026, 10, 25, 2, 30))
    assert instants(runs) == [
        utc(2026, 10, 25, 0, 0),  # 02:00 CEST
        utc(2026, 10, 25, 0, 15),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 0, 45),  # 02:45 CEST; 02:00-02:45 CET already ran, so 01:00-01:59 UTC is quiet
        utc(2026, 10, 25, 2, 0),  # 03:00 CET
        utc(2026, 10, 25, 2, 15),
        utc(2026, 10, 25, 2, 30),
    ]


def test_next_occurrence_from_inside_the_second_pass_of_the_repeated_hour() -> None:
    # 01:10 UTC is 02:10 CET, the second 02:10 of the day: today's 02:30 already ran at 00:30 UTC.
    run = next_occurrence("30 2 * * *", BERLIN, utc(2026, 10, 25, 1, 10))
    assert run.at == utc(2026, 10, 26, 1, 30)
    assert run.local == datetime(2026, 10, 26, 2, 30)


# -- DST spring-forward: a missing wall-clock time moves to the end of the gap ----------------------


def test_berlin_spring_forward_shifts_0230_to_0300_local() -> None:
    runs = occurrences("30 2 * * *", BERLIN, utc(2026, 3, 27), utc(2026, 3, 31))
    assert instants(runs) == [
        utc(2026, 3, 27, 1, 30),  # CET, UTC+1
        utc(2026, 3, 28, 1, 30),
        utc(2026, 3, 29, 1, 0),  # 02:30 does not exist; 03:00 CEST is the transition instant
        utc(2026, 3, 30, 0, 30),  # CEST, UTC+2
    ]
    shifted = runs[2]
    assert shifted == Occurrence(
        at=utc(2026, 3, 29, 1, 0),
        local=datetime(2026, 3, 29, 2, 30),
        shifted=True,
        note="02:30 does not exist on 2026-03-29 in Europe/Berlin (DST gap); runs at 03:00",
    )
    assert shifted.at.astimezone(ZoneInfo(BERLIN)).replace(tzinfo=None) == datetime(2026, 3, 29, 3, 0)
    assert [run.shifted for run in runs] == [False, False, True, False]
    assert [run.note is None for run in runs] == [True, True, False, True]


def test_new_york_spring_forward_shifts_0230_to_0300_local() -> None:
    run = next_occurrence("30 2 * * *", NEW_YORK, utc(2026, 3, 7, 12))
    assert run.at == utc(2026, 3, 8, 7, 0)  # 03:00 EDT
    assert run.shifted
    assert run.note == "02:30 does not exist on 2026-03-08 in America/New_York (DST gap); runs at 03:00"


def test_several_gap_times_collapse_into_one_run() -> None:
    runs = occurrences("*/20 2 * * *", BERLIN, utc(2026, 3, 28, 12), utc(2026, 3, 30, 0, 0))
    assert instants(runs) == [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 0)]
    first = runs[0]
    assert first.local == datetime(2026, 3, 29, 2, 0)  # the first of the collapsed times is kept
    assert first.shifted
    assert first.note == (
        "02:00, 02:20, 02:40 do not exist on 2026-03-29 in Europe/Berlin (DST gap); run once at 03:00"
    )
    assert not runs[1].shifted


def test_gap_times_merge_with_a_run_named_at_the_end_of_the_gap() -> None:
    runs = occurrences("0,30 2,3 * * *", BERLIN, utc(2026, 3, 28, 23), utc(2026, 3, 29, 3))
    assert instants(runs) == [utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 30)]
    assert runs[0].local == datetime(2026, 3, 29, 2, 0)
    assert runs[0].note == (
        "02:00, 02:30 do not exist on 2026-03-29 in Europe/Berlin (DST gap); run once at 03:00, "
        "merged with the 03:00 run"
    )
    assert runs[1] == Occurrence(utc(2026, 3, 29, 1, 30), datetime(2026, 3, 29, 3, 30), False, None)


def test_a_half_hour_gap_shifts_to_its_own_end() -> None:
    # Lord Howe Island moves its clocks forward by 30 minutes: 02:00-02:29 is missing on 2026-10-04.
    run = next_occurrence("15 2 * * *", "Australia/Lord_Howe", utc(2026, 10, 3, 12))
    assert run.at == utc(2026, 10, 3, 15, 30)  # 02:30 LHDT (UTC+11), the transition instant
    assert run.note == "02:15 does not exist on 2026-10-04 in Australia/Lord_Howe (DST gap); runs at 02:30"


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK, "Australia/Lord_Howe", "UTC"])
def test_runs_are_increasing_and_name_their_wall_clock_time(zone: str) -> None:
    runs = occurrences("0,30 0-3 * * *", zone, utc(2026, 1, 1), utc(2027, 1, 1))
    assert all(earlier.at < later.at for earlier, later in zip(runs, runs[1:]))
    assert all(earlier.local < later.local for earlier, later in zip(runs, runs[1:]))
    for run in runs:
        assert run.at.tzinfo is UTC
        assert run.local.tzinfo is None
        wall = run.at.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
        if run.shifted:
            assert wall > run.local and run.note
        else:
            assert wall == run.local and run.note is None


def test_next_occurrence_chain_matches_occurrences_across_both_transitions() -> None:
    for start, end in ((utc(2026, 3, 27), utc(2026, 3, 31)), (utc(2026, 10, 23), utc(2026, 10, 27))):
        expected = occurrences("*/20 1-3 * * *", BERLIN, start, end)
        chained, after = [], start
        while (run := next_occurrence("*/20 1-3 * * *", BERLIN, after)).at <= end:
            chained.append(run)
            after = run.at
        assert chained == expected


# -- the window, aliases, UTC ---------------------------------------------------------------------


def test_weekly_monday_job_in_utc_over_a_month() -> None:
    validate("0 6 * * MON")  # the zone defaults to UTC
    runs = occurrences("0 6 * * MON", "UTC", utc(2026, 3, 1), utc(2026, 4, 1))
    assert instants(runs) == [utc(2026, 3, day, 6) for day in (2, 9, 16, 23, 30)]
    assert [run.local for run in runs] == [datetime(2026, 3, day, 6) for day in (2, 9, 16, 23, 30)]


@pytest.mark.parametrize("alias", ["@daily", "@DAILY", "@midnight", " @daily "])
def test_daily_alias_is_local_midnight(alias: str) -> None:
    runs = occurrences(alias, BERLIN, utc(2026, 3, 27, 12), utc(2026, 3, 30, 12))
    # Midnight CET is 23:00 UTC the day before; from 2026-03-30 it is CEST, 22:00 UTC.
    assert instants(runs) == [utc(2026, 3, 27, 23), utc(2026, 3, 28, 23), utc(2026, 3, 29, 22)]


def test_other_aliases() -> None:
    start, end = utc(2026, 1, 1), utc(2027, 1, 1)
    assert len(occurrences("@hourly", "UTC", start, utc(2026, 1, 2))) == 24
    assert instants(occurrences("@weekly", "UTC", start, utc(2026, 1, 15))) == [utc(2026, 1, 4), utc(2026, 1, 11)]
    assert len(occurrences("@monthly", "UTC", start, end)) == 12
    assert instants(occurrences("@yearly", "UTC", start, end)) == [utc(2027, 1, 1)]
    assert instants(occurrences("@annually", "UTC", start, end)) == [utc(2027, 1, 1)]


def test_window_excludes_after_and_includes_until() -> None:
    runs = occurrences("0 6 * * *", "UTC", utc(2026, 5, 1, 6), utc(2026, 5, 3, 6))
    assert instants(runs) == [utc(2026, 5, 2, 6), utc(2026, 5, 3, 6)]


def test_window_bounds_may_be_in_any_zone() -> None:
    tokyo = timezone(timedelta(hours=9))
    runs = occurrences("0 6 * * *", "UTC", datetime(2026, 5, 1, 15, tzinfo=tokyo),
                       datetime(2026, 5, 3, 15, tzinfo=tokyo))
    assert instants(runs) == [utc(2026, 5, 2, 6), utc(2026, 5, 3, 6)]


def test_empty_and_reversed_windows() -> None:
    assert occurrences("0 6 * * *", "UTC", utc(2026, 5, 1, 7), utc(2026, 5, 2, 5)) == []
    assert occurrences("0 6 * * *", "UTC", utc(2026, 5, 2), utc(2026, 5, 1)) == []
    assert occurrences("0 6 * * *", "UTC", utc(2026, 5, 1, 6), utc(2026, 5, 1, 6)) == []


def test_a_shifted_run_respects_the_window() -> None:
    # The shifted run's instant is 01:00 UTC: a window ending just before it excludes it, one
    # starting at it excludes it, and one ending at it includes it.
    assert occurrences("30 2 * * *", BERLIN, utc(2026, 3, 28, 12), utc(2026, 3, 29, 0, 59)) == []
    assert instants(occurrences("30 2 * * *", BERLIN, utc(2026, 3, 29, 1), utc(2026, 3, 30, 1))) == [
        utc(2026, 3, 30, 0, 30)
    ]
    assert instants(occurrences("30 2 * * *", BERLIN, utc(2026, 3, 28, 12), utc(2026, 3, 29, 1))) == [
        utc(2026, 3, 29, 1)
    ]


def test_next_occurrence() -> None:
    assert next_occurrence("0 6 * * MON", "UTC", utc(2026, 3, 4, 12)).at == utc(2026, 3, 9, 6)
    # Strictly after: a run exactly at `after` is not the next one.
    assert next_occurrence("0 6 * * MON", "UTC", utc(2026, 3, 9, 6)).at == utc(2026, 3, 16, 6)
    assert next_occurrence("0 6 * * *", BERLIN, utc(2026, 7, 1)).at == utc(2026, 7, 1, 4)  # CEST
    # A leap day searches years ahead (2100 is not a leap year).
    assert next_occurrence("0 0 29 2 *", "UTC", utc(2097, 1, 1)).at == utc(2104, 2, 29)


def test_next_occurrence_without_any_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # croniter gives up after 50 years without a match; stand in for that without searching 50 years.
    monkeypatch.setattr(cron_module, "_wall_clock_times", lambda expression, start: iter(()))
    with pytest.raises(CronError, match="has no run in the 50 years after"):
        next_occurrence("0 6 * * *", "UTC", utc(2026, 1, 1))


def test_day_of_month_and_day_of_week_are_ored() -> None:
    runs = occurrences("0 0 13 * FRI", "UTC", utc(2026, 2, 1), utc(2026, 3, 1))
    assert instants(runs) == [utc(2026, 2, day) for day in (6, 13, 20, 27)]  # Feb 13 2026 is a Friday
    runs = occurrences("0 0 1 * MON", "UTC", utc(2026, 5, 31), utc(2026, 6, 9))
    assert instants(runs) == [utc(2026, 6, 1), utc(2026, 6, 8)]


def test_lists_ranges_steps_and_names() -> None:
    runs = occurrences("15,45 9-17/4 * JAN-MAR mon-fri", "UTC", utc(2026, 1, 1), utc(2026, 1, 3))
    assert instants(runs) == [utc(2026, 1, day, hour, minute) for day in (1, 2) for hour in (9, 13, 17)
                              for minute in (15, 45)]


# -- limits -----------------------------------------------------------------------------------------


def test_limit_exceeded() -> None:
    with pytest.raises(CronError, match=r"holds more than 1000 runs of '\* \* \* \* \*'"):
        occurrences("* * * * *", "UTC", utc(2026, 1, 1), utc(2026, 1, 2), limit=1000)


def test_default_limit_protects_against_every_minute_for_years() -> None:
    with pytest.raises(CronError, match="holds more than 10000 runs"):
        occurrences("* * * * *", "UTC", utc(2026, 1, 1), utc(2030, 1, 1))


def test_limit_is_inclusive() -> None:
    assert len(occurrences("0 * * * *", "UTC", utc(2026, 1, 1), utc(2026, 1, 2), limit=24)) == 24
    with pytest.raises(CronError, match="more than 23 runs"):
        occurrences("0 * * * *", "UTC", utc(2026, 1, 1), utc(2026, 1, 2), limit=23)
    assert occurrences("0 * * * *", "UTC", utc(2026, 1, 1), utc(2026, 1, 1, 0, 30), limit=0) == []


def test_a_year_of_a_daily_0230_job_in_berlin_runs_365_times_one_shifted() -> None:
    runs = occurrences("30 2 * * *", BERLIN, utc(2026, 1, 1), utc(2027, 1, 1))
    assert len(runs) == 365
    assert sum(run.shifted for run in runs) == 1


# -- invalid input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("61 * * * *", "minute must be 0-59 (got 61)"),
        ("* * *", "it has 3 fields, not 5"),
        ("bogus", "it has 1 field, not 5"),
        ("0 0 * * * *", "it has 6 fields; seconds and year fields are not supported"),
        ("0 0 * * * * 2030", "it has 7 fields; seconds and year fields are not supported"),
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("0 25 * * *", "hour must be 0-23 (got 25)"),
        ("0 0 0 * *", "day-of-month must be 1-31 (got 0)"),
        ("0 0 * 13 *", "month must be 1-12 (got 13)"),
        ("0 0 * * 8", "day-of-week must be 0-7 (got 8)"),
        ("5-70 * * * *", "minute must be 0-59 (got 70)"),
        ("*/0 * * * *", "minute step must be a whole number of at least 1 (got '0')"),
        ("0 0 * JANX *", "month 'JANX' is not a number or a name (JAN-DEC)"),
        ("0 0 * * FOO", "day-of-week 'FOO' is not a number or a name (SUN-SAT)"),
        ("1,,2 * * * *", "minute '1,,2' has an empty list item"),
        ("15x * * * *", "cannot read minute '15x'"),
        ("0 0 31 2 *", "it can never run"),
        ("H * * * *", "minute uses a hashed (H) or random (R) value"),
        ("0 R * * *", "hour uses a hashed (H) or random (R) value"),
        ("@reboot", "unknown alias '@reboot'"),
    ],
)
def test_invalid_expressions(expression: str, problem: str) -> None:
    expected = f"invalid cron expression {expression!r}: {problem}"
    with pytest.raises(CronError) as raised:
        validate(expression)
    assert str(raised.value).startswith(expected)
    assert "\n" not in str(raised.value)
    assert raised.value.hint  # says what a cron expression looks like
    for compute in (
        lambda: occurrences(expression, "UTC", utc(2026, 1, 1), utc(2026, 1, 2)),
        lambda: next_occurrence(expression, "UTC", utc(2026, 1, 1)),
    ):
        with pytest.raises(CronError, match="^invalid cron expression"):
            compute()


@pytest.mark.parametrize("expression", ["0 0 30 2 MON", "0 0 L * *", "0 0 * * 1#2", "0 0 ? * MON", "0 0 * * 7"])
def test_valid_expressions(expression: str) -> None:
    validate(expression, BERLIN)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "/etc/localtime", "../UTC", "europe/berlin"])
def test_unknown_time_zone(zone: str) -> None:
    message = f"unknown time zone {zone!r}"
    with pytest.raises(CronError) as raised:
        validate("0 6 * * *", zone)
    assert str(raised.value) == message
    assert "IANA" in raised.value.hint
    with pytest.raises(CronError, match="^unknown time zone"):
        occurrences("0 6 * * *", zone, utc(2026, 1, 1), utc(2026, 1, 2))
    with pytest.raises(CronError, match="^unknown time zone"):
        next_occurrence("0 6 * * *", zone, utc(2026, 1, 1))


def test_cron_error_is_an_nbgov_error() -> None:
    assert issubclass(CronError, NbgovError)


def test_naive_bounds_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="after must be timezone-aware"):
        occurrences("0 6 * * *", "UTC", datetime(2026, 1, 1), utc(2026, 1, 2))
    with pytest.raises(ValueError, match="until must be timezone-aware"):
        occurrences("0 6 * * *", "UTC", utc(2026, 1, 1), datetime(2026, 1, 2))
    with pytest.raises(ValueError, match="after must be timezone-aware"):
        next_occurrence("0 6 * * *", "UTC", datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="limit"):
        occurrences("0 6 * * *", "UTC", utc(2026, 1, 1), utc(2026, 1, 2), limit=-1)


def test_occurrence_is_frozen() -> None:
    run = next_occurrence("0 6 * * *", "UTC", utc(2026, 1, 1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.at = utc(2027, 1, 1)  # type: ignore[misc]


def test_module_docstring_example() -> None:
    import doctest

    assert doctest.testmod(cron_module, raise_on_error=False).failed == 0
