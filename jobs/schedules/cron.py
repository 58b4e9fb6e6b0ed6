"""Cron expressions: parsed by croniter, matched in wall-clock time.

croniter parses and expands the five fields (lists, ranges, steps, `a-b/n`, month
and day names, 7 = Sunday, the `@daily`-style aliases). Matching the expanded
fields is done here, on naive wall-clock times, for two reasons: croniter's own
`get_next` maps local times to instants itself and runs a job twice in the hour
that repeats when clocks go back, and it costs ~130 µs a call where this walk
costs a few, which is what lets a worker load 10,000 schedules at once.
`tests/unit/test_schedules.py` checks the walk against croniter's.

Day of month and day of week combine as Debian cron does: when either field
starts with `*`, a day must match both; otherwise either is enough.
"""

from __future__ import annotations

import bisect
import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from jobs.exceptions import ScheduleError

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
WEEKDAYS = "sun mon tue wed thu fri sat".split()
NAMES: tuple[tuple[str, ...], ...] = ((), (), (), tuple(MONTHS), tuple(WEEKDAYS))
HINTS = ("use numbers.",) * 3 + ("months are jan-dec.", "days are sun-sat.")
DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # Feb: leap
_VALUE = r"(?:\d+|[a-z]{3})"
_TOKEN = rf"(?:\*|{_VALUE}(?:-{_VALUE})?)(?:/\d+)?"
FIELD_RE = re.compile(rf"^{_TOKEN}(?:,{_TOKEN})*$")
SEARCH_YEARS = 50  # the rarest match (Feb 29 on one weekday) recurs within 40
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class CronFields:
    """A parsed cron expression: the allowed values of each field."""

    expression: str  # five fields, aliases expanded
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: tuple[int, ...]
    weekdays: frozenset[int]  # 0 = Sunday
    days_and: bool  # a day must match both day fields (one starts with `*`)
    fixed: bool  # minute and hour name a time of day (neither starts with `*`)

    def day_matches(self, day: date) -> bool:
        matching = month_days(
            self.days, self.weekdays, self.days_and, day.year, day.month
        )
        return day.day in matching

    def next_wall(self, after: datetime) -> datetime | None:
        """Return the first matching minute strictly after naive `after`."""
        t = after + MINUTE  # its seconds are ignored: runs are on whole minutes
        year, month, day = t.year, t.month, t.day
        time = self.time_from(t.hour, t.minute)
        limit = year + SEARCH_YEARS
        while year <= limit:
            if month in self.months:
                days = month_days(self.days, self.weekdays, self.days_and, year, month)
                index = bisect.bisect_left(days, day)
                if index < len(days) and days[index] == day:
                    if time is not None:
                        return datetime(year, month, day, *time)
                    index += 1
                if index < len(days):
                    return datetime(year, month, days[index], *self.first_time)
            # Not in this month: on to the first matching day of the next one.
            following = first_at_least(self.months, month + 1)
            if following is None:
                year, following = year + 1, self.months[0]
            month, day, time = following, 1, self.first_time
        return None

    @property
    def first_time(self) -> tuple[int, int]:
        return self.hours[0], self.minutes[0]

    def time_from(self, hour: int, minute: int) -> tuple[int, int] | None:
        """The first (hour, minute) at or after this time of day, if any."""
        found = first_at_least(self.hours, hour)
        if found is None:
            return None
        if found == hour:
            if (at := first_at_least(self.minutes, minute)) is not None:
                return hour, at
            if (found := first_at_least(self.hours, hour + 1)) is None:
                return None
        return found, self.minutes[0]


