"""What a worker runs for one schedule, and the validation all sources share.

An Entry is built from a `Schedule` row (here) or a JOBS_SCHEDULES item
(jobs.schedules.static). The model's clean(), `manage.py check` and the worker
validate through the same functions here, so the admin refuses exactly what a
worker would skip.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.tasks.exceptions import InvalidTask
from django.utils import timezone as dj_timezone

from jobs import registry, serialization
from jobs.enqueue import check_call
from jobs.exceptions import JobsError, ScheduleError
from jobs.schedules.cron import describe_cron
from jobs.schedules.timing import (
    Cron,
    Interval,
    Timing,
    as_aware,
    clocked,
    describe_interval,
    interval,
    next_run,
    parse_cron,
    parse_zone,
    previous_run,
)

if TYPE_CHECKING:
    from jobs.task import JobsTask

ONE_KIND = "Set exactly one of cron, interval or clocked time."
OVERLAPS = ("allow", "skip")
MISSED = ("skip", "once", "grace")
# What a worker reads of a row: the pk first, the columns the worker itself
# writes last (jobs.schedules.sources compares rows without them).
ROW_FIELDS = (
    "id",
    "name",
    "task",
    "args",
    "kwargs",
    "queue_name",
    "cron",
    "interval",
    "clocked_time",
    "timezone",
    "start_time",
    "expires",
    "one_off",
    "overlap",
    "missed",
    "grace",
    "created_at",
    "updated_at",
    "last_run_at",
    "last_result_id",
)
SAFE_ID = re.compile(r"[^A-Za-z0-9._-]")
Problem = (JobsError, InvalidTask)


# Not frozen: a frozen dataclass's __init__ costs 5x more, and a worker builds
# 10,000 of these at start-up. Nothing mutates one; `replace()` makes new ones.
@dataclass(slots=True, kw_only=True)
class Entry:
    """One schedule, validated, as a worker runs it."""

    key: str  # "db:<pk>" or "settings:<name>"
    name: str
    task: str
    timing: Timing
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue_name: str = ""
    start: datetime | None = None
    expires: datetime | None = None
    since: datetime | None = None  # runs up to here are done or predate the schedule
    skip_if_running: bool = False
    missed: str = "skip"
    grace: timedelta | None = None
    once: bool = False  # stop after one run (one-off or clocked)
    pk: int | None = None
    last_result_id: str = ""

    @property
    def job_prefix(self) -> str:
        if self.pk is not None:
            return f"schedule:{self.pk}"
        return f"schedule:settings:{safe_id(self.name)}"

    def job_id(self, tick: datetime) -> str:
        """The same id in every worker for one run: enqueues of it dedupe."""
        return f"{self.job_prefix}:{int(tick.timestamp() * 1000)}"

    def next_run(self, after: datetime) -> datetime | None:
        return next_run(self.timing, after, start=self.start, expires=self.expires)

    def previous_run(self, at: datetime) -> datetime | None:
        return previous_run(self.timing, at, start=self.start, expires=self.expires)


def safe_id(name: str) -> str:
    safe = SAFE_ID.sub("-", name)[:100]
    if safe != name:
        safe += "-" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return safe


@cache
def default_zone() -> str:
    # Read for every row of a load (10,000 at start-up): settings' attribute
    # access costs more than the rest of the row's dates together.
    from django.conf import settings

    return str(settings.TIME_ZONE or "UTC")


@receiver(setting_changed)
def _forget_default_zone(*, setting: str, **kwargs: Any) -> None:
    if setting == "TIME_ZONE":
        default_zone.cache_clear()


def db_aware(value: datetime | None) -> datetime | None:
    """A datetime from the database as aware UTC (naive ones are TIME_ZONE)."""
    if value is None:
        return None
    if value.tzinfo is UTC:  # what the database gives with USE_TZ = True
        return value
    return as_aware(value, default_zone())


# Tasks and their arguments


def resolve_task(path: str, queue_name: str = "") -> JobsTask:
    """Return the registered task at `path`, on `queue_name` if given."""
    task = registry.get(path)
    if queue_name and queue_name != task.queue_name:
        backend = task.get_backend()
        if not backend.accepts_queue(queue_name):
            raise ScheduleError(
                f"Queue {queue_name!r} is not one of TASKS[{task.backend!r}]"
                f"['QUEUES'] ({', '.join(sorted(backend.queues))})."
            )
        task = task.using(queue_name=queue_name)
    return task


def check_args(args: Any) -> None:
    if not isinstance(args, list):
        raise ScheduleError("args must be a JSON list, like [5, 6].")
    serialization.check_json(args, "args")


def check_kwargs(kwargs: Any) -> None:
    if not isinstance(kwargs, dict):
        raise ScheduleError('kwargs must be a JSON object, like {"x": 5}.')
    serialization.check_json(kwargs, "kwargs")


# Rows (Schedule instances or values() dicts)


def timing_of(row: Mapping[str, Any]) -> Timing:
    """The maths of a row, raising ScheduleError when it is invalid."""
    kinds = bool(row["cron"]) + (row["interval"] is not None)
    if kinds + (row["clocked_time"] is not None) != 1:
        raise ScheduleError(ONE_KIND)
    zone_ = default_zone()  # naive datetimes from the database are in TIME_ZONE
    zone = parse_zone(row["timezone"] or zone_)
    if row["cron"]:
        return parse_cron(row["cron"], zone)
    if row["interval"] is not None:
        # From start_time, or from the creation to the second (runs on whole
        # seconds read better, and every worker reads the same row anyway).
        anchor = row["start_time"] or (
            row.get("created_at") or dj_timezone.now()
        ).replace(microsecond=0)
        return interval(row["interval"], as_aware(anchor, zone_))
    return clocked(as_aware(row["clocked_time"], zone_))


def window_of(row: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    return db_aware(row["start_time"]), db_aware(row["expires"])


def entry_from_row(row: Mapping[str, Any], alias: str) -> Entry | None:
    """The Entry of a row; None when its task belongs to another backend."""
    task = resolve_task(row["task"], row["queue_name"])
    if task.backend != alias:
        return None
    # JSONField values are JSON already: only their shape needs checking.
    if not isinstance(row["args"], list):
        raise ScheduleError("args must be a JSON list, like [5, 6].")
    if not isinstance(row["kwargs"], dict):
        raise ScheduleError('kwargs must be a JSON object, like {"x": 5}.')
    check_call(task, row["args"], row["kwargs"])
    check_policies(row["overlap"], row["missed"], row["grace"])
    start, expires = window_of(row)
    return Entry(
        key=f"db:{row['id']}",
        pk=row["id"],
        name=row["name"],
        task=row["task"],
        args=row["args"],
        kwargs=row["kwargs"],
        queue_name=row["queue_name"],
        timing=timing_of(row),
        start=start,
        expires=expires,
        since=later(db_aware(row["updated_at"]), db_aware(row["last_run_at"])),
        skip_if_running=row["overlap"] == "skip",
        missed=row["missed"],
        grace=row["grace"],
        once=row["one_off"] or row["clocked_time"] is not None,
        last_result_id=row["last_result_id"] or "",
    )


def later(a: datetime | None, b: datetime | None) -> datetime | None:
    """The later of two instants, either of which may be None."""
    if a is None or (b is not None and b > a):
        return b
    return a


def check_policies(overlap: str, missed: str, grace: timedelta | None) -> None:
    if overlap not in OVERLAPS:
        raise ScheduleError(f"overlap must be one of {OVERLAPS}, not {overlap!r}.")
    if missed not in MISSED:
        raise ScheduleError(f"missed must be one of {MISSED}, not {missed!r}.")
    if missed == "grace" and (grace is None or grace <= timedelta(0)):
        raise ScheduleError("Missed runs within a grace period need a grace period.")


def row_errors(
    row: Mapping[str, Any], unread: Collection[str] = ()
) -> dict[str, list[str]]:
    """Validation errors by field, for Schedule.clean(); `unread` fields (a
    form could not read them) are not checked, nor is the call that uses them."""
    errors: dict[str, list[str]] = {}

    def check(name: str, test: Any, *args: Any) -> Any:
        try:
            return test(*args)
        except Problem as e:
            errors.setdefault(name, []).append(str(e))
            return None

    check("timezone", parse_zone, row["timezone"])
    check_timing(row, check)
    task = check("task", registry.get, row["task"])
    if task is not None:
        task = check("queue_name", resolve_task, row["task"], row["queue_name"])
    if "args" not in unread:
        check("args", check_args, row["args"])
    if "kwargs" not in unread:
        check("kwargs", check_kwargs, row["kwargs"])
    if task is not None and not {*errors, *unread} & {"args", "kwargs"}:
        check("args", check_call, task, row["args"], row["kwargs"])
    check("grace", check_policies, row["overlap"], row["missed"], row["grace"])
    start, expires = window_of(row)
    if start is not None and expires is not None and expires <= start:
        errors.setdefault("expires", []).append("Expiry must be after the start.")
    return errors


def check_timing(row: Mapping[str, Any], check: Any) -> None:
    if row["cron"]:
        check("cron", parse_cron, row["cron"])  # any zone will do
    if row["interval"] is not None:
        check("interval", interval, row["interval"])
    if row["clocked_time"] is not None:
        check("clocked_time", check_clocked, row)


def check_clocked(row: Mapping[str, Any]) -> None:
    clocked = db_aware(row["clocked_time"])
    never_ran = row["last_run_at"] is None and row.get("enabled", True)
    if clocked is not None and never_ran and clocked <= datetime.now(UTC):
        raise ScheduleError("This time is in the past: the schedule would never run.")


def describe(row: Mapping[str, Any]) -> str:
    """A row's schedule in words: "At 04:30, only on Monday (Europe/Berlin)"."""
    try:
        timing = timing_of(row)
    except ScheduleError as e:
        return f"Invalid: {e}"
    if isinstance(timing, Cron):
        return f"{describe_cron(timing.fields)} ({timing.zone.key})"
    if isinstance(timing, Interval):
        return describe_interval(timing.every)
    zone = parse_zone(row["timezone"] or default_zone())
    return f"Once, at {timing.at.astimezone(zone):%Y-%m-%d %H:%M:%S %Z}"
