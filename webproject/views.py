"""Async views: enqueue and answer 202 at once; report status as JSON."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.tasks.base import TaskResult
from django.tasks.exceptions import TaskResultDoesNotExist
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from jobs import EnqueueError, TaskNotRegistered
from webproject import tasks


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


def _unavailable(error: EnqueueError) -> JsonResponse:
    return JsonResponse({"error": str(error)}, status=503, headers={"Retry-After": "5"})


@require_POST
async def start_add(request: HttpRequest) -> JsonResponse:
    data = _params(request)
    try:
        result = await tasks.add.aenqueue(_int(data, "x", 2), _int(data, "y", 3))
    except EnqueueError as e:
        return _unavailable(e)
    return _accepted(request, result)


@require_POST
async def start_report(request: HttpRequest) -> JsonResponse:
    data = _params(request)
    steps = max(1, min(_int(data, "steps", 10), 100))
    try:
        result = await tasks.report.aenqueue(steps=steps)
    except EnqueueError as e:
        return _unavailable(e)
    return _accepted(request, result)


@require_POST
async def start_fail(request: HttpRequest) -> JsonResponse:
    try:
        result = await tasks.fail.aenqueue()
    except EnqueueError as e:
        return _unavailable(e)
    return _accepted(request, result)


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
    from django.tasks import default_task_backend

    try:
        result = await default_task_backend.aget_result(result_id)
    except (TaskResultDoesNotExist, TaskNotRegistered):
        return JsonResponse({"error": "no such job"}, status=404)
    return JsonResponse(describe(result))


@require_GET
async def demo(request: HttpRequest) -> HttpResponse:
    return render(request, "webproject/demo.html")