@lru_cache(maxsize=4096)
def month_days(
    days: frozenset[int],
    weekdays: frozenset[int],
    days_and: bool,
    year: int,
    month: int,
) -> tuple[int, ...]:
    """The days of a month that match the day fields, in order.

    Keyed on the day fields alone, which thousands of expressions share (`*`,
    `mon-fri`, `1`...): a walk jumps to the next matching day instead of trying
    each day of the month in turn.
    """
    length = calendar.monthrange(year, month)[1]
    first = (date(year, month, 1).weekday() + 1) % 7  # its weekday, 0 = Sunday
    found = []
    for day in range(1, length + 1):
        in_month = day in days
        in_week = (first + day - 1) % 7 in weekdays
        if (in_month and in_week) if days_and else (in_month or in_week):
            found.append(day)
    return tuple(found)


def first_at_least(values: tuple[int, ...], value: int) -> int | None:
    index = bisect.bisect_left(values, value)
    return values[index] if index < len(values) else None


class FieldError(ScheduleError):
    """One field is invalid; parse() says which, in which expression."""

    def __init__(self, problem: str, hint: str = "") -> None:
        super().__init__(problem)
        self.hint = hint


@lru_cache(maxsize=4096)
def parse(expression: str) -> CronFields:
    """Parse and validate a cron expression, raising ScheduleError.

    Five fields (minute hour day-of-month month day-of-week) or an alias
    (@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly).
    """
    text = " ".join(expression.lower().split())
    if text.startswith("@"):
        if text not in ALIASES:
            raise ScheduleError(
                f"Unknown cron alias {expression!r}; use one of {', '.join(ALIASES)}."
            )
        text = ALIASES[text]
    fields = text.split(" ")
    if len(fields) != 5:
        raise ScheduleError(
            f"{expression!r} has {len(fields) if text else 0} fields; a cron "
            "expression has 5: minute hour day-of-month month day-of-week."
        )
    values = []
    for index, field in enumerate(fields):
        try:
            values.append(expand_field(index, field))
        except FieldError as e:
            where = f"the {FIELDS[index]} field ({field!r}) of {expression!r}"
            raise ScheduleError(f"{e} in {where}{e.hint or '.'}") from None
    parsed = CronFields(
        expression=text,
        minutes=values[0],
        hours=values[1],
        days=frozenset(values[2]),
        months=values[3],
        weekdays=frozenset(values[4]),
        days_and=fields[2].startswith("*") or fields[4].startswith("*"),
        fixed=not (fields[0].startswith("*") or fields[1].startswith("*")),
    )
    check_can_fire(parsed, expression)
    return parsed


@lru_cache(maxsize=1024)
def expand_field(index: int, field: str) -> tuple[int, ...]:
    """croniter's expansion of one field, as sorted ints (`*` spelled out).

    Fields expand independently, so the cache holds the few distinct fields
    (`30`, `*/5`, `mon-fri`...) that thousands of distinct expressions share.
    """
    check_field(index, field)
    # croniter (and dateutil under it) load on the first expression parsed, not
    # in every process that imports `jobs` (its `crontab` helper lives here).
    from croniter import CroniterError, croniter

    probe = ["*"] * 5
    probe[index] = field
    try:
        expanded, _ = croniter.expand(" ".join(probe))
    except CroniterError as e:
        raise FieldError(f"Invalid value ({e})") from None
    low, high = BOUNDS[index]
    found = expanded[index]
    if found == ["*"]:
        found = list(range(low, 7 if index == 4 else high + 1))
    return tuple(sorted({int(v) % 7 if index == 4 else int(v) for v in found}))


def check_field(index: int, field: str) -> None:
    """Refuse what croniter would misreport, or accept beyond standard cron."""
    low, high = BOUNDS[index]
    if not FIELD_RE.match(field):
        raise FieldError(
            "Invalid syntax",
            ": use numbers, names, `*`, lists (1,2), ranges (1-5) and steps "
            "(*/15, 1-30/5).",
        )
    if any(int(step) == 0 for step in re.findall(r"/(\d+)", field)):
        raise FieldError("A step must be at least 1, not 0")
    for number in re.findall(r"(?<![/\d])(\d+)", field):
        if not low <= int(number) <= high:
            raise FieldError(f"{number} is out of range {low}-{high}")
    for word in re.findall(r"[a-z]+", field):
        if word not in NAMES[index]:
            raise FieldError(f"{word!r} is not a valid name", f": {HINTS[index]}")


