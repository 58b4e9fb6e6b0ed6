"""manage.py jobs_import_beat against django-celery's (djcelery's) tables, the
seed article's `djcelery.schedulers.DatabaseScheduler`.

djcelery cannot be installed with Python 3.12 / Django 6, so its three tables
are made here with the CREATE TABLEs that Django's SQLite backend emits for
the field definitions of djcelery's own initial migration
(celery/django-celery, djcelery/migrations/0001_initial.py: CrontabSchedule,
IntervalSchedule, PeriodicTask), and filled with the seed's kind of rows as
djcelery wrote them with the seed's USE_TZ = False (naive local times).
The command runs with the seed's TIME_ZONE = 'Asia/Shanghai'. That an
imported Schedule fires is proven by test_import_beat.py (same Schedule rows).
"""

from __future__ import annotations

import re
import shlex
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.apps.registry import Apps
from django.core.management import CommandError, call_command
from django.db import connection, models
from django.test import override_settings

from jobs.models import Schedule
from jobs.schedules.celerytables import celery_zone
from tests.acceptance.test_import_beat import import_command
from tests.servers import ROOT

pytestmark = pytest.mark.django_db(transaction=True)

DJCELERY_DDL = """
CREATE TABLE "djcelery_crontabschedule" (
    "id" integer NOT NULL PRIMARY KEY AUTOINCREMENT,
    "minute" varchar(64) NOT NULL, "hour" varchar(64) NOT NULL,
    "day_of_week" varchar(64) NOT NULL, "day_of_month" varchar(64) NOT NULL,
    "month_of_year" varchar(64) NOT NULL);
CREATE TABLE "djcelery_intervalschedule" (
    "id" integer NOT NULL PRIMARY KEY AUTOINCREMENT,
    "every" integer NOT NULL, "period" varchar(24) NOT NULL);
CREATE TABLE "djcelery_periodictask" (
    "id" integer NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" varchar(200) NOT NULL UNIQUE, "task" varchar(200) NOT NULL,
    "args" text NOT NULL, "kwargs" text NOT NULL, "queue" varchar(200) NULL,
    "exchange" varchar(200) NULL, "routing_key" varchar(200) NULL,
    "expires" datetime NULL, "enabled" bool NOT NULL, "last_run_at" datetime NULL,
    "total_run_count" integer unsigned NOT NULL CHECK ("total_run_count" >= 0),
    "date_changed" datetime NOT NULL, "description" text NOT NULL,
    "crontab_id" integer NULL REFERENCES "djcelery_crontabschedule" ("id"),
    "interval_id" integer NULL REFERENCES "djcelery_intervalschedule" ("id"));
"""
CRONTABS = [  # id, minute, hour, day_of_week, day_of_month, month_of_year
    (1, "30", "4", "1", "*", "*"),  # Mondays 04:30
    (2, "0", "*/3,9-18", "*", "*", "*"),  # the article's hour='*/3,9-18'
]
INTERVALS = [(1, 20, "seconds"), (2, 1, "days")]
ADD = "tests.celery_tasks.add"
TASKS = [  # name, task, args, kwargs, queue, exchange, routing_key, expires,
    # enabled, description, crontab_id, interval_id
    ("sum-task", ADD, "[]", '{"x": 1, "y": 2}', None, None, None, None, 1, "", None, 1),
    ("send-report", ADD, "[5, 6]", "{}", "reports", "reports", "reports.weekly",
     "2031-01-01 08:00:00", 1, "weekly", 1, None),
    ("business-hours", ADD, "[37, 0]", "{}", None, None, None, None, 1, "", 2, None),
    ("paused", ADD, "[1, 1]", "{}", None, None, None, None, 0, "", None, 2),
    ("bad-args", ADD, "['x', 'y']", "{}", None, None, None, None, 1, "", None, 1),
    ("celery.backend_cleanup", "celery.backend_cleanup", "[]", "{}",
     None, None, None, None, 1, "", 1, None),
]  # fmt: skip


def make_djcelery_db(path: Path, *extra_ddl: str) -> Path:
    with sqlite3.connect(path) as db:
        db.executescript(DJCELERY_DDL + "".join(extra_ddl))
        db.executemany(
            "INSERT INTO djcelery_crontabschedule VALUES (?, ?, ?, ?, ?, ?)", CRONTABS
        )
        db.executemany(
            "INSERT INTO djcelery_intervalschedule VALUES (?, ?, ?)", INTERVALS
        )
        db.executemany(
            "INSERT INTO djcelery_periodictask (name, task, args, kwargs, queue, "
            "exchange, routing_key, expires, enabled, description, crontab_id, "
            "interval_id, total_run_count, date_changed) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '2026-01-01 00:00:00')",
            TASKS,
        )
    return path


