"""JobsBackend stand-ins for Django's ImmediateBackend and DummyBackend.

Django's tests name the two in-memory backends; source.RENAMES points them here.

RunningBackend (for ImmediateBackend) enqueues as JobsBackend does, has the job
    run, and returns its finished result as read back from the result store. Who
    runs it is the current Runner: the project's drain in this process, or a real
    `manage.py jobs_worker` (see conftest.py).
QueuedBackend (for DummyBackend) enqueues onto a Redis database no worker
    watches, so its jobs stay READY; clear() forgets every job and result.

Both use the test session's Redis whatever OPTIONS a test gives, and keep the
test's OPTIONS as `options` (ImmediateBackend's tests compare them).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import redis

from jobs.backend import JobsBackend
from jobs.exceptions import ResultTimeout
from jobs.testing import adrain, drain

if TYPE_CHECKING:
    from django.tasks.base import Task

    from jobs.task import JobResult

RUNNING_DB = 0  # the conftest's Redis database, where workers look
QUEUED_DB = 1  # no worker ever looks here
WAIT = 15.0  # seconds a real worker gets to finish a job
SLICE = 0.25  # seconds between checks that the worker still runs


def redis_url(db: int) -> str:
    """The test session's Redis (tests/conftest.py sets REDIS_URL), database `db`."""
    return urlsplit(os.environ["REDIS_URL"])._replace(path=f"/{db}").geturl()


class SuiteBackend(JobsBackend):
    """JobsBackend on the test Redis's database `redis_db`, whatever the OPTIONS."""

    redis_db = RUNNING_DB

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        options = params.get("OPTIONS", {})
        merged = {"REDIS_URL": redis_url(self.redis_db), **options}
        super().__init__(alias, {**params, "OPTIONS": merged})
        self.options = options


class Runner(Protocol):
    def run(self, backend: JobsBackend, result: JobResult) -> JobResult: ...

    async def arun(self, backend: JobsBackend, result: JobResult) -> JobResult: ...


class Drain:
    """Run the job with the project's in-process drain (a burst worker)."""

    def run(self, backend: JobsBackend, result: JobResult) -> JobResult:
        drain(backend.alias, queues=[result.task.queue_name])
        return backend.get_result(result.id)

    async def arun(self, backend: JobsBackend, result: JobResult) -> JobResult:
        await adrain(backend.alias, queues=[result.task.queue_name])
        return await backend.aget_result(result.id)


class Worker:
    """Wait for a `manage.py jobs_worker` process to finish the job.

    `death` says why the process is gone (None while it runs): waiting stops
    then, rather than at WAIT.
    """

    def __init__(self, death: Callable[[], str | None]) -> None:
        self.death = death

    def run(self, backend: JobsBackend, result: JobResult) -> JobResult:
        deadline = time.monotonic() + WAIT
        while True:
            try:
                return backend.get_finished_result(result.id, SLICE)
            except ResultTimeout:
                self.check(deadline)

    async def arun(self, backend: JobsBackend, result: JobResult) -> JobResult:
        deadline = time.monotonic() + WAIT
        while True:
            try:
                return await backend.aget_finished_result(result.id, SLICE)
            except ResultTimeout:
                self.check(deadline)

    def check(self, deadline: float) -> None:
        if (reason := self.death()) is not None:
            raise WorkerDied(reason)
        if time.monotonic() > deadline:
            raise ResultTimeout(f"The worker did not finish the job in {WAIT} s.")


class WorkerDied(AssertionError):
    """The worker process running the test's job exited."""


_runner: Runner | None = None


@contextmanager
def running_with(runner: Runner) -> Iterator[None]:
    """Make `runner` run RunningBackend's jobs within the block."""
    global _runner
    previous, _runner = _runner, runner
    try:
        yield
    finally:
        _runner = previous


def current_runner() -> Runner:
    if _runner is None:
        raise RuntimeError("RunningBackend needs a runner: see running_with().")
    return _runner


class RunningBackend(SuiteBackend):
    def enqueue(
        self, task: Task[Any, Any], args: Any, kwargs: Any, **options: Any
    ) -> JobResult:
        result = super().enqueue(task, args, kwargs, **options)
        return current_runner().run(self, result)

    async def aenqueue(
        self, task: Task[Any, Any], args: Any, kwargs: Any, **options: Any
    ) -> JobResult:
        result = await super().aenqueue(task, args, kwargs, **options)
        return await current_runner().arun(self, result)


class QueuedBackend(SuiteBackend):
    redis_db = QUEUED_DB

    def clear(self) -> None:
        """Forget every job and result, as DummyBackend.clear() does."""
        client = redis.Redis.from_url(redis_url(self.redis_db))
        try:
            client.flushdb()
        finally:
            client.close()
