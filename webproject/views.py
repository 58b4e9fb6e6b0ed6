"""Async views: enqueue and answer 202 at once; report status as JSON, or live
as server-sent events; cancel. Each answers only the session that started the job."""

from __future__ import annotations

import asyncio
import functools
import json
import math
import reprlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.tasks import task_backends
from django.tasks.base import Task, TaskResult
from django.tasks.exceptions import TaskResultDoesNotExist
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from jobs import (
    EnqueueError,
    JobResult,
    SerializationError,
    TaskNotRegistered,
    records,
    serialization,
)
from jobs.backend import JobsBackend
from jobs.redis import connections
from jobs.redis.keys import DONE_CHANNEL_PREFIX, PROGRESS_CHANNEL_PREFIX
from webproject import tasks

OWNER_KEY = "jobs_owner"


class BadParams(ValueError):
    """A request body or parameter the API does not take (answered 400)."""


def _params(request: HttpRequest, *names: str) -> dict[str, Any]:
    """The request's parameters, JSON or form fields; BadParams for others
    than `names` (`curl -d '{"x": "a"}'` posts a form field named after the
    whole JSON text, which must not quietly become the defaults)."""
    data: dict[str, Any] = request.POST.dict()
    if request.content_type == "application/json" and request.body:
        try:  # strict: no NaN, no 1e400, no nesting deep enough to recurse
            data = serialization.loads(request.body)
        except SerializationError as e:
            raise BadParams(f"The body is not JSON we take: {e}") from None
        if not isinstance(data, dict):
            raise BadParams("The body must be a JSON object.")
    unknown = sorted(set(data) - {*names, "csrfmiddlewaretoken"})
    if unknown:
        raise BadParams(
            f"Unknown parameters {', '.join(map(repr, unknown))}: this takes "
            f"{', '.join(names) or 'none'} (a JSON body needs Content-Type: "
            "application/json)."
        )
    return data


def _number(data: dict[str, Any], name: str, default: float, kind: type[Any]) -> Any:
    value = data.get(name, default)
    try:
        number = kind(value)
        finite = math.isfinite(float(number)) and not isinstance(value, bool)
    except (TypeError, ValueError, OverflowError):  # "two", 1e400, 10**400
        finite = False
    if not finite:
        raise BadParams(f"{name} must be a finite number, not {reprlib.repr(value)}.")
    return number


def _int(data: dict[str, Any], name: str, default: int) -> int:
    return int(_number(data, name, default, int))


def _float(data: dict[str, Any], name: str, default: float) -> float:
    return float(_number(data, name, default, float))


def _answers_bad_params[View: Callable[..., Awaitable[HttpResponse]]](
    view: View,
) -> View:
    """Answer 400 with the reason when the view's parameters are refused."""

    @functools.wraps(view)
    async def checked(request: HttpRequest) -> HttpResponse:
        try:
            return await view(request)
        except BadParams as e:
            return JsonResponse({"error": str(e)}, status=400)

    return cast(View, checked)


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
@_answers_bad_params
async def start_add(request: HttpRequest) -> JsonResponse:
    data = _params(request, "x", "y")
    return await _start(request, tasks.add, x=_int(data, "x", 2), y=_int(data, "y", 3))


@require_POST
@_answers_bad_params
async def start_report(request: HttpRequest) -> JsonResponse:
    data = _params(request, "steps", "delay", "fail_at")
    steps = max(1, min(_int(data, "steps", 10), 100))
    delay = max(0.05, min(_float(data, "delay", 0.5), 2.0))  # seconds per step
    kwargs: dict[str, Any] = {"steps": steps, "delay": delay}
    if data.get("fail_at") is not None:
        kwargs["fail_at"] = _int(data, "fail_at", steps)
    return await _start(request, tasks.report, **kwargs)


@require_POST
@_answers_bad_params
async def start_fail(request: HttpRequest) -> JsonResponse:
    _params(request)  # none taken: refused, not ignored (a "message" was)
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
        "progress": getattr(result, "progress", None),
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


async def _owned(result_id: str, owner: str | None) -> JobResult | None:
    """The job if `owner` started it; None for anyone else, exactly as for an
    id that does not exist, so ids cannot be probed."""
    try:
        result: JobResult = await jobs_backend().aget_result(result_id)
    except (TaskResultDoesNotExist, TaskNotRegistered):
        return None
    if owner is None or (result.meta or {}).get("owner") != owner:
        return None
    return result


