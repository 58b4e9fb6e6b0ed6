"""Which Celery database scheduler's tables a database holds, and djcelery's
read as django-celery-beat's rows (`manage.py jobs_import_beat`).

django-celery (`djcelery`, Celery 3's Django package, the seed article's
`djcelery.schedulers.DatabaseScheduler`) keeps its periodic tasks in
`djcelery_periodictask`, `djcelery_crontabschedule` and
`djcelery_intervalschedule`: the same model as django-celery-beat's minus
the timezone of a crontab, the clocked and solar schedules, one_off,
start_time, expire_seconds, priority and headers. Its rows are read with SQL
(djcelery cannot be installed next to Django 6) and given the shape of
`beat.read_beat`'s, so both import through `beat.import_row`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connections

from jobs.schedules.beat import PREFIX, Outcome, import_row, read_beat
from jobs.schedules.beat import read_table as read_sql_table
from jobs.schedules.timing import as_aware

DJCELERY = "djcelery"
BEAT = "django-celery-beat"
# The table whose presence says a scheduler's schema is there.
MARKERS = {DJCELERY: "djcelery_periodictask", BEAT: PREFIX + "periodictask"}
DJCELERY_TASK_COLUMNS = (
    "name task args kwargs queue exchange routing_key expires enabled "
    "description crontab_id interval_id"
).split()
# What django-celery-beat has and djcelery has not, as beat's rows leave it unset.
MISSING = {
    "expire_seconds": None,
    "priority": None,
    "headers": None,
    "one_off": False,
    "start_time": None,
    "clocked": None,
    "solar": None,
}


def schemas_present(alias: str) -> list[str]:
    """The schedulers (DJCELERY, BEAT) whose periodic task table is on `alias`."""
    with connections[alias].cursor() as cursor:
        tables = set(connections[alias].introspection.table_names(cursor))
    return [schema for schema, table in MARKERS.items() if table in tables]


def celery_zone() -> tuple[str, str]:
    """The zone djcelery read its crontabs in, and the setting it came from:
    CELERY_TIMEZONE, else Django's TIME_ZONE (Celery 3's rule for Django
    projects), else UTC."""
    for setting in ("CELERY_TIMEZONE", "TIME_ZONE"):
        value = getattr(settings, setting, None)
        if value:
            return str(value), setting
    return "UTC", "the default"


def read_expires(value: Any, zone: str) -> tuple[datetime | None, list[str]]:
    """A djcelery expires time, aware, and a note if it was naive (read as wall
    time in `zone`): djcelery wrote local time with USE_TZ = False (the seed's)
    but UTC with USE_TZ = True on SQLite or MySQL, which the value does not tell."""
    if value is None or value == "":
        return None, []
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo:
        return moment, []
    aware = as_aware(moment, zone)
    return aware, [
        f"expires {value} has no timezone: read as {zone} time, "
        f"{aware:%Y-%m-%d %H:%M} UTC (if the Celery project had USE_TZ = True, "
        "it was UTC: correct the Schedule's expires)"
    ]


def read_djcelery(alias: str, zone: str) -> list[dict[str, Any]]:
    """Every djcelery PeriodicTask row with its "crontab" (in `zone`) or
    "interval" row, keyed as `beat.read_beat`'s rows."""
    crontab_columns = "id minute hour day_of_week day_of_month month_of_year"
    crontabs = read_sql_table(
        alias, "djcelery_crontabschedule", crontab_columns.split()
    )
    intervals = read_sql_table(
        alias, "djcelery_intervalschedule", ["id", "every", "period"]
    )
    by_crontab = {row["id"]: {**row, "timezone": zone} for row in crontabs}
    by_interval = {row["id"]: row for row in intervals}
    tasks = read_sql_table(alias, "djcelery_periodictask", DJCELERY_TASK_COLUMNS)
    for row in tasks:
        row.update(MISSING)
        row["crontab"] = by_crontab.get(row["crontab_id"])
        row["interval"] = by_interval.get(row["interval_id"])
        row["expires"], row["notes"] = read_expires(row["expires"], zone)
    return sorted(tasks, key=lambda row: row["name"])


def import_tables(alias: str, schema: str, dry_run: bool) -> list[Outcome]:
    """Import every PeriodicTask of `schema`'s tables on database `alias`."""
    if schema == DJCELERY:
        rows = read_djcelery(alias, celery_zone()[0])
    else:
        rows = read_beat(alias)
    return [import_row(row, dry_run) for row in rows]
