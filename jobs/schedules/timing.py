"""Schedule maths, pure: when does a cron, interval or clocked schedule run?

No ORM, no Redis, no clock: every function takes the instant it reasons from.
Instants go in aware (any zone) and come out as aware UTC datetimes, which
compare and subtract safely; show them with `.astimezone(zone)`. (Python
compares two datetimes of the *same* zone by wall clock, ignoring `fold`, so
zone-local results would misorder the hour that repeats in autumn.)

Cron runs in its schedule's IANA zone, with Debian cron's DST rules (man 8 cron):
- a job at a fixed time of day (minute and hour not starting with `*`) whose
  time is skipped when clocks go forward runs once, right after the gap;
- such a job whose time repeats when clocks go back runs once, the first time;
- jobs whose minute or hour starts with `*` follow real time: nothing runs in
  the skipped hour, and the repeated hour runs twice.

Intervals are elapsed time (UTC): an hourly interval runs 25 times on a day that
is 25 hours long. Clocked schedules run once, at their instant.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jobs.exceptions import ScheduleError
from jobs.schedules import cron
from jobs.schedules.cron import CronFields, crontab

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_INTERVAL = timedelta(seconds=1)
LOOKBACK_MAX = timedelta(days=366 * 50)  # the rarest cron match recurs within 40 y


@lru_cache(maxsize=1024)
def parse_zone(name: str) -> ZoneInfo:
    """Return the IANA zone `name` ("Europe/Berlin"), raising ScheduleError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ScheduleError(
            f"Unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin'."
        ) from None


def as_aware(value: datetime, zone: ZoneInfo | str) -> datetime:
    """Return `value` as aware UTC; a naive value is read as wall time in `zone`.

    This is how naive datetimes from a USE_TZ = False database (local time in
    TIME_ZONE) meet aware ones without "can't compare offset-naive and
    offset-aware datetimes".
    """
    if value.tzinfo is None or value.utcoffset() is None:
        zone = parse_zone(zone) if isinstance(zone, str) else zone
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ScheduleError(
            f"{value!r} is naive; pass an aware datetime (see as_aware())."
        )
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Cron:
    """A cron expression read in an IANA zone."""

    fields: CronFields
    zone: ZoneInfo

    def next_after(self, after: datetime) -> datetime | None:
        local = after.astimezone(self.zone).replace(tzinfo=None)
        start = local
        # Inside the repeated hour, walls earlier than ours still have a second,
        # later instant: walk from the start of that hour.
        kind, first, second = resolve(local, self.zone)
        if kind == AMBIGUOUS and second is not None:
            start = local - (second - first)
        for instant in instants(self.fields, self.zone, start):
            if instant > after:
                return instant
        return None

    def latest_at(self, at: datetime) -> datetime | None:
        # Probe ever longer spans back from `at`; walk forward from the first
        # that holds a run (so a minutely cron costs one probe, a yearly ~10).
        span = timedelta(minutes=1)
        while span <= LOOKBACK_MAX:
            found = self.next_after(at - span)
            if found is not None and found <= at:
                while (later := self.next_after(found)) is not None and later <= at:
                    found = later
                return found
            span *= 4
        return None


