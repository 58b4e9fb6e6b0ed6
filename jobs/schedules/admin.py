"""The schedules in Django's admin: what runs when, what ran, and "Run now"."""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from functools import cache
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join

from jobs import registry
from jobs.exceptions import JobsError, ScheduleError
from jobs.schedules.entries import db_aware
from jobs.schedules.models import Schedule
from jobs.schedules.timing import parse_zone

NEXT_RUNS = 3  # shown per schedule


@cache
def zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


def task_choices(current: str) -> list[tuple[str, str]]:
    choices = [(path, path) for path in sorted(registry.all_tasks())]
    if current and current not in registry.all_tasks():
        choices.insert(0, (current, f"{current} (not a registered task)"))
    return [("", "---------"), *choices]


class ScheduleForm(forms.ModelForm):  # type: ignore[type-arg]
    """Tasks and zones picked from lists; the model's clean() checks the rest."""

    class Meta:
        model = Schedule
        fields = (
            *("name", "task", "args", "kwargs", "queue_name", "enabled", "description"),
            *("cron", "interval", "clocked_time", "timezone", "start_time", "expires"),
            *("one_off", "overlap", "missed", "grace"),
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A user with the view permission only gets a form without fields.
        if task := self.fields.get("task"):
            task.widget = forms.Select(choices=task_choices(self.instance.task))
        if zone := self.fields.get("timezone"):
            zone.widget = forms.Select(choices=zone_choices())


class KindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("cron", "Cron"), ("interval", "Interval"), ("clocked", "Clocked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        kinds = {"cron": "crons", "interval": "intervals", "clocked": "clocked"}
        method = kinds.get(self.value() or "")
        return getattr(queryset, method)() if method else queryset


def in_zone(value: datetime, obj: Schedule) -> str:
    """`value` in the schedule's zone (UTC if the row's zone is invalid)."""
    try:
        zone = parse_zone(obj.timezone)
    except ScheduleError:
        zone = parse_zone("UTC")
    return f"{value.astimezone(zone):%Y-%m-%d %H:%M:%S %Z}"


# What a schedule's page shows about its runs, computed or kept by the worker.
RUN_FIELDS = (
    "schedule",
    "next_runs",
    "last_run",
    "last_status",
    "run_count",
    "created_at",
    "updated_at",
)


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = ScheduleForm
    list_display = (
        "name",
        "task",
        "schedule",
        "next_runs",
        "last_run",
        "last_status",
        "run_count",
        "enabled",
    )
    list_filter = ("enabled", KindFilter, "one_off", "task")
    search_fields = ("name", "task", "description")
    actions = ("run_now", "enable", "disable")
    readonly_fields = RUN_FIELDS
    fieldsets = (
        (None, {"fields": ("name", "task", "args", "kwargs", "queue_name")}),
        (None, {"fields": ("enabled", "description")}),
        (
            "When",
            {
                "description": "Exactly one of cron, interval or clocked time.",
                "fields": (
                    "cron",
                    "interval",
                    "clocked_time",
                    "timezone",
                    "start_time",
                    "expires",
                    "one_off",
                ),
            },
        ),
        ("Policies", {"fields": ("overlap", "missed", "grace")}),
        ("Runs", {"fields": RUN_FIELDS}),
    )

    @admin.display(description="schedule")
    def schedule(self, obj: Schedule) -> str:
        return obj.describe() if obj.pk else "-"

    @admin.display(description="next runs")
    def next_runs(self, obj: Schedule) -> str:
        if not obj.pk or not obj.enabled:
            return "-"
        try:
            runs = obj.next_instants(NEXT_RUNS)
        except JobsError as e:
            return f"Invalid: {e}"
        if not runs:
            return "none"
        return format_html_join("", "<div>{}</div>", ((in_zone(r, obj),) for r in runs))

    @admin.display(description="last run", ordering="last_run_at")
    def last_run(self, obj: Schedule) -> str:
        if obj.last_run_at is None:
            return "-"

        last = db_aware(obj.last_run_at)
        assert last is not None
        return in_zone(last, obj)

    @admin.display(description="last result")
    def last_status(self, obj: Schedule) -> str:
        if not obj.last_result_id:
            return "-"
        try:
            backend = obj.get_task().get_backend()
            return str(backend.get_result(obj.last_result_id).status)
        except Exception:  # expired, unknown task, Redis away: say so, do not fail
            return "unknown"

    @admin.action(description="Run selected schedules now")
    def run_now(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        done = 0
        for schedule in queryset:
            try:
                schedule.run_now()
                done += 1
            except JobsError as e:
                self.message_user(request, f"{schedule}: {e}", messages.ERROR)
        if done:
            self.message_user(request, f"Queued {done} job(s).", messages.SUCCESS)

    @admin.action(description="Enable selected schedules")
    def enable(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        count = queryset.enable()  # type: ignore[attr-defined]
        self.message_user(request, f"Enabled {count} schedule(s).", messages.SUCCESS)

    @admin.action(description="Disable selected schedules")
    def disable(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        count = queryset.disable()  # type: ignore[attr-defined]
        self.message_user(request, f"Disabled {count} schedule(s).", messages.SUCCESS)
