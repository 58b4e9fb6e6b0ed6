"""Schedules declared in settings (JOBS_SCHEDULES), parsed into entries.

    JOBS_SCHEDULES = {
        "sum-task": {
            "task": "webproject.tasks.add",
            "schedule": timedelta(seconds=20),
            "args": (5, 6),
        },
        "send-report": {
            "task": "webproject.tasks.report",
            "schedule": crontab(hour=4, minute=30, day_of_week=1),
        },
    }

They are validated as rows are (jobs.schedules.entries): `manage.py check`
reports what a worker would skip.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from jobs.enqueue import check_call
from jobs.exceptions import ScheduleError
from jobs.schedules.entries import (
    Entry,
    Problem,
    check_args,
    check_kwargs,
    check_policies,
    default_zone,
    resolve_task,
)
from jobs.schedules.timing import (
    EPOCH,
    Timing,
    as_aware,
    clocked,
    interval,
    parse_cron,
    parse_zone,
)

STATIC_KEYS = frozenset(
    {"task", "schedule", "args", "kwargs", "queue_name", "timezone", "overlap"}
    | {"missed", "grace", "start_time", "expires", "description"}
)


def static_entries(
    items: Mapping[str, Any],
) -> tuple[list[Entry], list[tuple[str, str]]]:
    """Parse JOBS_SCHEDULES: the valid entries, and (name, error) for the others."""
    entries: list[Entry] = []
    problems: list[tuple[str, str]] = []
    for name, item in items.items():
        try:
            entries.append(static_entry(str(name), item))
        except (*Problem, TypeError, ValueError) as e:  # e.g. "args": 5
            problems.append((str(name), str(e)))
    return entries, problems


def static_entry(name: str, item: Any) -> Entry:
    if not isinstance(item, Mapping) or not {"task", "schedule"} <= item.keys():
        raise ScheduleError("Give a dict with at least 'task' and 'schedule'.")
    unknown = sorted(set(item) - STATIC_KEYS)
    if unknown:
        raise ScheduleError(f"Unknown keys {unknown}; use {sorted(STATIC_KEYS)}.")
    zone = parse_zone(item.get("timezone") or default_zone())
    start = aware_or_none(item.get("start_time"), zone)
    timing = static_timing(item["schedule"], zone, start)
    path = str(getattr(item["task"], "module_path", item["task"]))
    task = resolve_task(path, item.get("queue_name", ""))
    args, kwargs = list(item.get("args", ())), dict(item.get("kwargs", {}))
    check_args(args)
    check_kwargs(kwargs)
    check_call(task, args, kwargs)
    missed, grace = item.get("missed", "skip"), item.get("grace")
    check_policies(item.get("overlap", "allow"), missed, grace)
    return Entry(
        key=f"settings:{name}",
        name=name,
        task=path,
        args=args,
        kwargs=kwargs,
        queue_name=item.get("queue_name", ""),
        timing=timing,
        start=start,
        expires=aware_or_none(item.get("expires"), zone),
        skip_if_running=item.get("overlap") == "skip",
        missed=missed,
        grace=grace,
        once=isinstance(item["schedule"], datetime),
    )


def aware_or_none(value: datetime | None, zone: Any) -> datetime | None:
    return None if value is None else as_aware(value, zone)


def static_timing(value: Any, zone: Any, start: datetime | None) -> Timing:
    # Intervals count from the epoch unless a start is given: every worker
    # then agrees on the runs without having to share any state.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = timedelta(seconds=value)
    if isinstance(value, timedelta):
        return interval(value, start or EPOCH)
    if isinstance(value, str):
        return parse_cron(value, zone)
    if isinstance(value, datetime):
        return clocked(as_aware(value, zone))
    raise ScheduleError(
        "schedule must be a timedelta (or seconds), a cron string or crontab(...), "
        f"or a datetime; not {value!r}."
    )
