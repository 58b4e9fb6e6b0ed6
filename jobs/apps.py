from __future__ import annotations

from django.apps import AppConfig

from jobs import registry, sentry
from jobs.schedules import checks  # noqa: F401 - registers the schedules' checks
from jobs.signals import task_failed


class JobsConfig(AppConfig):
    name = "jobs"
    label = "jobs"
    verbose_name = "Jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # As Celery's autodiscover_tasks(): every app's tasks.py, in every process,
        # so workers can run the tasks and results can name them.
        registry.autodiscover()
        task_failed.connect(sentry.report_failure, dispatch_uid="jobs.sentry")
