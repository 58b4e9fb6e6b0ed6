"""The benchmark's jobs as django-jobs tasks (listed in the backend's IMPORTS).

Each does what jobside.py says every system's jobs do, in a coroutine (run on
the worker's loop) and in a plain function (run in its thread pool).
"""

from typing import Any

import jobside
from django.tasks import task


@task
async def noop() -> None:
    await jobside.done_async()


@task
def noop_sync() -> None:
    jobside.done_sync()


@task
async def lat(i: int) -> None:
    await jobside.started_async(i)


@task
def lat_sync(i: int) -> None:
    jobside.started_sync(i)


@task
async def waited(i: int) -> float:
    return jobside.finish_stamp()


@task
def waited_sync(i: int) -> float:
    return jobside.finish_stamp()


@task
async def scheduled(i: int) -> None:
    """The scheduler phase's job: a run of schedule `i` (or -1: never runs)."""
    await jobside.started_async(i)
    await jobside.done_async()


def pick(kind: str) -> dict[str, Any]:
    """The tasks a config enqueues: its coroutines or its plain functions."""
    if kind == "sync":
        return {"noop": noop_sync, "lat": lat_sync, "waited": waited_sync}
    return {"noop": noop, "lat": lat, "waited": waited}
