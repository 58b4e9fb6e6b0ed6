"""Schedule maths as pure functions of an explicit `after` (no clock, no Redis)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from jobs import ScheduleError, crontab
from jobs.schedules import cron as cron_module
from jobs.schedules.timing import (
    as_aware,
    clocked,
    interval,
    next_run,
    next_runs,
    parse_cron,
    parse_zone,
    previous_run,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def day_runs(timing, zone: ZoneInfo, day: str) -> list[str]:
    """Every run during the local day `day` in `zone`, as ISO strings there."""
    start = datetime.fromisoformat(day).replace(tzinfo=zone)
    end = start + timedelta(days=1)  # wall-clock midnight to midnight
    end = datetime(end.year, end.month, end.day, tzinfo=zone)
    runs = next_runs(timing, start - timedelta(microseconds=1), 200)
    return [r.astimezone(zone).isoformat() for r in runs if r < end]


# The DST table of issue 3, plus more

DST_TABLE = [
    # Berlin springs forward 02:00 -> 03:00 on 2026-03-29: 02:30 never exists.
    ("30 2 * * *", BERLIN, "2026-03-29", ["2026-03-29T03:00:00+02:00"]),
    ("30 2 * * *", BERLIN, "2026-03-28", ["2026-03-28T02:30:00+01:00"]),
    ("30 2 * * *", BERLIN, "2026-03-30", ["2026-03-30T02:30:00+02:00"]),
    # Berlin falls back 03:00 -> 02:00 on 2026-10-25: 02:30 happens twice.
    ("30 2 * * *", BERLIN, "2026-10-25", ["2026-10-25T02:30:00+02:00"]),
    # Several skipped times of one fixed job: one run, at the end of the gap.
    ("0,30 2 * * *", BERLIN, "2026-03-29", ["2026-03-29T03:00:00+02:00"]),
    # A skipped time and the first time after the gap: still one run.
    ("0 2,3 * * *", BERLIN, "2026-03-29", ["2026-03-29T03:00:00+02:00"]),
    # New York: 2026-03-08 02:00 -> 03:00, 2026-11-01 02:00 -> 01:00.
    ("30 2 * * *", NEW_YORK, "2026-03-08", ["2026-03-08T03:00:00-04:00"]),
    ("30 1 * * *", NEW_YORK, "2026-03-08", ["2026-03-08T01:30:00-05:00"]),
    ("30 1 * * *", NEW_YORK, "2026-11-01", ["2026-11-01T01:30:00-04:00"]),
    ("30 1 * * *", NEW_YORK, "2026-11-02", ["2026-11-02T01:30:00-05:00"]),
    # Wildcard jobs follow real time: nothing in the gap, the repeat runs twice.
    (
        "*/30 * * * *",
        BERLIN,
        "2026-10-25",
        [f"2026-10-25T{h:02}:{m:02}:00+02:00" for h in range(3) for m in (0, 30)]
        + ["2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00"]
        + [f"2026-10-25T{h:02}:{m:02}:00+01:00" for h in range(3, 24) for m in (0, 30)],
    ),
    (
        "*/30 * * * *",
        BERLIN,
        "2026-03-29",
        [f"2026-03-29T{h:02}:{m:02}:00+01:00" for h in range(2) for m in (0, 30)]
        + [f"2026-03-29T{h:02}:{m:02}:00+02:00" for h in range(3, 24) for m in (0, 30)],
    ),
    # `*` in the minute alone makes a wildcard job too (Debian: MIN_STAR).
    (
        "* 2 * * *",
        BERLIN,
        "2026-03-29",
        [],
    ),
    # Hour starting with `*` (`*/3,9-18`): real time, so 02:00 runs twice in autumn.
    (
        "0 */3,9-18 * * *",
        NEW_YORK,
        "2026-06-01",
        [f"2026-06-01T{h:02}:00:00-04:00" for h in (0, 3, 6, *range(9, 19), 21)],
    ),
    (
        "0 */2 * * *",
        BERLIN,
        "2026-10-25",
        ["2026-10-25T00:00:00+02:00", "2026-10-25T02:00:00+02:00"]
        + ["2026-10-25T02:00:00+01:00"]
        + [f"2026-10-25T{h:02}:00:00+01:00" for h in range(4, 24, 2)],
    ),
    (
        "0 */2 * * *",
        BERLIN,
        "2026-03-29",
        ["2026-03-29T00:00:00+01:00"]
        + [f"2026-03-29T{h:02}:00:00+02:00" for h in range(4, 24, 2)],
    ),
]


@pytest.mark.parametrize(("expression", "zone", "day", "expected"), DST_TABLE)
def test_cron_runs_on_dst_days(expression, zone, day, expected):
    assert day_runs(parse_cron(expression, zone), zone, day) == expected


@pytest.mark.parametrize(
    ("day", "count"), [("2026-10-25", 25), ("2026-03-29", 23), ("2026-06-01", 24)]
)
def test_hourly_cron_and_hourly_interval_count_real_hours(day, count):
    assert len(day_runs(parse_cron("0 * * * *", BERLIN), BERLIN, day)) == count
    assert len(day_runs(interval(timedelta(hours=1)), BERLIN, day)) == count


def test_hourly_interval_gives_25_runs_on_the_long_berlin_day():
    runs = day_runs(interval(timedelta(hours=1)), BERLIN, "2026-10-25")
    assert len(runs) == 25
    assert runs[2:4] == ["2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00"]


@pytest.mark.parametrize("server", [UTC, BERLIN])
def test_shanghai_nine_oclock_is_one_utc_every_day(server):
    timing = parse_cron("0 9 * * *", "Asia/Shanghai")
    # Around Berlin's spring change; where the "server" reads its clock is moot.
    after = datetime(2026, 3, 26, 12, 0, tzinfo=server)
    runs = next_runs(timing, after, 7)
    assert [r.isoformat() for r in runs] == [
        f"2026-03-{d:02}T01:00:00+00:00" for d in range(27, 32)
    ] + ["2026-04-01T01:00:00+00:00", "2026-04-02T01:00:00+00:00"]
    assert {r.astimezone(SHANGHAI).hour for r in runs} == {9}


def test_runs_come_back_as_aware_utc():
    run = next_run(parse_cron("30 2 * * *", BERLIN), datetime(2026, 1, 1, tzinfo=UTC))
    assert run is not None
    assert run.tzinfo is UTC
    assert run.isoformat() == "2026-01-01T01:30:00+00:00"


def test_after_inside_the_repeated_hour():
    timing = parse_cron("*/20 * * * *", BERLIN)
    first_pass = datetime(2026, 10, 25, 2, 50, tzinfo=BERLIN)  # fold 0: +02:00
    second_pass = datetime(2026, 10, 25, 2, 10, fold=1, tzinfo=BERLIN)  # +01:00
    assert next_run(timing, first_pass).astimezone(BERLIN).isoformat() == (
        "2026-10-25T02:00:00+01:00"
    )
    assert next_run(timing, second_pass).astimezone(BERLIN).isoformat() == (
        "2026-10-25T02:20:00+01:00"
    )
    fixed = parse_cron("40 2 * * *", BERLIN)  # already ran at 02:40+02:00
    assert next_run(fixed, second_pass).astimezone(BERLIN).isoformat() == (
        "2026-10-26T02:40:00+01:00"
    )


# Syntax


@pytest.mark.parametrize(
    ("expression", "same_as"),
    [
        ("30 4 * * mon", "30 4 * * 1"),
        ("0 0 * * sun", "0 0 * * 7"),  # 7 is Sunday too
        ("0 0 * * 0", "0 0 * * 7"),
        ("0 0 1 jan,jul *", "0 0 1 1,7 *"),
        ("0 12 * * sat-sun", "0 12 * * 0,6"),
        ("0 9 * * MON-FRI", "0 9 * * 1-5"),
        ("10-50/15 * * * *", "10,25,40 * * * *"),
        ("*/20 * * * *", "0,20,40 * * * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("  30   4 * *   1 ", "30 4 * * 1"),
    ],
)
def test_equivalent_expressions_run_at_the_same_times(expression, same_as):
    after = datetime(2026, 1, 1, tzinfo=UTC)
    expected = next_runs(parse_cron(same_as, BERLIN), after, 20)
    assert next_runs(parse_cron(expression, BERLIN), after, 20) == expected
    assert len(expected) == 20


def test_hours_with_steps_lists_and_ranges():
    fields = cron_module.parse("0 */3,9-18 * * *")
    assert fields.hours == (0, 3, 6, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 21)
    assert not fields.fixed  # the hour field starts with `*`


@pytest.mark.parametrize(
    ("expression", "day", "expected"),
    [
        # Both day fields restricted: either matches (the 13th OR a Friday).
        ("0 0 13 * fri", "2026-02-13", True),
        ("0 0 13 * fri", "2026-02-20", True),
        ("0 0 13 * fri", "2026-03-13", True),
        ("0 0 13 * fri", "2026-03-14", False),
        # One starts with `*`: both must match (odd days that are Mondays).
        ("0 0 */2 * mon", "2026-02-09", True),
        ("0 0 */2 * mon", "2026-02-16", False),
        ("0 0 */2 * mon", "2026-02-11", False),
    ],
)
def test_day_fields_combine_as_in_debian_cron(expression, day, expected):
    date = datetime.fromisoformat(day).date()
    assert cron_module.parse(expression).day_matches(date) is expected


def test_february_29_is_found_years_ahead():
    run = next_run(parse_cron("0 0 29 2 *"), datetime(2026, 3, 1, tzinfo=UTC))
    assert run == datetime(2028, 2, 29, tzinfo=UTC)
    assert previous_run(parse_cron("0 0 29 2 *"), run - timedelta(seconds=1)) == (
        datetime(2024, 2, 29, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "61 is out of range 0-59 in the minute field"),
        ("0 24 * * *", "24 is out of range 0-23 in the hour field"),
        ("0 0 0 * *", "0 is out of range 1-31 in the day-of-month field"),
        ("0 0 * 13 *", "13 is out of range 1-12 in the month field"),
        ("0 0 * * 8", "8 is out of range 0-7 in the day-of-week field"),
        ("*/0 * * * *", "A step must be at least 1, not 0 in the minute field"),
        ("0 0 30 2 *", "can never fire: day 30 does not occur in feb"),
        ("0 0 31 4,6,9,11 *", "can never fire"),
        ("* * * *", "has 4 fields; a cron expression has 5"),
        ("* * * * * *", "has 6 fields"),
        ("@reboot", "Unknown cron alias '@reboot'"),
        ("0 0 * foo *", "'foo' is not a valid name in the month field"),
        ("0 0 * * mon-fry", "'fry' is not a valid name in the day-of-week field"),
        ("H * * * *", "Invalid syntax in the minute field"),
        ("0 0 L * *", "Invalid syntax in the day-of-month field"),
        ("0 0 * * 1#2", "Invalid syntax in the day-of-week field"),
        ("", "has 0 fields"),
    ],
)
def test_invalid_expressions_say_what_is_wrong(expression, message):
    with pytest.raises(ScheduleError, match=message.replace("*", r"\*")):
        parse_cron(expression)


def test_0_0_30_2_mon_can_fire_on_february_mondays():
    """Both day fields restricted: the Monday side still matches."""
    run = next_run(parse_cron("0 0 30 2 mon"), datetime(2026, 1, 1, tzinfo=UTC))
    assert run == datetime(2026, 2, 2, tzinfo=UTC)


def test_unknown_zone_and_naive_after_are_refused():
    with pytest.raises(ScheduleError, match="Unknown time zone 'Mars/Olympus'"):
        parse_zone("Mars/Olympus")
    with pytest.raises(ScheduleError, match="is naive"):
        next_run(parse_cron("* * * * *"), datetime(2026, 1, 1))


def test_naive_database_datetimes_are_read_in_a_zone():
    naive = datetime(2026, 7, 1, 12, 0)
    assert as_aware(naive, "Europe/Berlin").isoformat() == "2026-07-01T10:00:00+00:00"
    aware = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert as_aware(aware, "Europe/Berlin") == aware
    # Mixed naive and aware inputs meet as UTC: no "can't subtract" anywhere.
    assert as_aware(naive, "UTC") - aware == timedelta(0)


def test_crontab_helper_builds_expressions():
    assert crontab(minute=30, hour=4, day_of_week=1) == "30 4 * * 1"
    assert crontab(hour=17, minute=30) == "30 17 * * *"
    assert crontab(minute={0, 30}, hour="*/3,9-18") == "0,30 */3,9-18 * * *"
    assert crontab() == "* * * * *"
    assert crontab(day_of_month=1, month_of_year="jan") == "* * 1 jan *"
    assert parse_cron(crontab(minute=30, hour=4, day_of_week=1)).fields.fixed


# Intervals, clocked, windows


def test_interval_is_elapsed_time_from_its_anchor():
    anchor = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    every = interval(timedelta(seconds=20), anchor)
    after = datetime(2026, 1, 1, 0, 1, 0, tzinfo=UTC)
    assert next_run(every, after) == datetime(2026, 1, 1, 0, 1, 5, tzinfo=UTC)
    assert previous_run(every, after) == datetime(2026, 1, 1, 0, 0, 45, tzinfo=UTC)
    exact = datetime(2026, 1, 1, 0, 1, 5, tzinfo=UTC)
    assert next_run(every, exact) == exact + timedelta(seconds=20)  # strictly after
    assert previous_run(every, exact) == exact  # at or before


def test_intervals_under_a_second_are_refused():
    with pytest.raises(ScheduleError, match="at least 1 second"):
        interval(timedelta(milliseconds=500))
    with pytest.raises(ScheduleError, match="at least 1 second"):
        interval(timedelta(0))


def test_clocked_runs_once():
    at = datetime(2026, 5, 1, 9, 0, tzinfo=BERLIN)
    timing = clocked(at)
    assert next_run(timing, at - timedelta(seconds=1)) == at
    assert next_run(timing, at) is None
    assert previous_run(timing, at + timedelta(days=1)) == at
    assert previous_run(timing, at - timedelta(seconds=1)) is None


def test_start_and_expiry_bound_the_runs():
    timing = parse_cron("0 * * * *")
    start = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    expires = datetime(2026, 1, 1, 13, 0, tzinfo=UTC)
    runs = next_runs(
        timing, datetime(2026, 1, 1, tzinfo=UTC), 10, start=start, expires=expires
    )
    assert [r.hour for r in runs] == [10, 11, 12]  # the start counts, expiry not
    late = datetime(2026, 1, 2, tzinfo=UTC)
    assert previous_run(timing, late, expires=expires).hour == 12
    assert previous_run(timing, start - timedelta(minutes=1), start=start) is None


@pytest.mark.parametrize(
    ("expression", "zone", "at", "expected"),
    [
        (
            "30 4 * * 1",
            BERLIN,
            "2026-11-25T00:00:00+00:00",
            "2026-11-23T04:30:00+01:00",
        ),
        (
            "30 2 * * *",
            BERLIN,
            "2026-03-29T12:00:00+02:00",
            "2026-03-29T03:00:00+02:00",
        ),
        (
            "30 2 * * *",
            BERLIN,
            "2026-10-25T02:40:00+01:00",
            "2026-10-25T02:30:00+02:00",
        ),
        (
            "*/30 * * * *",
            BERLIN,
            "2026-10-25T02:40:00+01:00",
            "2026-10-25T02:30:00+01:00",
        ),
        ("* * * * *", UTC, "2026-01-01T00:00:30+00:00", "2026-01-01T00:00:00+00:00"),
        ("0 0 1 1 *", UTC, "2026-06-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"),
    ],
)
def test_previous_run_is_the_latest_at_or_before(expression, zone, at, expected):
    found = previous_run(parse_cron(expression, zone), datetime.fromisoformat(at))
    assert found.astimezone(zone).isoformat() == expected


# The wall-clock walk against croniter's own


def random_field(rng: random.Random, low: int, high: int) -> str:
    kind = rng.randrange(5)
    a, b = sorted(rng.sample(range(low, high + 1), 2))
    return [
        "*",
        f"*/{rng.randint(1, 7)}",
        f"{a}-{b}",
        f"{a}-{b}/{rng.randint(1, 4)}",
        ",".join(str(v) for v in sorted(rng.sample(range(low, high + 1), 3))),
    ][kind]


def test_the_walk_matches_croniter_on_wall_clock_times():
    rng = random.Random(3)
    checked = 0
    for _ in range(300):
        expression = " ".join(
            random_field(rng, low, high)
            for low, high in ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
        )
        try:
            fields = cron_module.parse(expression)
        except ScheduleError:
            continue
        wall = datetime(2026, 1, 1) + timedelta(minutes=rng.randrange(500_000))
        reference = croniter(expression, wall, implement_cron_bug=True)
        for _ in range(5):
            expected = reference.get_next(datetime)
            assert fields.next_wall(wall) == expected, (expression, wall)
            wall = expected
        checked += 1
    assert checked > 200


DAY_FIELDS = ["29", "30", "31", "28-31", "1,15,31", "*/10", "2-30/7", "*", "13", "1"]
MONTH_FIELDS = ["2", "feb", "2,4", "1-3", "4,6,9,11", "*", "*/5", "jan,dec"]
WEEKDAY_FIELDS = ["*", "mon", "fri", "0", "7", "1-5", "sat,sun", "*/3", "2-4/2"]
# Month ends, Feb 28/29 of leap and common years, year ends.
DAY_STARTS = [
    "2023-02-28T23:59",
    "2024-02-28T23:59",
    "2024-02-29T12:00",
    "2025-01-31T23:30",
    "2027-12-31T23:59",
    "2028-02-27T00:00",
    "2026-04-30T23:59",
]


def test_the_day_jumps_match_croniter_around_month_ends_and_february_29():
    """The walk jumps to the next matching day: months of every length, leap
    years, both day fields (either one when both are restricted, both when one
    starts with `*`), seconds on the start time."""
    rng = random.Random(29)
    checked = 0
    for _ in range(400):
        minute = rng.choice(["0", "59", "*/20", "5,35"])
        hour = rng.choice(["0", "23", "*/6", "9-17/4"])
        fields = [rng.choice(f) for f in (DAY_FIELDS, MONTH_FIELDS, WEEKDAY_FIELDS)]
        expression = " ".join([minute, hour, *fields])
        try:
            parsed = cron_module.parse(expression)
        except ScheduleError:  # e.g. `0 0 30 feb *`, refused as never firing
            continue
        wall = datetime.fromisoformat(rng.choice(DAY_STARTS))
        wall += timedelta(seconds=rng.randrange(60))
        reference = croniter(expression, wall, implement_cron_bug=True)
        for _ in range(8):
            expected = reference.get_next(datetime)
            assert parsed.next_wall(wall) == expected, (expression, wall)
            assert parsed.day_matches(expected.date())
            wall = expected
        checked += 1
    assert checked > 300


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        # The seed's expressions, as Celery's crontab() wrote them.
        (crontab(hour=17, minute=30), "At 17:30"),
        (crontab(hour=4, minute=30, day_of_week=1), "At 04:30, only on Monday"),
        # crontab(hour="*/3,9-18"): minute "*", every minute of those hours.
        (
            crontab(hour="*/3,9-18"),
            "Every minute, during the hours 00, 03, 06, 09 through 18 and 21",
        ),
        (
            "0 */3,9-18 * * *",
            "At 0 minutes past the hour, during the hours 00, 03, 06, 09 through 18 "
            "and 21",
        ),
        (
            "30 1,3-5 * jan mon-fri",
            "At 30 minutes past the hour, during the hours 01 and 03 through 05, "
            "only in January, Monday through Friday",
        ),
        ("0 1,3 * * *", "At 01:00 and 03:00"),
        ("*/10 9-18 * * *", "Every 10 minutes, between 09:00 and 18:59"),
    ],
)
def test_cron_descriptions_say_every_field(expression, text):
    assert cron_module.describe_cron(cron_module.parse(expression)) == text
