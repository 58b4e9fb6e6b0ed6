"""System checks of JOBS_SCHEDULES (the backend's own checks are in jobs.checks).

A schedule in settings that could never run is reported by `manage.py check`
(and at every runserver and migrate), not discovered by a silent worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core import checks

from jobs.schedules.static import static_entries

HINT = "See docs/schedules.md for the shape of JOBS_SCHEDULES."


@checks.register("jobs")
def check_static_schedules(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    from django.conf import settings

    errors: list[checks.CheckMessage] = []
    reconcile = getattr(settings, "JOBS_SCHEDULES_RECONCILE", 30)
    if not isinstance(reconcile, (int, float)) or reconcile <= 0:
        errors.append(
            checks.Error(
                f"JOBS_SCHEDULES_RECONCILE must be a positive number of seconds, "
                f"not {reconcile!r}.",
                id="jobs.E012",
            )
        )
    items = getattr(settings, "JOBS_SCHEDULES", None) or {}
    if not isinstance(items, Mapping):
        errors.append(
            checks.Error(
                "JOBS_SCHEDULES must be a dict of name -> schedule.",
                hint=HINT,
                id="jobs.E010",
            )
        )
        return errors
    _, problems = static_entries(items)
    errors += [
        checks.Error(f"JOBS_SCHEDULES[{name!r}]: {problem}", hint=HINT, id="jobs.E011")
        for name, problem in problems
    ]
    return errors