def runner(db: Path) -> Callable[..., str]:
    """The command on `db` with the seed's TIME_ZONE."""
    return import_command(db, TIME_ZONE="Asia/Shanghai")


@pytest.fixture
def djcelery_db(tmp_path: Path) -> Path:
    return make_djcelery_db(tmp_path / "djcelery.sqlite3")


def documented_command() -> list[str]:
    """The djcelery line of docs/migrating-from-celery.md, as arguments."""
    doc = (ROOT / "docs" / "migrating-from-celery.md").read_text()
    (line,) = re.findall(r"^python manage.py jobs_import_beat .*djcelery.*$", doc, re.M)
    return shlex.split(line)[3:]


def test_dry_run_detects_djcelery_and_writes_nothing(djcelery_db):
    out = runner(djcelery_db)("--database", "celery", "--dry-run")
    assert Schedule.objects.count() == 0
    assert out.splitlines()[0] == (
        "reading djcelery's tables on 'celery'; djcelery's crontabs have no "
        "timezone: read in Asia/Shanghai (TIME_ZONE), as djcelery ran them; "
        "naive expires times too"
    )
    said = [
        "would be created send-report: At 04:30, only on Monday",
        "note: exchange='reports' not imported (AMQP routing)",
        "note: routing_key='reports.weekly' not imported (AMQP routing)",
        "skipped bad-args: args \"['x', 'y']\" is not JSON (",
        "Celery's scheduler disabled it too: store json.dumps() of the value",
        "skipped celery.backend_cleanup: ",
        "note: expires 2031-01-01 08:00:00 has no timezone: read as Asia/Shanghai "
        "time, 2031-01-01 00:00 UTC (if the Celery project had USE_TZ = True, it "
        "was UTC: correct the Schedule's expires)",
    ]
    assert [text for text in said if text not in out] == [], out
    assert out.splitlines()[-1] == (
        "dry run, nothing written: 4 created, 0 updated, 0 unchanged, 2 skipped"
    )


def test_documented_import_maps_djcelery_rows_and_is_idempotent(djcelery_db):
    command = runner(djcelery_db)
    args = documented_command()
    assert args == ["--schema", "djcelery", "--database", "celery"]
    out = command(*args)
    assert out.splitlines()[-1] == "4 created, 0 updated, 0 unchanged, 2 skipped"
    report = Schedule.objects.get(name="send-report")
    assert (report.cron, report.timezone) == ("30 4 * * 1", "Asia/Shanghai")
    assert (report.args, report.queue_name, report.description) == (
        [5, 6],
        "reports",
        "weekly",
    )
    # Stored naive, as Shanghai wall time: 08:00 there is midnight UTC.
    assert report.expires == datetime(2031, 1, 1, tzinfo=UTC)
    hours = Schedule.objects.get(name="business-hours")
    assert (hours.cron, hours.timezone) == ("0 */3,9-18 * * *", "Asia/Shanghai")
    sums = Schedule.objects.get(name="sum-task")
    assert sums.interval == timedelta(seconds=20) and sums.kwargs == {"x": 1, "y": 2}
    assert sums.enabled and not sums.one_off and sums.start_time is None
    paused = Schedule.objects.get(name="paused")
    assert paused.interval == timedelta(days=1) and not paused.enabled
    assert not Schedule.objects.filter(name__in=["bad-args", "celery.backend_cleanup"])
    again = command(*args)
    assert again.splitlines()[-1] == "0 created, 0 updated, 4 unchanged, 2 skipped"
    with sqlite3.connect(djcelery_db) as db:
        db.execute("UPDATE djcelery_intervalschedule SET every = 30 WHERE id = 1")
    assert "1 updated, 3 unchanged" in command("--database", "celery")
    assert Schedule.objects.get(name="sum-task").interval == timedelta(seconds=30)
    assert Schedule.objects.count() == 4


def test_both_schemas_or_neither_is_a_clear_error(tmp_path):
    both = make_djcelery_db(
        tmp_path / "both.sqlite3",
        'CREATE TABLE "django_celery_beat_periodictask" ("id" integer);',
    )
    command = runner(both)
    out = command("--database", "celery", check=False)
    assert (
        "Database 'celery' has both djcelery's (djcelery_periodictask) and "
        "django-celery-beat's (django_celery_beat_periodictask) tables: say which "
        "to import with --schema djcelery or --schema django-celery-beat."
    ) in out
    assert Schedule.objects.count() == 0
    out = command("--database", "celery", "--schema", "djcelery", "--dry-run")
    assert out.splitlines()[-1].endswith("4 created, 0 updated, 0 unchanged, 2 skipped")
    with pytest.raises(CommandError, match="--schema: invalid choice: 'nope'"):
        call_command("jobs_import_beat", "--schema", "nope")
    # The default database, the new project's, has neither (in-process: cheaper).
    with pytest.raises(CommandError) as raised:
        call_command("jobs_import_beat")
    assert "Database 'default' has neither djcelery's" in str(raised.value)
    assert "name the Celery project's database with --database ALIAS" in str(
        raised.value
    )


