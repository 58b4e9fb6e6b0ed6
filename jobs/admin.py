"""Django's admin finds the app's admin here; the Schedule admin belongs to the
schedules wing (jobs.schedules.admin), which registers it."""

from __future__ import annotations

from jobs.schedules.admin import ScheduleAdmin

__all__ = ["ScheduleAdmin"]
