"""Async views: enqueue and answer 202 at once; report status as JSON."""

from __future__ import annotations

import json
import secrets
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.tasks import task_backends
from django.tasks.base import Task, TaskResult
from django.tasks.exceptions import TaskResultDoesNotExist
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from jobs import EnqueueError, JobResult, TaskNotRegistered
from jobs.backend import JobsBackend
from webproject import tasks

OWNER_KEY = "jobs_owner"


def _params(request: HttpRequest) -> dict[str, Any]:
    if request.content_type == "application/json" and request.body:
        try:
            data = json.loads(request.body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return request.POST.dict()


def _int(data: dict[str, Any], name: str, default: int) -> int:
    try:
        return int(data.get(name, default))
    except (TypeError, ValueError):
        return default


def _accepted(request: HttpRequest, result: TaskResult[Any, Any]) -> JsonResponse:
    url = request.build_absolute_uri(reverse("job-status", args=[result.id]))
    return JsonResponse(
        {"id": result.id, "status": result.status, "status_url": url},
        status=202,
        headers={"Location": url},
    )


def jobs_backend() -> JobsBackend:
    backend = task_backends["default"]
    assert isinstance(backend, JobsBackend)
    return backend


async def _owner(request: HttpRequest) -> str:
    """An unguessable token tying this browser session to the jobs it started."""
    owner = await request.session.aget(OWNER_KEY)
    if owner is None:
        owner = secrets.token_urlsafe(16)
        await request.session.aset(OWNER_KEY, owner)
    return str(owner)


async def _start(
    request: HttpRequest, task: Task[Any, Any], **kwargs: Any
) -> JsonResponse:
    """Enqueue for this session and answer 202 at once (503 if Redis is away)."""
    try:
        result = await jobs_backend().aenqueue(
            task, [], kwargs, meta={"owner": await _owner(request)}
        )
    except EnqueueError as e:
        return JsonResponse({"error": str(e)}, status=503, headers={"Retry-After": "5"})
    return _accepted(request, result)


@require_POST
async def start_add(request: HttpRequest) -> JsonResponse:
    data = _params(request)
    return await _start(request, tasks.add, x=_int(data, "x", 2), y=_int(data, "y", 3))


@require_POST
async def start_report(request: HttpRequest) -> JsonResponse:
    steps = max(1, min(_int(_params(request), "steps", 10), 100))
    return await _start(request, tasks.report, steps=steps)


@require_POST
async def start_fail(request: HttpRequest) -> JsonResponse:
    return await _start(request, tasks.fail)


def describe(result: TaskResult[Any, Any]) -> dict[str, Any]:
    """The JSON a client polls: status, then the value or the error."""
    body: dict[str, Any] = {
        "id": result.id,
        "task": result.task.name,
        "status": result.status,
        "enqueued_at": result.enqueued_at,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "attempts": result.attempts,
    }
    if result.status == "SUCCESSFUL":
        body["result"] = result.return_value
    elif result.errors:
        error = result.errors[-1]
        body["error"] = {
            "type": error.exception_class_path,
            "message": getattr(error, "message", ""),
            "traceback": error.traceback,
        }
    return body


@require_GET
async def job_status(request: HttpRequest, result_id: str) -> JsonResponse:
    """The job's status, for the session that started it; 404 for anyone else,
    exactly as for an id that does not exist, so ids cannot be probed."""
    try:
        result: JobResult | None = await jobs_backend().aget_result(result_id)
    except (TaskResultDoesNotExist, TaskNotRegistered):
        result = None
    owner = await request.session.aget(OWNER_KEY)
    if result is None or owner is None or (result.meta or {}).get("owner") != owner:
        return JsonResponse({"error": "no such job"}, status=404)
    return JsonResponse(describe(result))


@require_GET
async def demo(request: HttpRequest) -> HttpResponse:
    return render(request, "webproject/demo.html")
