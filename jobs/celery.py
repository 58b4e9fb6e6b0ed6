"""Celery's task API over Django's tasks, so Celery code moves with its imports.

    from jobs.celery import shared_task        # was: from celery import shared_task

    @shared_task(bind=True, autoretry_for=(IOError,), max_retries=5)
    def fetch(self, url): ...

    result = fetch.delay("https://example.com")    # a jobs.celery.AsyncResult
    result.get(timeout=10)

Each decorated function becomes a registered `JobsTask` (the worker runs it as
any other task); the returned `CeleryTask` adds `delay`, `apply_async`, `s`,
`si` and `AsyncResult`. Options map onto JobsTask's (docs/celery.md lists
every Celery option and what it becomes); one we cannot honour raises
InvalidTask at import rather than being ignored.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from django.tasks import task as django_task
from django.tasks.exceptions import InvalidTask
from django.utils import timezone

from jobs import conf
from jobs.asyncresult import AsyncResult, ResultSet
from jobs.celeryflows import chain, chord, group
from jobs.celeryruns import (
    FOREVER,
    HARMLESS,
    MAPPED,
    RETRY_OPTIONS,
    Bound,
    MaxRetriesExceededError,
    Request,
    as_utc,
    platforms,
    priority,
    retry_policy,
    seconds,
    task_options,
    wrap,
)
from jobs.schedules.cron import crontab
from jobs.task import JobResult, JobsTask, Step

__all__ = [
    "HARMLESS",
    "MAPPED",
    "RETRY_OPTIONS",
    "AsyncResult",
    "Celery",
    "CeleryTask",
    "MaxRetriesExceededError",
    "ResultSet",
    "chain",
    "chord",
    "crontab",
    "group",
    "platforms",
    "shared_task",
]


# Django's Task API, which a CeleryTask holds as `.task`.
DJANGO_CALLS = {"enqueue", "aenqueue", "using", "bind", "get_result", "aget_result"}


class CeleryTask:
    """A Celery-style task: the registered JobsTask (`.task`) and Celery's
    calling API. Calling it runs the function here, as Celery's does."""

    def __init__(
        self, func: Callable[..., Any], bind: bool, options: dict[str, Any]
    ) -> None:
        name, path = options.pop("name", None), f"{func.__module__}.{func.__qualname__}"
        if name is not None and name != path:
            raise InvalidTask(
                f"name={name!r}: a task is known by its dotted path ({path!r}); "
                "move the function or drop name=."
            )
        self.policy = retry_policy(options)
        self.func, self.bind = func, bind
        holder: list[CeleryTask] = [self]
        retries = self.policy.max_retries
        self.task: JobsTask = django_task(
            **task_options(options),  # type: ignore[call-overload]
            max_attempts=FOREVER if retries is None else retries + 1,
        )(wrap(func, bind, holder))
        functools.update_wrapper(self, func)

    @property
    def name(self) -> str:
        return self.task.module_path

    @property
    def module_path(self) -> str:  # JOBS_SCHEDULES' "task" may be this object
        return self.task.module_path

    @property
    def max_retries(self) -> int | None:
        return self.policy.max_retries

    @property
    def default_retry_delay(self) -> float:
        return self.policy.default_retry_delay

    def __getattr__(self, name: str) -> Any:  # only for names it lacks
        if name in DJANGO_CALLS:
            raise AttributeError(
                f"{name}() is Django's: this Celery-style task's Django task is "
                f"its .task attribute (add.task.{name}(...))"
            )
        if name == "apply":  # Celery's eager run, with an EagerResult
            raise AttributeError(
                "apply() is not supported: call the task to run it here "
                "(add(2, 3)), or queue it and run the queue in a test with "
                "jobs.testing.drain()"
            )
        raise AttributeError(f"'CeleryTask' object has no attribute {name!r}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.bind:
            local = Request("", 0, list(args), kwargs, self.name, called_directly=True)
            return self.func(Bound(self, local), *args, **kwargs)
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<@task: {self.name}>"

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult:
        """Queue a job with these arguments (apply_async's shortcut)."""
        return AsyncResult.of(cast(JobResult, self.task.enqueue(*args, **kwargs)))

    def apply_async(
        self,
        args: Any = None,
        kwargs: Any = None,
        *,
        countdown: float | None = None,
        eta: datetime | None = None,
        expires: float | timedelta | datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        task_id: str | None = None,
        **unsupported: Any,
    ) -> AsyncResult:
        """Queue a job, as Celery's apply_async (docs/celery.md: each option)."""
        for name in HARMLESS & unsupported.keys():
            del unsupported[name]
        if unsupported:
            raise TypeError(
                f"apply_async() does not take {sorted(unsupported)}; docs/celery.md "
                "says what to use instead (link=: jobs.celery.chain)."
            )
        task = self.configured(countdown, eta, expires, queue, priority)
        args, kwargs = list(args or ()), dict(kwargs or {})
        backend = task.get_backend()
        return AsyncResult.of(backend.enqueue(task, args, kwargs, job_id=task_id))

    def configured(
        self,
        countdown: float | None,
        eta: datetime | None,
        expires: float | timedelta | datetime | None,
        queue: str | None,
        priority_: int | None,
    ) -> JobsTask:
        now = timezone.now()
        run_after = as_utc(eta) if eta is not None else None
        if countdown is not None:
            run_after = now + timedelta(seconds=countdown)
        deadline = None
        if isinstance(expires, datetime):
            deadline = as_utc(expires)
        elif expires is not None:
            # Celery counts expires from the call; ours counts past the due time.
            deadline = now + timedelta(seconds=float(seconds(expires)))  # type: ignore[arg-type]
        return self.task.using(
            run_after=run_after,
            expires=deadline,
            queue_name=queue,
            priority=None if priority_ is None else priority(priority_),
        )

    def s(self, *args: Any, **kwargs: Any) -> Step:
        """A signature: this task with arguments, a step of chain/group/chord
        (it gets the previous step's value first, in a chain)."""
        return self.task.bind(*args, **kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Step:
        """An immutable signature: the previous step's value is not passed."""
        return self.task.bind(*args, **kwargs).ignore_previous()

    def AsyncResult(self, task_id: str) -> AsyncResult:  # Celery's name
        return AsyncResult(task_id, backend=self.task.backend)


def shared_task(*args: Any, **options: Any) -> Any:
    """Celery's decorator: `@shared_task`, or `@shared_task(bind=True, ...)`."""
    if len(args) == 1 and callable(args[0]) and not options:
        return CeleryTask(args[0], False, {})

    def decorator(func: Callable[..., Any]) -> CeleryTask:
        bind = bool(options.get("bind", False))
        rest = {k: v for k, v in options.items() if k != "bind"}
        return CeleryTask(func, bind, rest)

    return decorator


class Celery:
    """Stands in for Celery's app object: `@app.task` is shared_task.

    The broker and result backend are the TASKS backend's Redis and results
    cache: the constructor's `broker=`/`backend=` are not used.
    config_from_object() and autodiscover_tasks() do nothing: settings are
    Django's, and workers import every installed app's tasks.py anyway.
    """

    def __init__(self, main: str | None = None, **ignored: Any) -> None:
        self.main = main
        self.conf = Conf()

    def task(self, *args: Any, **options: Any) -> Any:
        return shared_task(*args, **options)

    def config_from_object(self, obj: Any, namespace: str | None = None) -> None:
        pass

    def autodiscover_tasks(self, *args: Any, **kwargs: Any) -> None:
        pass


class Conf(dict[str, Any]):
    """`app.conf`: kept, not read, except a beat schedule, which workers run
    with the settings' ones (jobs.conf.CODE_SCHEDULES; over settings' Celery
    schedules, as Celery's conf.update() is over its config object).
    Workers must import the module that makes the app: list it in IMPORTS."""

    def update(self, *args: Any, **kwargs: Any) -> None:
        values = dict(*args, **kwargs)
        for name in ("CELERYBEAT_SCHEDULE", "beat_schedule"):
            if name in values:
                conf.CODE_SCHEDULES.update(values[name])
        super().update(values)
