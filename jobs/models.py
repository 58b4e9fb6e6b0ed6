"""Django finds the app's models here; the Schedule model belongs to the
schedules wing (jobs.schedules.models)."""

from __future__ import annotations

from jobs.schedules.models import (
    Missed,
    Overlap,
    Schedule,
    ScheduleQuerySet,
    default_timezone,
)

__all__ = ["Missed", "Overlap", "Schedule", "ScheduleQuerySet", "default_timezone"]
