"""The jobs dashboard in Django's admin: queues, workers, jobs, schedules.

One line in the project's urls.py, before the admin's own:

    from django.contrib import admin
    import jobs.dashboard

    urlpatterns = [
        path("admin/jobs/dashboard/", jobs.dashboard.urls(admin.site)),
        path("admin/", admin.site.urls),
    ]

`urls(site)` also lists "Dashboard" under Jobs on that site's index and sidebar.
Every page is the site's `admin_view` (active staff only, never cached, CSRF on
POST) and asks for Django permissions (jobs.dashboard.permissions); the buttons
post and redirect back with a message.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.tasks import task_backends
from django.urls import NoReverseMatch, URLPattern, include, path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from redis.exceptions import RedisError

from jobs import records
from jobs.backend import RESULT_ID, JobsBackend
from jobs.conf import jobs_settings
from jobs.dashboard import actions, monitor, permissions
from jobs.dashboard import schedules as dashboard_schedules
from jobs.dashboard import workflows as dashboard_workflows
from jobs.dashboard.exporter import metrics_view

if TYPE_CHECKING:
    from collections.abc import Callable

    from django.contrib.admin import AdminSite

    from jobs.records import Record

NAMESPACE = "jobs_dashboard"
QUEUED_SHOWN = 50  # queued jobs listed, soonest due first


def backend_of() -> JobsBackend:
    backend = task_backends["default"]
    if not isinstance(backend, JobsBackend):
        raise Http404("TASKS['default'] is not a jobs.backend.JobsBackend.")
    return backend


# What the templates show


def _dt(value: str | None) -> datetime | None:
    return records.instant(value) if value else None


def seconds_text(seconds: float | None) -> str:
    """ "850 ms", "3.2 s", "4 min 3 s", "2 h 5 min"; "-" for None."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    return f"{minutes // 60} h {minutes % 60} min"


def job_row(record: Record, **extra: Any) -> dict[str, Any]:
    """A record as a table row: dates parsed, the last error and progress summed up."""
    errors = record.get("errors") or []
    error = errors[-1] if errors else None
    progress = record.get("progress") or None
    percent = None
    if progress and (total := progress.get("total")):
        percent = min(100, round(100 * progress["done"] / total))
    return {
        "id": record["id"],
        "task": record.get("task", ""),
        "queue": record.get("queue", ""),
        "status": record.get("status", ""),
        "enqueued_at": _dt(record.get("enqueued_at")),
        "started_at": _dt(record.get("started_at")),
        "finished_at": _dt(record.get("finished_at")),
        "duration_text": seconds_text(monitor.duration(record)),
        "attempts": len(record.get("worker_ids") or []),
        "error": error,
        "error_class": error["exception_class_path"].rsplit(".")[-1] if error else "",
        "progress": progress,
        "percent": percent,
        "cancellable": record.get("status") in ("READY", "RUNNING"),
        "retryable": record.get("status") == "FAILED",
        **extra,
    }


def queued_rows(
    backend: JobsBackend, stats: list[monitor.QueueStats]
) -> list[dict[str, Any]]:
    """The first jobs waiting in each queue (due or deferred), soonest first."""
    client = monitor.client_of(backend)
    waiting: list[tuple[str, float]] = []
    for queue in stats:
        for key in monitor.queue_keys(client, queue.name):
            entries: list[tuple[bytes, float]] = client.zrange(  # type: ignore[assignment]
                key, 0, QUEUED_SHOWN + queue.running, withscores=True
            )
            waiting += [
                (job.decode(), score)
                for job, score in entries
                if job.decode() not in queue.running_ids
            ]
    waiting.sort(key=lambda item: item[1])
    waiting = waiting[:QUEUED_SHOWN]
    found = monitor.records(backend, [job for job, _ in waiting])
    return [
        job_row(found[job], due=monitor.from_ms(score))
        for job, score in waiting
        if job in found
    ]


def running_rows(
    backend: JobsBackend, stats: list[monitor.QueueStats]
) -> list[dict[str, Any]]:
    rows = []
    for record, worker in monitor.running_jobs(backend, stats):
        row = job_row(record, worker=worker, status="RUNNING")
        row["cancellable"] = actions.is_coroutine_task(row["task"])
        rows.append(row)
    return rows


def status_filter(request: HttpRequest) -> str | None:
    status = request.GET.get("status", "").upper()
    return status if status in monitor.FINISHED else None


def offset_of(request: HttpRequest) -> int:
    try:
        return max(int(request.GET.get("offset", 0)), 0)
    except ValueError:
        return 0


def state(request: HttpRequest, backend: JobsBackend) -> dict[str, Any]:
    """Everything the dashboard shows this user, read now."""
    stats = monitor.queue_stats(backend)
    window = min(jobs_settings.DASHBOARD_HISTORY, backend.config.result_ttl)
    status = status_filter(request)
    page = monitor.recent(
        backend,
        window=window,
        limit=jobs_settings.DASHBOARD_ROWS,
        offset=offset_of(request),
        status=status,
    )
    allowed = permissions.abilities(request)
    schedules: list[dashboard_schedules.ScheduleRow] = []
    schedules_note = ""
    if allowed["can_see_schedules"]:
        schedules, schedules_note = dashboard_schedules.rows(backend)
    # Leases say what each worker runs now; its own count is a heartbeat old.
    leases = Counter(w for queue in stats for w in queue.running_ids.values())
    workers = [replace(w, running=leases[w.id]) for w in monitor.workers(backend)]
    return {
        **allowed,
        "queues": stats,
        "workers": workers,
        "running": running_rows(backend, stats),
        "queued": queued_rows(backend, stats),
        "recent": [
            job_row(record, ended=monitor.from_ms(ended)) for record, ended in page.rows
        ],
        "next_offset": page.next_offset,
        "offset": offset_of(request),
        "status_filter": status or "",
        "history_hours": round(window / 3600, 1),
        "schedules": schedules,
        "schedules_note": schedules_note,
        "schedules_available": dashboard_schedules.schedule_model() is not None,
        "workflows": dashboard_workflows.recent_rows(backend),
    }


# Views


def index(request: HttpRequest, site: AdminSite) -> HttpResponse:
    permissions.require(request, permissions.VIEW)
    job_id = request.GET.get("job", "").strip()
    if job_id:
        if RESULT_ID.match(job_id):
            return HttpResponseRedirect(reverse(f"{NAMESPACE}:job", args=[job_id]))
        messages.warning(request, f"{job_id!r} is not a job id.")
    query = request.GET.copy()
    query.pop("fragment", None)
    here = request.path + (f"?{query.urlencode()}" if query else "")
    context: dict[str, Any] = {
        **site.each_context(request),
        "title": "Jobs dashboard",
        "jobs_app_url": app_url(site),
        "here": here,
    }
    try:
        context.update(state(request, backend_of()))
    except (RedisError, OSError) as e:
        context["redis_error"] = str(e)
    fragment = request.GET.get("fragment") == "1"
    template = "admin/jobs/dashboard_sections.html" if fragment else None
    return render(request, template or "admin/jobs/dashboard.html", context)


def job(request: HttpRequest, job_id: str, site: AdminSite) -> HttpResponse:
    permissions.require(request, permissions.VIEW)
    backend = backend_of()
    record = actions.record_of(backend, job_id)
    if record is None:
        raise Http404("No such job (or it has expired).")
    row = job_row(record, cancellable=record["status"] in ("READY", "RUNNING"))
    context = {
        **site.each_context(request),
        **permissions.abilities(request),
        "title": f"Job {job_id}",
        "jobs_app_url": app_url(site),
        "here": request.path,
        "job": row,
        "errors": record.get("errors") or [],
        "arguments": json.dumps(
            {"args": record.get("args"), "kwargs": record.get("kwargs")}, indent=2
        ),
        "meta": json.dumps(record.get("meta"), indent=2) if record.get("meta") else "",
        "workers": record.get("worker_ids") or [],
        "step": dashboard_workflows.step_of(record),
    }
    return render(request, "admin/jobs/job.html", context)


def workflow(request: HttpRequest, workflow_id: str, site: AdminSite) -> HttpResponse:
    permissions.require(request, permissions.VIEW)
    found = None
    if RESULT_ID.match(workflow_id):
        found = dashboard_workflows.detail(backend_of(), workflow_id)
    if found is None:
        raise Http404("No such workflow (or it has expired).")
    context = {
        **site.each_context(request),
        "title": f"Workflow {workflow_id}",
        "jobs_app_url": app_url(site),
        "workflow": found,
    }
    return render(request, "admin/jobs/workflow.html", context)


def back(request: HttpRequest) -> HttpResponseRedirect:
    """Redirect to the page the button was on (a dashboard or job page)."""
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse(f"{NAMESPACE}:index")
    return HttpResponseRedirect(target)


def report(request: HttpRequest, outcome: actions.ActionResult) -> HttpResponseRedirect:
    level = messages.SUCCESS if outcome.ok else messages.WARNING
    messages.add_message(request, level, outcome.message)
    return back(request)


@require_POST
def cancel(request: HttpRequest, job_id: str) -> HttpResponse:
    permissions.require(request, permissions.MANAGE)
    return report(request, actions.cancel(backend_of(), job_id))


@require_POST
def retry(request: HttpRequest, job_id: str) -> HttpResponse:
    permissions.require(request, permissions.MANAGE)
    return report(request, actions.retry(backend_of(), job_id))


@require_POST
def run_schedule(request: HttpRequest) -> HttpResponse:
    permissions.require(request, permissions.RUN_SCHEDULES)
    return report(request, actions.run_schedule(request.POST.get("key", "")))


# Wiring into an admin site


def app_url(site: AdminSite) -> str:
    try:
        return reverse(
            "admin:app_list", kwargs={"app_label": "jobs"}, current_app=site.name
        )
    except NoReverseMatch:  # no model of ours registered on this site
        return reverse(f"{NAMESPACE}:index")


def with_site(
    view: Callable[..., HttpResponse], site: AdminSite
) -> Callable[..., HttpResponse]:
    def bound(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return view(request, *args, site=site, **kwargs)

    return site.admin_view(bound)


def add_to_app_list(site: AdminSite) -> None:
    """List the dashboard first under "Jobs" on the site's index and sidebar."""
    if getattr(site, "_jobs_dashboard", False):
        return
    original = site.get_app_list

    def get_app_list(request: HttpRequest, app_label: str | None = None) -> Any:
        app_list = original(request, app_label)
        if app_label not in (None, "jobs") or not site.has_permission(request):
            return app_list
        if not permissions.has(request, permissions.VIEW):
            return app_list
        entry = {
            "name": "Dashboard",
            "object_name": "Dashboard",
            "perms": {"view": True},
            "admin_url": reverse(f"{NAMESPACE}:index"),
            "add_url": None,
            "view_only": True,
        }
        jobs_app = next((a for a in app_list if a["app_label"] == "jobs"), None)
        if jobs_app is None:
            jobs_app = {
                "name": apps.get_app_config("jobs").verbose_name,
                "app_label": "jobs",
                "app_url": app_url(site),
                "has_module_perms": True,
                "models": [],
            }
            app_list.append(jobs_app)
            app_list.sort(key=lambda a: a["name"].lower())
        jobs_app["models"].insert(0, entry)
        return app_list

    site.get_app_list = get_app_list  # type: ignore[method-assign]
    site._jobs_dashboard = True  # type: ignore[attr-defined]


def urls(site: AdminSite) -> tuple[list[URLPattern], str, str]:
    """The dashboard's URL patterns for `site`, to mount under its prefix."""
    add_to_app_list(site)
    patterns = [
        path("", with_site(index, site), name="index"),
        path("job/<str:job_id>/", with_site(job, site), name="job"),
        path("workflow/<str:workflow_id>/", with_site(workflow, site), name="workflow"),
        path("job/<str:job_id>/cancel/", site.admin_view(cancel), name="cancel"),
        path("job/<str:job_id>/retry/", site.admin_view(retry), name="retry"),
        path("schedules/run/", site.admin_view(run_schedule), name="run-schedule"),
        path("metrics/", metrics_view, name="metrics"),
    ]
    return include((patterns, NAMESPACE))  # type: ignore[return-value]
