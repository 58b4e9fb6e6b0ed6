"""Schedules in the database: one model, edited in the admin or in code.

    with transaction.atomic():
        Schedule.objects.create(
            name="welcome", task="testapp.tasks.welcome", args=[37], cron="30 17 * * *"
        )

A schedule is exactly one of `cron`, `interval` or `clocked_time` (a database
constraint says so). Saving or deleting one tells the running workers after
the commit (see jobs.schedules.scheduler); they reload that row alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, models, transaction
from django.db.models import F, Q
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone as dj_timezone

from jobs import serialization
from jobs.records import for_user
from jobs.schedules import entries, notify
from jobs.schedules.timing import MIN_INTERVAL, Timing, as_aware, next_runs, parse_zone

if TYPE_CHECKING:
    from jobs.task import JobResult, JobsTask


def default_timezone() -> str:
    return entries.default_zone()


class Overlap(models.TextChoices):
    ALLOW = "allow", "Run even if the previous run is still queued or running"
    SKIP = "skip", "Skip a run while the previous one is still queued or running"


class Missed(models.TextChoices):
    SKIP = "skip", "Skip runs missed while no worker ran"
    ONCE = "once", "Run once for all missed runs"
    GRACE = "grace", "Run once if missed by no more than the grace period"


class ScheduleQuerySet(models.QuerySet["Schedule"]):
    def enabled(self) -> ScheduleQuerySet:
        return self.filter(enabled=True)

    def disabled(self) -> ScheduleQuerySet:
        return self.filter(enabled=False)

    def active(self, at: datetime | None = None) -> ScheduleQuerySet:
        """Enabled and not expired at `at` (default: now)."""
        at = to_db(at or dj_timezone.now(), self.db)
        return self.enabled().filter(Q(expires__isnull=True) | Q(expires__gt=at))

    def expired(self, at: datetime | None = None) -> ScheduleQuerySet:
        return self.filter(expires__lte=to_db(at or dj_timezone.now(), self.db))

    def crons(self) -> ScheduleQuerySet:
        return self.exclude(cron="")

    def intervals(self) -> ScheduleQuerySet:
        return self.filter(interval__isnull=False)

    def clocked(self) -> ScheduleQuerySet:
        return self.filter(clocked_time__isnull=False)

    def for_task(self, task: str | Any) -> ScheduleQuerySet:
        """Schedules of a task, given as a Task or its dotted path."""
        return self.filter(task=getattr(task, "module_path", task))

    def enable(self) -> int:
        """Enable these schedules; running workers pick them up after the commit."""
        return self._switch(True)

    def disable(self) -> int:
        """Disable these schedules; running workers drop them after the commit."""
        return self._switch(False)

    def _switch(self, enabled: bool) -> int:
        # update() sends no signals: tell the workers which rows changed.
        pks = list(self.exclude(enabled=enabled).values_list("pk", flat=True))
        count = self.model.objects.filter(pk__in=pks).update(
            enabled=enabled, updated_at=to_db(dj_timezone.now(), self.db)
        )
        announce(pks, self.db)
        return count


class Schedule(models.Model):
    """A task run on a cron expression, an interval or once at a set time."""

    name = models.CharField(max_length=200, unique=True)
    task = models.CharField(
        max_length=200, help_text="The dotted path of a registered task."
    )
    args = models.JSONField(default=list, blank=True, help_text="A JSON list.")
    kwargs = models.JSONField(default=dict, blank=True, help_text="A JSON object.")
    queue_name = models.CharField(
        max_length=100, blank=True, default="", help_text="Empty: the task's queue."
    )
    cron = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="minute hour day-of-month month day-of-week, or @daily etc.",
    )
    interval = models.DurationField(
        null=True, blank=True, help_text="Elapsed time between runs (hh:mm:ss)."
    )
    clocked_time = models.DateTimeField(
        null=True, blank=True, help_text="Run once, at this time."
    )
    timezone = models.CharField(
        max_length=63,
        default=default_timezone,
        help_text="The IANA time zone cron expressions are read in.",
    )
    start_time = models.DateTimeField(
        null=True, blank=True, help_text="No run before this time."
    )
    expires = models.DateTimeField(
        null=True, blank=True, help_text="No run at or after this time."
    )
    one_off = models.BooleanField(
        default=False, help_text="Disable the schedule after its first run."
    )
    enabled = models.BooleanField(default=True)
    overlap = models.CharField(
        max_length=8, choices=Overlap.choices, default=Overlap.ALLOW
    )
    missed = models.CharField(max_length=8, choices=Missed.choices, default=Missed.SKIP)
    grace = models.DurationField(
        null=True, blank=True, help_text="For missed runs: how late a run may start."
    )
    description = models.TextField(blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    run_count = models.PositiveIntegerField(default=0, editable=False)
    # Which of Redis's run totals run_count includes (jobs.schedules.counting).
    runs_epoch = models.BigIntegerField(default=0, db_default=0, editable=False)
    runs_counted = models.PositiveBigIntegerField(
        default=0, db_default=0, editable=False
    )
    last_result_id = models.CharField(
        max_length=200, blank=True, default="", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        ordering = ("name",)
        # The jobs dashboard's own (see jobs.dashboard.permissions): the app's
        # one model carries them, as Django's default ones of the schedules.
        permissions = [
            (
                "view_dashboard",
                "Can see the jobs dashboard: queues, workers, jobs and arguments",
            ),
            ("manage_jobs", "Can cancel and retry jobs from the jobs dashboard"),
        ]
        indexes = [models.Index(fields=["enabled"], name="jobs_schedule_enabled")]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(~Q(cron=""), interval__isnull=True, clocked_time__isnull=True)
                    | Q(cron="", interval__isnull=False, clocked_time__isnull=True)
                    | Q(cron="", interval__isnull=True, clocked_time__isnull=False)
                ),
                name="jobs_schedule_one_kind",
                violation_error_message=entries.ONE_KIND,
            ),
            models.CheckConstraint(
                condition=Q(interval__isnull=True) | Q(interval__gte=MIN_INTERVAL),
                name="jobs_schedule_interval_min",
                violation_error_message="An interval must be at least 1 second.",
            ),
            models.CheckConstraint(
                condition=~Q(missed=Missed.GRACE) | Q(grace__isnull=False),
                name="jobs_schedule_grace_set",
                violation_error_message="Missed runs within a grace period "
                "need a grace period.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Django's JSONField would raise a bare "Object of type datetime is not
        # JSON serializable"; say which argument, as enqueue does.
        serialization.check_json(self.args, "args")
        serialization.check_json(self.kwargs, "kwargs")
        super().save(*args, **kwargs)

    @property
    def kind(self) -> str:
        if self.cron:
            return "cron"
        if self.interval is not None:
            return "interval"
        return "clocked" if self.clocked_time is not None else ""

    def timing(self) -> Timing:
        """This schedule's maths (raises ScheduleError when invalid)."""
        return entries.timing_of(vars(self))

    def window(self) -> tuple[datetime | None, datetime | None]:
        return entries.window_of(vars(self))

    def next_runs(
        self, count: int = 3, after: datetime | None = None
    ) -> list[datetime]:
        """Return the next `count` runs after `after` (default: now), as Django
        hands out datetimes: aware UTC with USE_TZ, else naive TIME_ZONE time."""
        return [for_user(run) for run in self.next_instants(count, after)]

    def next_instants(
        self, count: int = 3, after: datetime | None = None
    ) -> list[datetime]:
        """next_runs() as aware UTC datetimes, whatever USE_TZ says."""
        start, expires = self.window()
        after = as_aware(after or dj_timezone.now(), default_timezone())
        return next_runs(self.timing(), after, count, start=start, expires=expires)

    def describe(self) -> str:
        """A human-readable schedule: "At 04:30, only on Monday"."""
        return entries.describe(vars(self))

    def full_clean(
        self,
        exclude: Iterable[str] | None = None,
        validate_unique: bool = True,
        validate_constraints: bool = True,
    ) -> None:
        # A form excludes the fields it could not read (invalid JSON): clean()
        # must not judge the model's defaults left in their place.
        self._unread = frozenset(exclude or ())
        try:
            super().full_clean(exclude, validate_unique, validate_constraints)
        finally:
            del self._unread

    def clean(self) -> None:
        unread: frozenset[str] = getattr(self, "_unread", frozenset())
        errors = entries.row_errors(vars(self), unread)
        if errors:
            raise ValidationError(errors)

    def get_task(self) -> JobsTask:
        return entries.resolve_task(self.task, self.queue_name)

    def run_now(self) -> JobResult:
        """Enqueue the task now, outside the schedule; return its result."""
        task = self.get_task()
        backend = task.get_backend()
        job = backend.prepare(
            task, self.args, self.kwargs, meta={"schedule": self.name}
        )
        backend.submit(job)
        Schedule.objects.filter(pk=self.pk).update(
            last_result_id=job.result.id, run_count=F("run_count") + 1
        )
        return job.result