def test_crontab_zone_is_celery_timezone_then_time_zone():
    with override_settings(CELERY_TIMEZONE="Europe/Paris", TIME_ZONE="Asia/Shanghai"):
        assert celery_zone() == ("Europe/Paris", "CELERY_TIMEZONE")
    with override_settings(TIME_ZONE="Asia/Shanghai"):
        assert celery_zone() == ("Asia/Shanghai", "TIME_ZONE")


# djcelery's three models with the fields of its 0001_initial.py, in an app
# registry of their own (never installed): Django's schema editor makes their
# tables on the test database's backend (SQLite or PostgreSQL), as djcelery's
# migration would on the seed project's own database (its nullable CharFields
# are djcelery's: hence the DJ001 noqa).
DJCELERY_APPS = Apps()


class CrontabSchedule(models.Model):  # noqa: DJ008 (djcelery's fields, nothing more)
    minute = models.CharField(max_length=64, default="*")
    hour = models.CharField(max_length=64, default="*")
    day_of_week = models.CharField(max_length=64, default="*")
    day_of_month = models.CharField(max_length=64, default="*")
    month_of_year = models.CharField(max_length=64, default="*")

    class Meta:
        app_label, apps = "djcelery", DJCELERY_APPS


class IntervalSchedule(models.Model):  # noqa: DJ008 (djcelery's fields, nothing more)
    every = models.IntegerField()
    period = models.CharField(max_length=24)

    class Meta:
        app_label, apps = "djcelery", DJCELERY_APPS


class PeriodicTask(models.Model):  # noqa: DJ008 (djcelery's fields, nothing more)
    name = models.CharField(max_length=200, unique=True)
    task = models.CharField(max_length=200)
    args = models.TextField(default="[]", blank=True)
    kwargs = models.TextField(default="{}", blank=True)
    queue = models.CharField(max_length=200, null=True, default=None)  # noqa: DJ001
    exchange = models.CharField(max_length=200, null=True, default=None)  # noqa: DJ001
    routing_key = models.CharField(max_length=200, null=True, default=None)  # noqa: DJ001
    expires = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    total_run_count = models.PositiveIntegerField(default=0)
    date_changed = models.DateTimeField(auto_now=True)
    description = models.TextField(blank=True)
    crontab = models.ForeignKey(CrontabSchedule, models.CASCADE, null=True)
    interval = models.ForeignKey(IntervalSchedule, models.CASCADE, null=True)

    class Meta:
        app_label, apps = "djcelery", DJCELERY_APPS


@pytest.fixture
def djcelery_in_default_db() -> Iterator[None]:
    djcelery = [CrontabSchedule, IntervalSchedule, PeriodicTask]
    with connection.schema_editor() as editor:
        for model in djcelery:
            editor.create_model(model)
    try:
        yield
    finally:
        with connection.schema_editor() as editor:
            for model in reversed(djcelery):
                editor.delete_model(model)


@override_settings(CELERY_TIMEZONE="Asia/Shanghai")
def test_djcelery_tables_in_the_projects_own_database(djcelery_in_default_db):
    """The seed's case: djcelery's tables next to the project's, no --database."""
    hours = CrontabSchedule.objects.create(minute="0", hour="*/3,9-18")
    PeriodicTask.objects.create(name="welcome", task=ADD, args="[37, 0]", crontab=hours)
    every = IntervalSchedule.objects.create(every=20, period="seconds")
    PeriodicTask.objects.create(name="sums", task=ADD, args="[1, 2]", interval=every)
    out = StringIO()
    call_command("jobs_import_beat", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(
        "reading djcelery's tables on 'default'; djcelery's crontabs have no "
        "timezone: read in Asia/Shanghai (CELERY_TIMEZONE)"
    )
    assert lines[-1] == "2 created, 0 updated, 0 unchanged, 0 skipped"
    welcome = Schedule.objects.get(name="welcome")
    assert (welcome.cron, welcome.timezone) == ("0 */3,9-18 * * *", "Asia/Shanghai")
    assert Schedule.objects.get(name="sums").interval == timedelta(seconds=20)
