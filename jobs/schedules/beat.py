"""django-celery-beat's tables read as Schedule rows (`manage.py jobs_import_beat`).

The tables are read with SQL on any database alias (the Celery project's
own database included), never through django-celery-beat's models: the
package need not be installed. Each PeriodicTask becomes a Schedule of the
same name; what cannot be carried over is reported, never dropped quietly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connections

from jobs.schedules.models import Schedule

PREFIX = "django_celery_beat_"
TASK_COLUMNS = (
    "name task args kwargs queue expires expire_seconds enabled one_off "
    "start_time description crontab_id interval_id clocked_id solar_id "
    "priority headers exchange routing_key"
).split()
PERIODS = {"days", "hours", "minutes", "seconds", "microseconds"}
# Beat's own housekeeping task: results here expire by themselves.
BEAT_BUILTINS = {"celery.backend_cleanup"}


@dataclass
class Outcome:
    """What importing one PeriodicTask did (or, with --dry-run, would do)."""

    name: str
    action: str  # "create", "update", "unchanged" or "skip"
    detail: str = ""
    notes: list[str] = field(default_factory=list)


def read_table(alias: str, table: str, columns: list[str]) -> list[dict[str, Any]]:
    connection = connections[alias]
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {quoted} FROM {connection.ops.quote_name(table)}")
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def by_id(alias: str, kind: str, columns: str) -> dict[Any, dict[str, Any]]:
    rows = read_table(alias, PREFIX + kind, ["id", *columns.split()])
    return {row["id"]: row for row in rows}


def read_beat(alias: str) -> list[dict[str, Any]]:
    """Every PeriodicTask row with its schedule row under "crontab",
    "interval", "clocked" or "solar"."""
    linked = {
        "crontab": by_id(
            alias,
            "crontabschedule",
            "minute hour day_of_week day_of_month month_of_year timezone",
        ),
        "interval": by_id(alias, "intervalschedule", "every period"),
        "clocked": by_id(alias, "clockedschedule", "clocked_time"),
        "solar": by_id(alias, "solarschedule", "event latitude longitude"),
    }
    tasks = read_table(alias, PREFIX + "periodictask", TASK_COLUMNS)
    for row in tasks:
        for kind, rows in linked.items():
            row[kind] = rows.get(row[f"{kind}_id"])
    return sorted(tasks, key=lambda row: row["name"])


def instant(value: Any) -> datetime | None:
    """A stored datetime, aware. Naive values (SQLite, or USE_TZ off) are
    read as UTC, which is how django-celery-beat stores them with USE_TZ."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def timing_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The Schedule fields of the row's schedule; ValueError when it has none
    we can run."""
    if row["crontab"]:
        c = row["crontab"]
        fields = (c["minute"], c["hour"], c["day_of_month"], c["month_of_year"])
        cron = " ".join(str(f).replace(" ", "") for f in (*fields, c["day_of_week"]))
        return {"cron": cron, "timezone": str(c["timezone"] or "UTC")}
    if row["interval"]:
        period, every = row["interval"]["period"], row["interval"]["every"]
        if period not in PERIODS:
            raise ValueError(f"interval period {period!r} is not one of {PERIODS}")
        return {"interval": timedelta(**{period: int(every)})}
    if row["clocked"]:
        return {"clocked_time": instant(row["clocked"]["clocked_time"])}
    if row["solar"]:
        s = row["solar"]
        raise ValueError(
            f"solar schedule ({s['event']} at {s['latitude']}, {s['longitude']}) "
            "has no equivalent: sunrise/sunset times are not computed here; "
            "use a cron expression or clocked times"
        )
    raise ValueError("no schedule (crontab, interval, clocked or solar) is set")


def json_value(text: Any, kind: type, what: str) -> Any:
    try:
        value = json.loads(text or ("[]" if kind is list else "{}"))
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{what} {text!r} is not JSON ({e}); Celery's scheduler disabled "
            "it too: store json.dumps() of the value and re-run"
        ) from e
    if not isinstance(value, kind):
        raise ValueError(f"{what} {text!r} is not a JSON {kind.__name__}")
    return value


def unmapped(row: dict[str, Any]) -> list[str]:
    """Notes on what a PeriodicTask sets that a Schedule does not carry (after
    the reader's own notes on the row, under "notes")."""
    notes = list(row.get("notes", []))
    if row["expire_seconds"]:
        notes.append(
            f"expire_seconds={row['expire_seconds']} not imported: set the "
            "task's expires (a per-job expiry) instead"
        )
    if row["priority"] is not None:
        notes.append(
            f"priority={row['priority']} not imported: set the task's priority"
        )
    for name in ("exchange", "routing_key"):
        if row[name]:
            notes.append(f"{name}={row[name]!r} not imported (AMQP routing)")
    if row["headers"] and json.loads(row["headers"]):
        notes.append("headers not imported (no message headers here)")
    return notes


def schedule_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The Schedule fields of a PeriodicTask row; ValueError if it cannot be one."""
    return {
        "task": row["task"],
        "args": json_value(row["args"], list, "args"),
        "kwargs": json_value(row["kwargs"], dict, "kwargs"),
        "queue_name": row["queue"] or "",
        "cron": "",
        "interval": None,
        "clocked_time": None,
        **timing_fields(row),
        "start_time": instant(row["start_time"]),
        "expires": instant(row["expires"]),
        "one_off": bool(row["one_off"]),
        "enabled": bool(row["enabled"]),
        "description": row["description"] or "",
    }


def import_row(row: dict[str, Any], dry_run: bool) -> Outcome:
    """Create or update the Schedule named as `row` (nothing with dry_run)."""
    name = row["name"]
    if row["task"] in BEAT_BUILTINS:
        return Outcome(name, "skip", f"{row['task']} is Celery's own housekeeping")
    try:
        fields = schedule_fields(row)
    except ValueError as e:
        return Outcome(name, "skip", str(e))
    schedule = Schedule.objects.filter(name=name).first()
    action = "create" if schedule is None else "update"
    if schedule is None:
        schedule = Schedule(name=name)
    elif all(getattr(schedule, k) == v for k, v in fields.items()):
        return Outcome(name, "unchanged", schedule.describe(), unmapped(row))
    for key, value in fields.items():
        setattr(schedule, key, value)
    try:
        schedule.full_clean()
    except ValidationError as e:
        return Outcome(name, "skip", "; ".join(e.messages))
    if not dry_run:
        schedule.save()
    return Outcome(name, action, schedule.describe(), unmapped(row))