NOT_FOUND = {"error": "no such job"}


@require_GET
async def job_status(request: HttpRequest, result_id: str) -> JsonResponse:
    """The job's status, for the session that started it; 404 for anyone else."""
    result = await _owned(result_id, await request.session.aget(OWNER_KEY))
    if result is None:
        return JsonResponse(NOT_FOUND, status=404)
    return JsonResponse(describe(result))


@require_POST
async def cancel_job(request: HttpRequest, result_id: str) -> JsonResponse:
    """Cancel this session's job: a queued one at once, a running coroutine
    within moments (its status becomes FAILED with JobCancelled)."""
    result = await _owned(result_id, await request.session.aget(OWNER_KEY))
    if result is None:
        return JsonResponse(NOT_FOUND, status=404)
    try:
        cancelled = await jobs_backend().acancel(result_id)
    except EnqueueError as e:
        return JsonResponse({"error": str(e)}, status=503, headers={"Retry-After": "5"})
    body = {"id": result_id, "cancelled": cancelled}
    return JsonResponse(body, status=202 if cancelled else 409)


# Server-sent events: one stream per page carries every job it watches, so a
# page with many jobs holds one connection (browsers allow ~6 per host).
WATCH_MAX = 20  # jobs per stream
STREAM_SECONDS = 300.0  # then the page opens a new stream
KEEPALIVE = 15.0  # seconds between comments that keep proxies from timing out


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, cls=DjangoJSONEncoder)}\n\n"


@require_GET
async def job_events(request: HttpRequest) -> StreamingHttpResponse:
    """Stream `progress` and `done` events for this session's jobs (?ids=a,b),
    then `end`; `gone` for ids that are unknown or not this session's."""
    ids = list(dict.fromkeys(i for i in request.GET.get("ids", "").split(",") if i))
    owner = await request.session.aget(OWNER_KEY)
    response = StreamingHttpResponse(
        _events(ids[:WATCH_MAX], owner), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events on at once
    return response


async def _events(ids: list[str], owner: str | None) -> AsyncIterator[str]:
    backend = jobs_backend()
    pubsub = connections.async_client(backend.config).pubsub()
    try:
        # Subscribe before reading the current state: nothing falls in between.
        channels = [
            p + i for i in ids for p in (PROGRESS_CHANNEL_PREFIX, DONE_CHANNEL_PREFIX)
        ]
        if channels:
            await pubsub.subscribe(*channels)
        yield "retry: 2000\n\n"
        watching: set[str] = set()
        for result_id in ids:
            result = await _owned(result_id, owner)
            if result is None:
                yield _sse("gone", {"id": result_id})
            elif result.is_finished:
                yield _sse("done", describe(result))
            else:
                yield _sse("progress", describe(result))
                watching.add(result_id)
        async for event in _follow(pubsub, watching):
            yield event
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]


async def _follow(pubsub: Any, watching: set[str]) -> AsyncIterator[str]:
    """Relay the jobs' messages until all are done or the stream is old."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STREAM_SECONDS
    while watching and loop.time() < deadline:
        message = await pubsub.get_message(
            ignore_subscribe_messages=True, timeout=KEEPALIVE
        )
        if message is None:
            yield ": keepalive\n\n"
            continue
        event = await _relay(message, watching)
        if event:
            yield event
    yield _sse("end", {"reason": "timeout" if watching else "finished"})


async def _relay(message: dict[str, Any], watching: set[str]) -> str:
    channel = message["channel"].decode()
    done = channel.startswith(DONE_CHANNEL_PREFIX)
    prefix = DONE_CHANNEL_PREFIX if done else PROGRESS_CHANNEL_PREFIX
    result_id = channel[len(prefix) :]
    if result_id not in watching:
        return ""
    backend = jobs_backend()
    if done:
        # The final record, read back: the message is empty when results live
        # in another cache than the queue's Redis.
        watching.discard(result_id)
        return _sse("done", describe(await backend.aget_result(result_id)))
    record = records.decode(message["data"])
    return _sse("progress", describe(backend.result_from(record, result_id)))


@require_GET
async def demo(request: HttpRequest) -> HttpResponse:
    # Give the session its owner token now: jobs started at once from a fresh
    # page would otherwise each make one, and all but the last be orphaned.
    await _owner(request)
    return render(request, "webproject/demo.html")