def check_can_fire(parsed: CronFields, expression: str) -> None:
    # Every (month, day) recurs on every weekday within 28 years, so only a day
    # of month that no chosen month has can make an expression never match.
    if not parsed.days_and or min(parsed.days) <= 29:  # every month has a 29th
        return
    if any(day <= DAYS_IN_MONTH[m] for m in parsed.months for day in parsed.days):
        return
    months = ", ".join(NAMES[3][m - 1] for m in parsed.months)
    days = ", ".join(str(d) for d in sorted(parsed.days))
    raise ScheduleError(
        f"{expression!r} can never fire: day {days} does not occur in {months}."
    )


def crontab(
    minute: int | str | Iterable[int] = "*",
    hour: int | str | Iterable[int] = "*",
    day_of_week: int | str | Iterable[int] = "*",
    day_of_month: int | str | Iterable[int] = "*",
    month_of_year: int | str | Iterable[int] = "*",
) -> str:
    """Return the cron expression of Celery's `crontab(...)` arguments.

    crontab(minute=30, hour=4, day_of_week=1) == "30 4 * * 1". Each field takes
    an int, a cron field string ("*/15", "mon-fri") or ints ({0, 30}). It is
    validated where it is used (`manage.py check`, the worker), not here.
    """
    parts = (minute, hour, day_of_month, month_of_year, day_of_week)
    return " ".join(field_text(part) for part in parts)


def field_text(value: int | str | Iterable[int]) -> str:
    if isinstance(value, str):
        return value.replace(" ", "")
    if isinstance(value, int):
        return str(value)
    return ",".join(str(v) for v in sorted(value))


def describe_cron(fields: CronFields) -> str:
    """A parsed expression in words: "At 04:30, only on Monday".

    cron_descriptor words it, except an hour list with a range or a step
    (`*/3,9-18`), where it drops the minute and reads the range as every
    minute ("At every 3 hours and 09:00 through 18:59"): those hours are
    spelled out after the minutes instead.
    """
    # cron_descriptor loads with the first description (the admin, the
    # dashboard), not in every worker.
    from cron_descriptor import DescriptionTypeEnum, ExpressionDescriptor, Options

    options = Options()
    options.use_24hour_time_format = True
    options.locale_code = "en_US"
    words = ExpressionDescriptor(fields.expression, options)
    minute, hour, day, *_ = fields.expression.split(" ")
    if "," not in hour or not re.search(r"[-/]", hour):
        return str(words.get_description())
    minutes = words.get_description(DescriptionTypeEnum.MINUTES)
    text = f"{minutes or f'at {minute} minutes past the hour'}, "
    text += f"during the hours {hour_list(fields.hours)}"
    parts = [DescriptionTypeEnum.MONTH, DescriptionTypeEnum.DAYOFWEEK]
    if day != "*":
        parts.insert(0, DescriptionTypeEnum.DAYOFMONTH)
    text += "".join(words.get_description(part) for part in parts)
    return text[0].upper() + text[1:]


def hour_list(hours: tuple[int, ...]) -> str:
    """(0, 3, 9, 10, 11, 21) -> "00, 03, 09 through 11 and 21"."""
    runs: list[list[int]] = []
    for hour in hours:
        if runs and hour == runs[-1][-1] + 1:
            runs[-1].append(hour)
        else:
            runs.append([hour])
    texts = [
        f"{run[0]:02}" if len(run) == 1 else f"{run[0]:02} through {run[-1]:02}"
        for run in runs
    ]
    return texts[0] if len(texts) == 1 else f"{', '.join(texts[:-1])} and {texts[-1]}"