@dataclass(frozen=True, slots=True)
class Interval:
    """Every `every` of elapsed time, counted from `anchor`."""

    every: timedelta
    anchor: datetime = EPOCH

    def next_after(self, after: datetime) -> datetime:
        return self.anchor + ((after - self.anchor) // self.every + 1) * self.every

    def latest_at(self, at: datetime) -> datetime:
        return self.anchor + ((at - self.anchor) // self.every) * self.every


@dataclass(frozen=True, slots=True)
class Clocked:
    """Once, at `at`."""

    at: datetime

    def next_after(self, after: datetime) -> datetime | None:
        return self.at if self.at > after else None

    def latest_at(self, at: datetime) -> datetime | None:
        return self.at if self.at <= at else None


Timing = Cron | Interval | Clocked


def parse_cron(expression: str, zone: ZoneInfo | str = "UTC") -> Cron:
    """Return a Cron for `expression` in `zone`, raising ScheduleError."""
    zone = parse_zone(zone) if isinstance(zone, str) else zone
    return Cron(cron.parse(expression), zone)


def interval(every: timedelta, anchor: datetime = EPOCH) -> Interval:
    """Return an Interval, raising ScheduleError below one second."""
    if not isinstance(every, timedelta) or every < MIN_INTERVAL:
        raise ScheduleError(f"An interval must be at least 1 second, not {every!r}.")
    return Interval(every, utc(anchor))


def clocked(at: datetime) -> Clocked:
    return Clocked(utc(at))


def next_run(
    timing: Timing,
    after: datetime,
    *,
    start: datetime | None = None,
    expires: datetime | None = None,
) -> datetime | None:
    """Return the next run strictly after `after`, or None if there is none.

    timing: a Cron (parse_cron), Interval (interval) or Clocked (clocked).
    after: an aware datetime, in any zone.
    start: no run before this instant (a run at `start` counts).
    expires: no run at or after this instant.
    """
    after = utc(after)
    if start is not None:
        after = max(after, utc(start) - timedelta(microseconds=1))
    found = timing.next_after(after)
    if found is None or (expires is not None and found >= utc(expires)):
        return None
    return found


def previous_run(
    timing: Timing,
    at: datetime,
    *,
    start: datetime | None = None,
    expires: datetime | None = None,
) -> datetime | None:
    """Return the latest run at or before `at`, or None; see next_run()."""
    at = utc(at)
    if expires is not None:
        at = min(at, utc(expires) - timedelta(microseconds=1))
    found = timing.latest_at(at)
    if found is None or (start is not None and found < utc(start)):
        return None
    return found


def next_runs(
    timing: Timing,
    after: datetime,
    count: int,
    *,
    start: datetime | None = None,
    expires: datetime | None = None,
) -> list[datetime]:
    """Return up to `count` runs after `after`; see next_run()."""
    runs: list[datetime] = []
    while len(runs) < count:
        found = next_run(timing, after, start=start, expires=expires)
        if found is None:
            break
        runs.append(found)
        after = found
    return runs


# Wall clock to instants

NORMAL, AMBIGUOUS, GAP = "normal", "ambiguous", "gap"


def resolve(wall: datetime, zone: ZoneInfo) -> tuple[str, datetime, datetime | None]:
    """Map a naive wall time in `zone` to its instant(s).

    normal: (instant, None); ambiguous (clocks went back): (first, second);
    gap (clocks went forward, the time never exists): (transition, None).
    """
    before = wall.replace(tzinfo=zone).utcoffset()
    after = wall.replace(tzinfo=zone, fold=1).utcoffset()
    assert before is not None and after is not None
    naive_utc = wall.replace(tzinfo=UTC)
    if before == after:
        return NORMAL, naive_utc - before, None
    if before > after:
        return AMBIGUOUS, naive_utc - before, naive_utc - after
    return GAP, transition(naive_utc - after, naive_utc - before, zone), None


def transition(low: datetime, high: datetime, zone: ZoneInfo) -> datetime:
    """The instant in (low, high] where `zone`'s offset changes (to the second)."""
    offset_low = low.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) // 2
        if middle.astimezone(zone).utcoffset() == offset_low:
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0)


def instants(fields: CronFields, zone: ZoneInfo, start: datetime) -> Iterator[datetime]:
    """Yield the run instants of walls after naive `start`, in order, once each."""
    repeated: list[datetime] = []  # second occurrences, for wildcard jobs
    last: datetime | None = None
    wall = fields.next_wall(start)
    while wall is not None:
        kind, first, second = resolve(wall, zone)
        if kind == AMBIGUOUS:
            batch = [first]
            if not fields.fixed and second is not None:
                repeated.append(second)
        else:
            batch = [*repeated]
            repeated.clear()
            if kind == NORMAL or fields.fixed:
                batch.append(first)
        for instant in batch:
            if last is None or instant > last:
                last = instant
                yield instant
        wall = fields.next_wall(wall)


def describe_interval(every: timedelta) -> str:
    """Return "Every 20 seconds", "Every 1 hour, 30 minutes"..."""
    if every.microseconds:
        return f"Every {every.total_seconds():g} seconds"
    seconds = int(every.total_seconds())
    parts = []
    for unit, size in (("day", 86_400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    return "Every " + ", ".join(parts)


__all__ = [
    "Clocked",
    "Cron",
    "Interval",
    "ScheduleError",
    "Timing",
    "as_aware",
    "clocked",
    "crontab",
    "interval",
    "next_run",
    "next_runs",
    "parse_cron",
    "parse_zone",
    "previous_run",
]