def to_db(value: datetime, using: str = "default") -> datetime:
    """A datetime as the database `using` takes it: aware, or naive TIME_ZONE
    time if USE_TZ is off (naive values are taken to be TIME_ZONE time already).

    A database with a time zone type (PostgreSQL) gets the instant even with
    USE_TZ off: naive wall time in the hour that repeats when clocks go back
    names two instants, and PostgreSQL would take the later one.
    """
    aware = as_aware(value, default_timezone())
    if settings.USE_TZ or connections[using].features.supports_timezones:
        return aware
    zone = parse_zone(default_timezone())
    return aware.astimezone(zone).replace(tzinfo=None)


ANNOUNCE_MAX = 1000  # changed rows named in one message; more: "reload all"


def announce(pks: list[int], using: str = "default") -> None:
    """Tell running workers, once the transaction commits, that rows changed."""
    if not pks:
        return
    changed = pks if len(pks) <= ANNOUNCE_MAX else None
    transaction.on_commit(lambda: notify.publish_change(changed), using=using)


@receiver(post_save, sender=Schedule, dispatch_uid="jobs_schedule_saved")
@receiver(post_delete, sender=Schedule, dispatch_uid="jobs_schedule_deleted")
def _schedule_changed(
    sender: type[Schedule], instance: Schedule, using: str, **kwargs: Any
) -> None:
    announce([instance.pk], using)


@receiver(post_delete, sender=Schedule, dispatch_uid="jobs_schedule_forgotten")
def _schedule_deleted(
    sender: type[Schedule], instance: Schedule, using: str, **kwargs: Any
) -> None:
    pk = instance.pk
    transaction.on_commit(lambda: notify.forget_last_runs([pk]), using=using)
