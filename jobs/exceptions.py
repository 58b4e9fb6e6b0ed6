"""Exceptions of our own. Django's are reused for Django concepts.

    JobsError
    ├── SerializationError        arguments or a return value that are not JSON
    ├── BadArguments              arguments the task's function cannot take
    ├── PayloadTooLarge           a job over MAX_PAYLOAD, a result over MAX_RESULT
    ├── EnqueueError              the job could not be queued; nothing was written
    │   ├── QueueUnavailable      Redis cannot be reached (answer 503, try later)
    │   │   └── NotReplicated     the master has the job, too few replicas (WAIT)
    │   └── QueueFull             Redis is out of memory under `noeviction`
    ├── TaskNotRegistered         a task path that is not a registered Task
    ├── JobNotRunnable            a job recorded FAILED without running
    │   ├── AttemptsExhausted     its earlier attempts died with their worker
    │   └── JobExpired            no worker started it before it expired
    ├── TaskFailed                the task failed; raised by JobResult.get()
    ├── JobCancelled              the job was cancelled (its recorded error)
    ├── ResultTimeout             JobResult.get() gave up waiting
    ├── ScheduleError             an invalid cron expression, interval or zone
    ├── WorkflowError             a chain, group or chord that cannot be built
    └── WorkerError               the worker cannot start

`InvalidTask`, `TaskResultDoesNotExist` and `InvalidTaskBackend` come from
`django.tasks.exceptions`; `RemoteTraceback` carries a worker's traceback as
the `__cause__` of a re-raised task error.
"""

from __future__ import annotations

from typing import Any


class JobsError(Exception):
    """Something went wrong in django-jobs."""

    def __init__(self, message: str | None = None, *args: Any) -> None:
        super().__init__(message or (self.__doc__ or "").strip(), *args)


class SerializationError(JobsError, TypeError):
    """A value is not JSON-serializable; jobs carry JSON only."""


class BadArguments(JobsError, TypeError):
    """The arguments do not fit the task's signature (as a call would say)."""


class PayloadTooLarge(JobsError, ValueError):
    """The job (MAX_PAYLOAD) or its result (MAX_RESULT) is too large; pass and
    return references (a primary key, a path) instead."""


class EnqueueError(JobsError):
    """The job could not be enqueued; nothing was written."""


class QueueUnavailable(EnqueueError):
    """Redis cannot be reached; the job was not enqueued."""


class NotReplicated(QueueUnavailable):
    """Too few replicas acknowledged the job within WAIT_TIMEOUT. The master has
    it, so it may still run, or be lost if the master fails now: enqueue it again
    with the same `job_id` to be sure it is queued once."""


class QueueFull(EnqueueError):
    """Redis is out of memory (maxmemory with noeviction); the job was not enqueued."""


class TaskNotRegistered(JobsError, LookupError):
    """The task is not a registered Django Task; only those can run."""


class JobNotRunnable(JobsError):
    """The job cannot run; it is recorded as failed without running."""


class AttemptsExhausted(JobNotRunnable):
    """The job's earlier attempts never reported back (their worker died)."""


class JobExpired(JobNotRunnable):
    """No worker started the job before it expired (`expires`, or EXPIRES)."""


class TaskFailed(JobsError):
    """The task failed in the worker."""

    def __init__(self, message: str, *, exception_class_path: str = "") -> None:
        super().__init__(message)
        self.exception_class_path = exception_class_path


class JobCancelled(JobsError):
    """The job was cancelled."""


class ResultTimeout(JobsError, TimeoutError):
    """The task did not finish within the timeout."""


class ScheduleError(JobsError, ValueError):
    """The schedule is invalid."""


class WorkflowError(JobsError, ValueError):
    """The workflow cannot be built as given; nothing was enqueued."""


class WorkerError(JobsError):
    """The worker cannot start."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker, as text."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return f'\n\n"""\n{self.tb.rstrip()}\n"""'
