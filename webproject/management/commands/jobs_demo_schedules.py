"""`python manage.py jobs_demo_schedules`: the seed article's two schedules, as rows.

The article's CELERYBEAT_SCHEDULE, in the admin instead of a settings file:
"sum-task" adds 5 and 6 every 20 seconds, "send-report" runs the report every
Monday at 04:30. Running the command again leaves edited rows alone.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from jobs import crontab
from jobs.models import Schedule

DEMO: dict[str, dict[str, Any]] = {
    "sum-task": {
        "task": "webproject.tasks.add",
        "interval": timedelta(seconds=20),
        "args": [5, 6],
        "description": "The seed's sum-task: add(5, 6) every 20 seconds.",
    },
    "send-report": {
        "task": "webproject.tasks.report",
        "cron": crontab(hour=4, minute=30, day_of_week=1),
        "kwargs": {"steps": 3},
        "description": "The seed's send-report: every Monday at 04:30.",
    },
}


class Command(BaseCommand):
    help = "Create the example schedules (sum-task, send-report) if missing."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            for name, fields in DEMO.items():
                schedule = Schedule.objects.filter(name=name).first()
                verb = "exists"
                if schedule is None:
                    schedule = Schedule(name=name, **fields)
                    schedule.full_clean()  # the admin's checks, in code
                    schedule.save()
                    verb = "created"
                self.stdout.write(f"{name}: {verb} ({schedule.describe()})")
