"""The Task, TaskResult and TaskContext our backend hands out.

They are Django's own dataclasses with what Celery users expect on top:
per-task retries and timeouts on `JobsTask`, waiting on `JobResult`.

    @task(max_attempts=5, retry_backoff=2, timeout=60)
    def fetch(url): ...

    result = fetch.enqueue("https://example.com")
    result.get(timeout=10)      # the return value, or the task's exception re-raised
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn, Self, cast

from django.conf import settings
from django.tasks.base import Task, TaskContext, TaskResult, TaskResultStatus
from django.tasks.exceptions import InvalidTask
from django.utils import timezone

from jobs import registry
from jobs.failures import JobTaskError, entry_of, raise_remote
from jobs.records import Progress, Record, instant, stamp

if TYPE_CHECKING:
    from jobs.backend import JobsBackend
    from jobs.worker.progress import ProgressReporter

RETRY_BACKOFF_MAX = 600.0  # seconds, cap of the exponential backoff
RATE_PERIODS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}  # ms
RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*([smhd])\s*$")


def rate_interval(rate: str) -> float:
    """The ms between two starts of a rate limit ("100/m": 600.0); InvalidTask
    for anything else."""
    match = RATE.match(rate) if isinstance(rate, str) else None
    count = float(match.group(1)) if match else 0.0
    if match is None or count <= 0:
        raise InvalidTask(
            f"rate_limit {rate!r} is not a rate: write jobs per second, minute, "
            'hour or day, e.g. "100/m" or "5/s".'
        )
    return RATE_PERIODS[match.group(2)] / count


@dataclass(frozen=True, slots=True, kw_only=True)
class JobsTask(Task):  # type: ignore[type-arg]
    """A Django Task with retry and timeout settings.

    max_attempts: runs started in all, counting runs lost with a dead worker
        (None: the backend's MAX_ATTEMPTS, 3). A job that kills its worker every
        time is recorded as failed after this many runs.
    retry_on: exception classes that earn another run (default: none, a raised
        exception is final; arq's `Retry` always asks for another run).
    retry_backoff: seconds before the 2nd run, doubling after (with jitter).
    timeout: seconds a run may take (None: the backend's TIMEOUT).
    expires: seconds the job may wait past its due time before it is dropped,
        or an aware datetime after which it must not start (None: the
        backend's EXPIRES). A job no worker started in time, a retry due after
        it included, is recorded FAILED with `jobs.JobExpired`.
    rate_limit: at most this many jobs of the task start, across all workers:
        "100/m", "5/s", "1000/h", "10/d" (JOBS_RATE_LIMITS overrides it). Jobs
        over it wait in the queue for their turn, holding no worker slot.
    unique: at most one queued or running job of this task per key: True
        derives the key from the arguments, a string is the key. Enqueueing
        while a job holds the key returns that job's result, queuing nothing.
    """

    max_attempts: int | None = None
    retry_on: tuple[type[BaseException], ...] = ()
    retry_backoff: float = 1.0
    timeout: float | None = None
    expires: float | datetime | None = None
    unique: bool | str = False
    rate_limit: str | None = None

    def __getattr__(self, name: str) -> Any:  # only for names it lacks
        hint = CELERY_CALLS.get(name)
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {name!r}"
            + (f": Celery's {name}() is {hint} on a Django task" if hint else "")
        )

    def __post_init__(self) -> None:
        # Django's Task.__post_init__ validates against the backend.
        Task.__post_init__(self)
        if self.max_attempts is not None and self.max_attempts < 1:
            raise InvalidTask("max_attempts must be at least 1.")
        if self.timeout is not None and self.timeout <= 0:
            raise InvalidTask("timeout must be positive.")
        if self.retry_backoff < 0:
            raise InvalidTask("retry_backoff must not be negative.")
        self._check_expires()
        if not isinstance(self.unique, (bool, str)) or self.unique == "":
            raise InvalidTask("unique must be True, False or a non-empty string.")
        if self.rate_limit is not None:
            rate_interval(self.rate_limit)
        registry.register(self)

    def _check_expires(self) -> None:
        expires = self.expires
        if isinstance(expires, datetime):
            # Django's rule for run_after: naive is refused only with USE_TZ;
            # without it, naive is TIME_ZONE time (timezone.now() gives that).
            if settings.USE_TZ and not timezone.is_aware(expires):
                raise InvalidTask("expires must be an aware datetime.")
        elif expires is not None and not (
            isinstance(expires, (int, float)) and expires > 0
        ):
            raise InvalidTask(
                "expires must be positive seconds, a timedelta or an aware datetime."
            )

    def using(
        self,
        *,
        priority: int | None = None,
        queue_name: str | None = None,
        run_after: datetime | timedelta | None = None,
        backend: str | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        expires: float | timedelta | datetime | None = None,
        unique: bool | str | None = None,
    ) -> Self:
        """Return a copy with other defaults; `run_after` may be a timedelta,
        `expires` one too (seconds past the due time)."""
        if isinstance(run_after, timedelta):
            run_after = timezone.now() + run_after
        if isinstance(expires, timedelta):
            expires = expires.total_seconds()
        changes: dict[str, Any] = {
            name: value
            for name, value in (
                ("priority", priority),
                ("queue_name", queue_name),
                ("run_after", run_after),
                ("backend", backend),
                ("max_attempts", max_attempts),
                ("timeout", timeout),
                ("expires", expires),
                ("unique", unique),
            )
            if value is not None
        }
        return replace(self, **changes)

    def get_backend(self) -> JobsBackend:
        return cast("JobsBackend", Task.get_backend(self))

    def bind(self, *args: Any, **kwargs: Any) -> Step:
        """Return this task with its arguments, as a step of a workflow.

        In `jobs.chain()`, the step receives the previous step's return value
        before `args` (after the context, for `takes_context` tasks), unless
        made with `.ignore_previous()`.
        """
        return Step(task=self, args=args, kwargs=kwargs)


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """A task and its arguments, waiting to be part of a workflow (see jobs.chain)."""

    task: JobsTask
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    takes_previous: bool = True  # in a chain: gets the previous return value first

    def ignore_previous(self) -> Step:
        """Return this step run with its own arguments only, in any chain."""
        return replace(self, takes_previous=False)

    def __or__(self, other: object) -> NoReturn:
        raise TypeError(PIPE_UNSUPPORTED)

    __ror__ = __or__  # Celery's chain(...) | add.s()


# Celery's calls a Celery user tries on a Django task, and what they are here.
CELERY_CALLS = {
    "delay": ".enqueue(...)",
    "apply_async": ".using(run_after=...).enqueue(...)",
    "s": ".bind(...)",
    "si": ".bind(...).ignore_previous()",
}

# Celery's `a.s() | b.s()`: what it said before was "unsupported operand type(s)".
PIPE_UNSUPPORTED = (
    "Steps are not chained with |: write jobs.chain(a, b) "
    "(jobs.celery.chain(a, b) for Celery's .s() steps)."
)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobResult(TaskResult):  # type: ignore[misc,type-arg]  # stubs: not frozen
    """A TaskResult that can be waited on, as Celery's AsyncResult.get() could.

    meta: what the enqueuer attached (`backend.aenqueue(..., meta={...})`), e.g.
        an owner to check before showing the result, or the schedule that ran it.
    """

    meta: dict[str, Any] | None = None
    # progress: {"done", "total", "message", "updated_at"} as the task last set it.
    progress: Progress | None = None

    def get(self, timeout: float | None = None) -> Any:
        """Wait for the task; return its value or re-raise its error.

        The error is the task's own exception class when it can be rebuilt here
        (else `jobs.TaskFailed`), with the worker's traceback as its `__cause__`.
        Raise `jobs.ResultTimeout` if it is not finished within `timeout` seconds.
        """
        backend = cast("JobsBackend", self.task.get_backend())
        finished = backend.get_finished_result(self.id, timeout)
        self._copy_from(finished)
        return finished.value_or_raise()

    async def aget(self, timeout: float | None = None) -> Any:
        """See get()."""
        backend = cast("JobsBackend", self.task.get_backend())
        finished = await backend.aget_finished_result(self.id, timeout)
        self._copy_from(finished)
        return finished.value_or_raise()

    def value_or_raise(self) -> Any:
        if self.errors and self.status == "FAILED":
            raise_remote(self.errors[-1])
        return self.return_value

    def refresh(self) -> None:
        """Reload the result (progress included) from the results cache."""
        self._copy_from(self.task.get_backend().get_result(self.id))

    async def arefresh(self) -> None:
        """See refresh()."""
        self._copy_from(await self.task.get_backend().aget_result(self.id))

    def _copy_from(self, other: TaskResult[Any, Any]) -> None:
        names = [*TaskResult.__dataclass_fields__, "progress"]
        for name in names:
            if name not in ("task", "id", "args", "kwargs", "backend"):
                object.__setattr__(self, name, getattr(other, name, None))

    def to_record(self) -> Record:
        """Return the JSON record of this result (see jobs.records)."""
        task = self.task
        attempted = stamp(self.last_attempted_at)
        # A first attempt's start is its last: one stamp (~1 us) for both.
        started = self.started_at
        record: Record = {
            "id": self.id,
            "task": task.module_path,
            "backend": self.backend,
            "queue": task.queue_name,
            "priority": task.priority,
            "run_after": stamp(task.run_after),
            "args": self.args,
            "kwargs": self.kwargs,
            "status": str(self.status),
            "enqueued_at": stamp(self.enqueued_at),
            "started_at": (
                attempted if started is self.last_attempted_at else stamp(started)
            ),
            "finished_at": stamp(self.finished_at),
            "last_attempted_at": attempted,
            "errors": [entry_of(e) for e in self.errors],
            "worker_ids": list(self.worker_ids),
        }
        if self.meta:
            record["meta"] = self.meta
        return record

    @classmethod
    def from_record(cls, record: Record, task: JobsTask) -> JobResult:
        """Rebuild the result of `record`, for `task` (already looked up)."""
        run_after = instant(record.get("run_after"))
        priority = record.get("priority", 0)
        if (
            run_after is not None
            or record.get("queue") != task.queue_name
            or priority != task.priority
        ):
            task = task.using(
                queue_name=record.get("queue"), run_after=run_after, priority=priority
            )
        result = cls(
            task=task,
            id=record["id"],
            status=TaskResultStatus(record["status"]),
            enqueued_at=instant(record.get("enqueued_at")),
            started_at=instant(record.get("started_at")),
            finished_at=instant(record.get("finished_at")),
            last_attempted_at=instant(record.get("last_attempted_at")),
            args=record.get("args", []),
            kwargs=record.get("kwargs", {}),
            backend=record.get("backend", task.backend),
            errors=[JobTaskError(**e) for e in record.get("errors", [])],
            worker_ids=record.get("worker_ids", []),
            meta=record.get("meta"),
            progress=record.get("progress"),
        )
        object.__setattr__(result, "_return_value", record.get("return_value"))
        return result


@dataclass(frozen=True, slots=True, kw_only=True)
class JobsTaskContext(TaskContext):  # type: ignore[misc,type-arg]
    """What a task declared with `takes_context=True` receives first.

    @task(takes_context=True)
    async def report(context, rows):
        for done, row in enumerate(rows, 1):
            ...
            await context.aset_progress(done, len(rows), f"row {row}")
    """

    reporter: ProgressReporter | None = None

    @property
    def job_id(self) -> str:
        return self.task_result.id

    def set_progress(
        self, done: float, total: float | None = None, message: str = ""
    ) -> None:
        """Record how far the task got; readers see it in `result.progress`.

        Updates closer than 0.1 s apart are coalesced (the last one always lands
        before the result). From a coroutine, use aset_progress().
        """
        if self.reporter is not None:
            self.reporter.set(done, total, message)

    async def aset_progress(
        self, done: float, total: float | None = None, message: str = ""
    ) -> None:
        """See set_progress()."""
        if self.reporter is not None:
            await self.reporter.aset(done, total, message)
