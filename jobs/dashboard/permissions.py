"""Who may do what on the dashboard: Django's permissions, as the admin uses them.

The site's `admin_view` lets in active staff; each page and button then asks for
a permission, which a superuser has and others get from their user or groups:

    jobs.view_dashboard   see the dashboard: queues, workers, jobs, their arguments
                          and errors, workflows; read the metrics without a token
    jobs.manage_jobs      cancel and retry jobs
    jobs.view_schedule    see the schedules (jobs.change_schedule implies it)
    jobs.change_schedule  "Run now" on a schedule (what editing it in the admin needs)

The first two are declared on the Schedule model (the app's one model), the
others are its default ones.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

VIEW = "jobs.view_dashboard"
MANAGE = "jobs.manage_jobs"
VIEW_SCHEDULES = "jobs.view_schedule"
RUN_SCHEDULES = "jobs.change_schedule"


def has(request: HttpRequest, perm: str) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.has_perm(perm))


def require(request: HttpRequest, perm: str) -> None:
    """Raise PermissionDenied (a 403) unless the request's user has `perm`."""
    if not has(request, perm):
        raise PermissionDenied(f"This needs the {perm} permission.")


def abilities(request: HttpRequest) -> dict[str, Any]:
    """What the templates may offer this user."""
    run = has(request, RUN_SCHEDULES)
    return {
        "can_manage": has(request, MANAGE),
        "can_run_schedules": run,
        "can_see_schedules": run or has(request, VIEW_SCHEDULES),
    }
