"""arq's own worker for Django tasks: `arq jobs.arq.WorkerSettings`.

    DJANGO_SETTINGS_MODULE=mysite.settings arq jobs.arq.WorkerSettings
    arq jobs.arq.WorkerSettings --burst     # run what is due, then exit
    arq jobs.arq.WorkerSettings --check     # arq's health check

Importing this module sets Django up (settings from DJANGO_SETTINGS_MODULE) and
builds arq's settings from the backend's (JOBS_ARQ_BACKEND, "default"):
`functions` from the task registry, `cron_jobs` from the Schedule rows and
JOBS_SCHEDULES, JSON both ways, results written where Django reads them, the
hooks of JOBS_WORKER_HOOKS. It consumes one queue, JOBS_ARQ_QUEUE (a Django
queue name, "default" = arq's `arq:queue`), JOBS_ARQ_MAX_JOBS (10) at once.
What this mode lacks beside `jobs_worker` (leases, push wake-ups, live
schedules...): docs/arq.md.

For arq's client: `serialize` / `deserialize` are the JSON pair to give
`create_pool()` (`deserialize` re-raises failed jobs' exceptions in
`Job.result()`).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Any, cast

import django
from arq.connections import RedisSettings
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured

if not os.environ.get("DJANGO_SETTINGS_MODULE"):
    raise ImproperlyConfigured(
        "Set DJANGO_SETTINGS_MODULE for `arq jobs.arq.WorkerSettings`, "
        "e.g. DJANGO_SETTINGS_MODULE=mysite.settings."
    )
if not apps.ready:
    django.setup()

# The rest needs the app registry: imported once django.setup() ran.
from django.tasks import task_backends

from jobs import conf
from jobs.backend import JobsBackend
from jobs.failures import arq_dumps, arq_loads
from jobs.redis.keys import queue_key
from jobs.schedules import arqcron
from jobs.worker import native

serialize = arq_dumps
deserialize = arq_loads

Hook = Callable[[dict[str, Any]], Awaitable[None]]


def backend() -> JobsBackend:
    alias = os.environ.get("JOBS_ARQ_BACKEND", "default")
    found = task_backends[alias]
    if not isinstance(found, JobsBackend):
        raise ImproperlyConfigured(f"TASKS[{alias!r}] is not a JobsBackend.")
    if found.config_error is not None:
        raise found.config_error
    return found


BACKEND = backend()
QUEUE = os.environ.get("JOBS_ARQ_QUEUE", "default")
HOOKS = conf.jobs_settings.WORKER_HOOKS
# Jobs at once: arq's max_jobs (arq's default, 10) and the plain functions' threads.
MAX_JOBS = int(os.environ.get("JOBS_ARQ_MAX_JOBS", "10"))


def redis_settings(config: conf.JobsOptions) -> RedisSettings:
    """arq's RedisSettings for REDIS_URL, `redis+sentinel://` included (arq's
    `sentinel=True`). REDIS_OPTIONS (TLS files, timeouts) are not carried over:
    subclass WorkerSettings and set arq's own fields for those."""
    sentinel = config.sentinel
    if sentinel is None:
        return RedisSettings.from_dsn(config.redis_url)
    return RedisSettings(
        host=list(sentinel.sentinels),
        sentinel=True,
        sentinel_master=sentinel.service,
        database=sentinel.db,
        username=sentinel.username,
        password=sentinel.password,
    )


async def on_startup(ctx: dict[str, Any]) -> None:
    runner = native.NativeRunner(BACKEND, queue_key(QUEUE), ctx["redis"], MAX_JOBS)
    runner.start()
    ctx[native.RUNNER] = runner
    if "on_startup" in HOOKS:
        await HOOKS["on_startup"](ctx)


async def on_shutdown(ctx: dict[str, Any]) -> None:
    if "on_shutdown" in HOOKS:
        await HOOKS["on_shutdown"](ctx)
    runner = ctx.pop(native.RUNNER, None)
    if runner is not None:
        await cast(native.NativeRunner, runner).close()


class WorkerSettings:
    """arq's settings for the Django tasks of JOBS_ARQ_BACKEND's JOBS_ARQ_QUEUE."""

    functions = native.functions(BACKEND.config.timeout)
    cron_jobs = arqcron.cron_jobs(BACKEND)
    queue_name = queue_key(QUEUE)
    redis_settings = redis_settings(BACKEND.config)
    job_serializer = serialize
    job_deserializer = deserialize
    keep_result = BACKEND.config.result_ttl
    # Attempts are the task's (`execute` counts them), not arq's max_tries (5).
    max_tries = 1_000_000
    # Aborts are ours: backend.cancel()'s message and arq's abort set, handled
    # by the runner so the Django record says FAILED (JobCancelled).
    allow_abort_jobs = False
    max_jobs = MAX_JOBS
    timezone = UTC  # aware times for the schedules' calendars
    # arq reads these from the class's __dict__: plain functions, not methods.
    on_startup = on_startup
    on_shutdown = on_shutdown
    on_job_start = HOOKS.get("on_job_start")
    on_job_end = HOOKS.get("on_job_end")
