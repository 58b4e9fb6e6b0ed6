"""The schedules as the dashboard shows them: next run, last run, "Run now".

Schedules come from the `Schedule` model (edited in the admin) and from
JOBS_SCHEDULES. Both are looked up when asked, not imported with this module,
so the dashboard works (and says why the section is empty) in a project whose
database has no schedule table yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from django.apps import apps
from django.db import DatabaseError
from django.urls import NoReverseMatch, reverse

from jobs.conf import jobs_settings
from jobs.dashboard import monitor
from jobs.exceptions import JobsError
from jobs.redis.keys import SCHEDULES_LAST_KEY
from jobs.schedules.entries import db_aware, resolve_task
from jobs.schedules.static import static_entries, static_entry
from jobs.schedules.timing import Cron, Interval, describe_interval

if TYPE_CHECKING:
    from jobs.backend import JobsBackend

SHOWN_MAX = 100  # schedules listed, soonest first


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleRow:
    key: str  # "db:<pk>" or "settings:<name>", what "Run now" posts
    name: str
    task: str
    source: str  # "admin" or "settings"
    description: str
    next_run: datetime | None
    last_run: datetime | None
    last_job: str
    last_status: str
    problem: str = ""
    admin_url: str = ""


def schedule_model() -> Any:
    """The Schedule model (Any: this module must not import it), or None."""
    try:
        return apps.get_model("jobs", "Schedule")
    except LookupError:
        return None


def rows(backend: JobsBackend) -> tuple[list[ScheduleRow], str]:
    """The enabled schedules, soonest next run first, and a note if some are
    missing (no model or table yet, a bad JOBS_SCHEDULES item)."""
    now = datetime.now(UTC)
    found, notes = [], []
    try:
        found += database_rows(now)
    except DatabaseError as e:
        notes.append(f"The schedule table cannot be read ({e}): run migrate.")
    except LookupError as e:
        notes.append(str(e))
    settings_rows, problems = static_rows(now, backend)
    found += settings_rows
    notes += [f"JOBS_SCHEDULES[{name!r}]: {problem}" for name, problem in problems]
    found = with_last_status(backend, found)
    far = datetime.max.replace(tzinfo=UTC)
    found.sort(key=lambda row: (row.next_run or far, row.name))
    return found[:SHOWN_MAX], " ".join(notes)


def database_rows(now: datetime) -> list[ScheduleRow]:
    model = schedule_model()
    if model is None:
        raise LookupError("Schedules are not available in this version.")
    listed = []
    for schedule in model.objects.filter(enabled=True).order_by("name")[:SHOWN_MAX]:
        listed.append(database_row(schedule, now))
    return listed


def database_row(schedule: Any, now: datetime) -> ScheduleRow:
    problem, upcoming = "", None
    try:
        runs = schedule.next_instants(1, now)
        upcoming = runs[0] if runs else None
    except JobsError as e:
        problem = str(e)

    return ScheduleRow(
        key=f"db:{schedule.pk}",
        name=schedule.name,
        task=schedule.task,
        source="admin",
        description=schedule.describe(),
        next_run=upcoming,
        last_run=db_aware(schedule.last_run_at),
        last_job=schedule.last_result_id,
        last_status="",
        problem=problem,
        admin_url=change_url(schedule.pk),
    )


def change_url(pk: int) -> str:
    try:
        return reverse("admin:jobs_schedule_change", args=[pk])
    except NoReverseMatch:
        return ""


def static_rows(
    now: datetime, backend: JobsBackend
) -> tuple[list[ScheduleRow], list[tuple[str, str]]]:

    entries, problems = static_entries(jobs_settings.SCHEDULES)
    keys = [entry.key for entry in entries]
    client = monitor.client_of(backend)
    last = cast(
        "list[bytes | None]", client.hmget(SCHEDULES_LAST_KEY, keys) if keys else []
    )
    listed = []
    for entry, job_id in zip(entries, last, strict=True):
        last_job = job_id.decode() if job_id else ""
        listed.append(
            ScheduleRow(
                key=entry.key,
                name=entry.name,
                task=entry.task,
                source="settings",
                description=describe_timing(entry.timing),
                next_run=entry.next_run(now),
                last_run=tick_of(last_job),
                last_job=last_job,
                last_status="",
            )
        )
    return listed, problems


def describe_timing(timing: Any) -> str:
    if isinstance(timing, Cron):
        return f"cron {timing.fields.expression} ({timing.zone.key})"
    if isinstance(timing, Interval):
        return describe_interval(timing.every)
    return f"Once, at {timing.at:%Y-%m-%d %H:%M:%S %Z}"


def tick_of(job_id: str) -> datetime | None:
    """The run time a schedule's job id ends with (`...:<ms>`)."""
    ms = job_id.rsplit(":", 1)[-1]
    return monitor.from_ms(int(ms)) if ms.isdigit() else None


def with_last_status(
    backend: JobsBackend, found: list[ScheduleRow]
) -> list[ScheduleRow]:
    from dataclasses import replace

    ids = [row.last_job for row in found if row.last_job]
    records = monitor.records(backend, ids)
    return [
        replace(row, last_status=records[row.last_job]["status"])
        if row.last_job in records
        else row
        for row in found
    ]


def run_now(key: str) -> tuple[str, str]:
    """Enqueue schedule `key`'s task now, outside its timing; return its name and
    the job id. Raise LookupError for an unknown key."""
    kind, _, ident = key.partition(":")
    if kind == "db" and ident.isdigit():
        model = schedule_model()
        if model is None:
            raise LookupError(key)
        try:
            schedule: Any = model.objects.get(pk=int(ident))
        except model.DoesNotExist:
            raise LookupError(key) from None
        return schedule.name, schedule.run_now().id
    if kind == "settings":
        return ident, run_static(ident)
    raise LookupError(key)


def run_static(name: str) -> str:
    items = jobs_settings.SCHEDULES
    if name not in items:
        raise LookupError(name)
    entry = static_entry(name, items[name])
    task = resolve_task(entry.task, entry.queue_name)
    backend = task.get_backend()
    result = backend.enqueue(
        task, entry.args, entry.kwargs, meta={"schedule": entry.name}
    )
    return str(result.id)
