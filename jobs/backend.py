"""A Django Tasks backend that queues jobs in Redis in arq's wire format, for
`jobs_worker` or arq's own worker (`arq jobs.arq.WorkerSettings`).

Usage::

    TASKS = {
        "default": {
            "BACKEND": "jobs.backend.JobsBackend",
            "QUEUES": ["default", "reports"],
            "OPTIONS": {"REDIS_URL": "redis://localhost:6379/0"},
        }
    }

Notes:
    supports_defer: yes; `.using(run_after=datetime or timedelta)`.
    supports_async_task: yes; coroutines run on the worker's loop, plain
        functions in its thread pool.
    supports_get_result: yes; results live in a Django cache (RESULTS_CACHE, by
        default a Redis cache on REDIS_URL with a JSON serializer).
    supports_priority: yes; `.using(priority=-100..100)`. Within one queue a
        worker takes due jobs highest priority first, in due order among equals
        (a deferred job takes its priority when due). Queues come first:
        `jobs_worker --queues high,default` takes every due job of `high`, of
        any priority, before any of `default`.
    QUEUES: the queue names jobs may use, in the order a worker takes them
        (default `["default"]`). `[]` accepts any name, as Django's backends
        do; a worker then runs the queues given with `--queues`, else `default`.

`aenqueue()` and `aget_result()` are native asyncio (ASGI views should use them);
`enqueue()` and `get_result()` use a thread-safe sync client, no event loop.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import TYPE_CHECKING, Any
from weakref import WeakSet

from django.core import checks
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.tasks import DEFAULT_TASK_QUEUE_NAME
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.exceptions import (
    InvalidTask,
    InvalidTaskBackend,
    TaskResultDoesNotExist,
)
from django.tasks.signals import task_enqueued

from jobs import enqueue, registry, results, tracing, waiting
from jobs.cancelled import Cancel, cancel_args, cancelled_record, workflow_step_of
from jobs.checks import check_backend
from jobs.conf import JobsOptions
from jobs.enqueue import Prepared
from jobs.records import Record
from jobs.redis import connections, flows, replicas, scripts
from jobs.redis.errors import translate_redis_errors
from jobs.task import JobResult, JobsTask

if TYPE_CHECKING:
    from django.tasks.base import Task

RESULT_ID = re.compile(r"^[A-Za-z0-9:._-]{1,200}$")
VALIDATED_MAX = 1024  # tasks a backend remembers as valid (module-level ones)
_backends: WeakSet[JobsBackend] = WeakSet()


@receiver(setting_changed)
def _forget_validated(*, setting: str, **kwargs: Any) -> None:
    # What validation reads besides the backend and the task: IMPORTS (TASKS),
    # the installed apps and the app registry (available_apps sends this too).
    if setting in ("TASKS", "INSTALLED_APPS"):
        for backend in list(_backends):
            backend.validated.clear()


class JobsBackend(BaseTaskBackend):
    task_class = JobsTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        # Django keeps QUEUES as a set, empty for "any queue name"; workers take
        # them in the declared order, and `default` when none is declared.
        declared = params.get("QUEUES", [DEFAULT_TASK_QUEUE_NAME])
        self.queue_order = list(dict.fromkeys(declared)) or [DEFAULT_TASK_QUEUE_NAME]
        self.config_error: InvalidTaskBackend | None = None
        # Tasks that passed validate_task(), by id and the flags they passed.
        self.validated: dict[tuple[int, bool, bool, bool], Task[Any, Any]] = {}
        _backends.add(self)
        try:
            self.config = JobsOptions.from_options(self.options)
        except InvalidTaskBackend as e:
            # Reported by check() and raised on use, so `manage.py check` can run.
            self.config_error = e
            self.config = JobsOptions()

    def accepts_queue(self, name: str) -> bool:
        """Whether jobs may be queued on `name` (any name when QUEUES is [])."""
        return not self.queues or name in self.queues

    @cached_property
    def results(self) -> results.ResultStore:
        return results.build_store(self.config)

    # Enqueueing

    def enqueue(
        self, task: Task[Any, Any], args: Any, kwargs: Any, **options: Any
    ) -> JobResult:
        """Queue up a task to be executed. See aenqueue()."""
        if tracing.enabled():
            return tracing.traced(self._enqueue, task, args, kwargs, options)
        return self._enqueue(task, args, kwargs, **options)

    def _enqueue(
        self, task: Task[Any, Any], args: Any, kwargs: Any, **options: Any
    ) -> JobResult:
        job = self.prepare(task, args, kwargs, **options)
        held_by = self.place(job)
        return job.result if held_by is None else self.get_result(held_by)

    def submit(self, job: Prepared) -> bool:
        """Write a prepared job; False if it was not queued (see place())."""
        return self.place(job) is None

    def place(self, job: Prepared) -> str | None:
        """Write a prepared job: None when queued, else the id of the job that
        holds its place (its own id taken, or its `unique` key held); nothing
        is written then."""
        with translate_redis_errors(self.config):
            reply = self.write(scripts.ENQUEUE, job.keys, job.args)
            if reply == 1:
                self.results.store_outside(job.record, only_new=True)
        return self._placed(job, reply)

    async def aenqueue(
        self, task: Task[Any, Any], args: Any, kwargs: Any, **options: Any
    ) -> JobResult:
        """Queue up a task to be executed.

        Raise SerializationError or PayloadTooLarge (nothing written) for bad
        arguments, QueueUnavailable or QueueFull when Redis cannot take the job.
        `job_id` makes the enqueue idempotent: a second enqueue with the same id
        while the first job's result is kept (RESULT_TTL, at most a day) queues
        nothing and returns the first job's result; after that, it queues a
        new job. So does a task's `unique` while the job holding its key is
        queued or running.
        """
        if tracing.enabled():
            return await tracing.atraced(self._aenqueue, task, args, kwargs, options)
        return await self._aenqueue(task, args, kwargs, **options)

    async def _aenqueue(
        self, task: Task[Any, Any], args: Any, kwargs: Any, **options: Any
    ) -> JobResult:
        job = self.prepare(task, args, kwargs, **options)
        held_by = await self.aplace(job)
        return job.result if held_by is None else await self.aget_result(held_by)

    async def asubmit(self, job: Prepared) -> bool:
        """See submit()."""
        return await self.aplace(job) is None

    async def aplace(self, job: Prepared) -> str | None:
        """See place()."""
        with translate_redis_errors(self.config):
            reply = await self.awrite(scripts.ENQUEUE, job.keys, job.args)
            if reply == 1:
                await self.results.astore_outside(job.record, only_new=True)
        return self._placed(job, reply)

    def _placed(self, job: Prepared, reply: Any) -> str | None:
        if reply == 1:
            task_enqueued.send(type(self), task_result=job.result)
            return None
        # 0: the job's own id was taken; bytes: the id holding its unique key.
        return reply.decode() if isinstance(reply, bytes) else job.result.id

    def write(self, script: scripts.LuaScript, keys: list[Any], args: list[Any]) -> Any:
        """Run a script that queues jobs; see jobs.redis.replicas.write()."""
        return replicas.write(self.config, script, keys, args)

    async def awrite(
        self, script: scripts.LuaScript, keys: list[Any], args: list[Any]
    ) -> Any:
        """See write()."""
        return await replicas.awrite(self.config, script, keys, args)

    def prepare(
        self,
        task: Task[Any, Any],
        args: Any,
        kwargs: Any,
        *,
        job_id: str | None = None,
        meta: dict[str, Any] | None = None,
        reserve: int | None = None,
    ) -> Prepared:
        """Validate and serialize a job without touching Redis (`reserve`: see
        jobs.enqueue.prepare)."""
        if self.config_error is not None:
            raise self.config_error
        self.validate_task(task)
        assert isinstance(task, JobsTask)
        if job_id is not None and not RESULT_ID.match(job_id):
            raise ValueError(
                f"job_id {job_id!r} must be 1 to 200 letters, digits and ':._-'."
            )
        return enqueue.prepare(
            task,
            list(args),
            dict(kwargs),
            alias=self.alias,
            config=self.config,
            store=self.results,
            job_id=job_id,
            meta=meta,
            reserve=reserve,
        )

    def validate_task(self, task: Task[Any, Any]) -> None:
        # Validating is a third of an enqueue's CPU, and the same module-level
        # task is enqueued again and again: remember the ones that passed, with
        # the flags they were checked against (tests patch them on a backend).
        # A task with run_after is a new copy at each enqueue: not remembered.
        key = (
            id(task),
            self.supports_async_task,
            self.supports_priority,
            self.supports_defer,
        )
        if task.run_after is None and self.validated.get(key) is task:
            return
        self._validate(task)
        if task.run_after is None:
            if len(self.validated) >= VALIDATED_MAX:
                self.validated.clear()
            self.validated[key] = task  # kept alive, so its id is not reused

    def _validate(self, task: Task[Any, Any]) -> None:
        super().validate_task(task)
        if not isinstance(task, JobsTask):
            raise InvalidTask(
                f"{task.module_path} was not made by this backend's @task; "
                "decorate it again after TASKS is configured."
            )
        module = task.func.__module__
        if not registry.discoverable(module):
            raise InvalidTask(
                f"Task {task.module_path!r} is defined in {module!r}, which workers do "
                "not import. Define tasks in an installed app's tasks.py, or list "
                "the module in the backend's OPTIONS['IMPORTS']."
            )

    # Results

    def get_result(self, result_id: str) -> JobResult:
        """Return the result with this id, or raise TaskResultDoesNotExist
        (QueueUnavailable when Redis does not answer)."""
        if not RESULT_ID.match(result_id):
            raise TaskResultDoesNotExist(result_id)
        with self.reading():
            record = self.results.get(result_id)
        return self.result_from(record, result_id)

    async def aget_result(self, result_id: str) -> JobResult:
        """See get_result()."""
        if not RESULT_ID.match(result_id):
            raise TaskResultDoesNotExist(result_id)
        with self.reading():
            record = await self.results.aget(result_id)
        return self.result_from(record, result_id)

    def reading(self) -> translate_redis_errors:
        return translate_redis_errors(self.config, "the result could not be read")

    def result_from(self, record: Record | None, result_id: str) -> JobResult:
        if record is None or record.get("backend") != self.alias:
            raise TaskResultDoesNotExist(result_id)
        return JobResult.from_record(record, registry.get(record["task"]))

    def get_finished_result(self, result_id: str, timeout: float | None) -> JobResult:
        """Block until the result is finished; see JobResult.get()."""
        with self.reading():
            record = waiting.finished_record(
                self.results, self.config, result_id, timeout
            )
        return self.result_from(record, result_id)

    async def aget_finished_result(
        self, result_id: str, timeout: float | None
    ) -> JobResult:
        """See get_finished_result()."""
        with self.reading():
            record = await waiting.afinished_record(
                self.results, self.config, result_id, timeout
            )
        return self.result_from(record, result_id)

    # Cancelling

    def cancel(self, result_id: str) -> bool:
        """Cancel a job: a queued one is recorded FAILED (`JobCancelled`) at once;
        a running coroutine is cancelled by its worker within moments. A running
        plain function cannot be interrupted and finishes. False when the job is
        neither queued nor running (finished, or unknown)."""
        return self.cancel_outcome(result_id) is not Cancel.NOTHING

    def cancel_outcome(self, result_id: str) -> Cancel:
        """cancel(), telling a job taken off the queue from a running one asked
        to stop (its result may already say FAILED either way)."""
        if not RESULT_ID.match(result_id):
            return Cancel.NOTHING
        with self.cancelling():
            record = self.results.get(result_id)
        if record is None:
            return Cancel.NOTHING
        cancelled = cancelled_record(record)
        keys, args = cancel_args(self.results, self.config, cancelled)
        with self.cancelling():
            wire = connections.sync_wire(self.config)
            outcome = Cancel(int(scripts.CANCEL.call(wire, keys, args)))
            if outcome is Cancel.DEQUEUED:
                self.results.store_outside(cancelled)
                if step := workflow_step_of(cancelled):
                    flows.STEP_FAILED.call(wire, *step)
        return outcome

    async def acancel(self, result_id: str) -> bool:
        """See cancel()."""
        return await self.acancel_outcome(result_id) is not Cancel.NOTHING

    async def acancel_outcome(self, result_id: str) -> Cancel:
        """See cancel_outcome()."""
        if not RESULT_ID.match(result_id):
            return Cancel.NOTHING
        with self.cancelling():
            record = await self.results.aget(result_id)
        if record is None:
            return Cancel.NOTHING
        cancelled = cancelled_record(record)
        keys, args = cancel_args(self.results, self.config, cancelled)
        with self.cancelling():
            wire = connections.async_wire(self.config)
            outcome = Cancel(int(await scripts.CANCEL.acall(wire, keys, args)))
            if outcome is Cancel.DEQUEUED:
                await self.results.astore_outside(cancelled)
                if step := workflow_step_of(cancelled):
                    await flows.STEP_FAILED.acall(wire, *step)
        return outcome

    def cancelling(self) -> translate_redis_errors:
        return translate_redis_errors(self.config, "the job was not cancelled")

    # Checks

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        return list(check_backend(self))


# Cancel and translate_redis_errors moved out; their old paths keep working.
__all__ = ["RESULT_ID", "Cancel", "JobsBackend", "translate_redis_errors"]
