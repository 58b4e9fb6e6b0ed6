"""Make django-celery-beat's tables, rows created through its own models.

Run by the Python of a throwaway virtualenv with Django 6.0 and
django-celery-beat (tests/integration/test_import_beat.py makes it, cached; the
package pins Django<6.1, so it is never a dependency of this project):

    python tests/beat_tables.py /tmp/beat.sqlite3
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=["django_celery_beat"],
    DATABASES={
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": sys.argv[1]}
    },
    USE_TZ=True,
    TIME_ZONE="UTC",
)
django.setup()

from django.core.management import call_command  # noqa: E402 (after setup)
from django_celery_beat.models import (  # noqa: E402
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

call_command("migrate", verbosity=0)
monday = CrontabSchedule.objects.create(
    minute="30", hour="4", day_of_week="1", timezone="Asia/Shanghai"
)
every_20s = IntervalSchedule.objects.create(every=20, period=IntervalSchedule.SECONDS)
every_day = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.DAYS)
at = ClockedSchedule.objects.create(clocked_time=datetime(2030, 1, 2, 3, 4, tzinfo=UTC))
sunset = SolarSchedule.objects.create(event="sunset", latitude=31.2, longitude=121.5)
PeriodicTask.objects.create(
    name="send-report",
    task="tests.celery_tasks.add",
    crontab=monday,
    args=json.dumps([5, 6]),
    queue="reports",
    expires=datetime(2031, 1, 1, tzinfo=UTC),
    description="weekly",
)
PeriodicTask.objects.create(
    name="sum-task",
    task="tests.celery_tasks.add",
    interval=every_20s,
    kwargs=json.dumps({"x": 1, "y": 2}),
    expire_seconds=15,
    priority=5,
)
PeriodicTask.objects.create(
    name="later",
    task="tests.celery_tasks.add",
    interval=every_day,
    args="[1, 1]",
    enabled=False,
    start_time=datetime(2029, 6, 1, 12, tzinfo=UTC),
)
PeriodicTask.objects.create(
    name="once", task="tests.celery_tasks.add", clocked=at, one_off=True, args="[2, 2]"
)
PeriodicTask.objects.create(
    name="at-sunset", task="tests.celery_tasks.add", solar=sunset, args="[3, 3]"
)
PeriodicTask.objects.create(name="gone", task="proj.tasks.removed", interval=every_20s)
PeriodicTask.objects.create(
    name="bad-args", task="tests.celery_tasks.add", interval=every_20s, args="[1]"
)
PeriodicTask.objects.create(
    name="celery.backend_cleanup", task="celery.backend_cleanup", crontab=monday
)
print("ok", PeriodicTask.objects.count())
