"""Celery's AsyncResult over our results: `ready()`, `state`, `get()`,
`traceback`, `revoke()` (jobs.celery returns these from delay/apply_async).

    result = AsyncResult(job_id)
    if result.ready():
        print(result.state, result.result)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.tasks import task_backends
from django.tasks.base import TaskResultStatus
from django.tasks.exceptions import TaskResultDoesNotExist

from jobs.backend import JobsBackend
from jobs.failures import raise_remote
from jobs.task import JobResult

# Celery's state names for Django's statuses; READY after a failed attempt
# is Celery's RETRY, FAILED by cancellation its REVOKED.
STATES = {
    TaskResultStatus.READY: "PENDING",
    TaskResultStatus.RUNNING: "STARTED",
    TaskResultStatus.SUCCESSFUL: "SUCCESS",
    TaskResultStatus.FAILED: "FAILURE",
}
READY_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED"})
REVOKED = "jobs.exceptions.JobCancelled"


class AsyncResult:
    """A job's result the way Celery shows it. An id no backend knows (never
    queued, or its result expired) is PENDING, as in Celery."""

    def __init__(self, id: str, backend: str = "default", **ignored: Any) -> None:
        self.id = id
        self.alias = backend if isinstance(backend, str) else "default"
        self._result: JobResult | None = None

    @classmethod
    def of(cls, result: JobResult) -> AsyncResult:
        made = cls(result.id, backend=result.backend)
        made._result = result
        return made

    @property
    def task_id(self) -> str:
        return self.id

    def __repr__(self) -> str:
        return f"<AsyncResult: {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def _backend(self) -> JobsBackend:
        backend = task_backends[self.alias]
        assert isinstance(backend, JobsBackend)
        return backend

    def _fetch(self) -> JobResult | None:
        """The result as stored now (None: not known)."""
        if self._result is not None and self._result.is_finished:
            return self._result  # a finished result does not change
        try:
            self._result = self._backend().get_result(self.id)
        except TaskResultDoesNotExist:
            return None
        return self._result

    @property
    def state(self) -> str:
        result = self._fetch()
        if result is None:
            return "PENDING"
        if result.status == TaskResultStatus.FAILED and result.errors:
            if result.errors[-1].exception_class_path == REVOKED:
                return "REVOKED"
        if result.status == TaskResultStatus.READY and result.errors:
            return "RETRY"
        return STATES[result.status]

    status = state

    def ready(self) -> bool:
        return self.state in READY_STATES

    def successful(self) -> bool:
        return self.state == "SUCCESS"

    def failed(self) -> bool:
        return self.state in ("FAILURE", "REVOKED")

    @property
    def result(self) -> Any:
        """The return value, the exception of a failed job, else None."""
        result = self._fetch()
        if result is None or not result.is_finished:
            return None
        if result.status == TaskResultStatus.FAILED:
            return self._exception(result)
        return result.return_value

    info = result

    @staticmethod
    def _exception(result: JobResult) -> BaseException | None:
        if not result.errors:
            return None
        try:
            raise_remote(result.errors[-1])
        except BaseException as error:  # rebuilt here, never unpickled
            return error

    @property
    def traceback(self) -> str | None:
        """The worker's traceback of the last failed attempt, or None."""
        result = self._fetch()
        if result is None or not result.errors:
            return None
        return str(result.errors[-1].traceback)

    @property
    def date_done(self) -> datetime | None:
        result = self._fetch()
        return None if result is None else result.finished_at

    @property
    def name(self) -> str | None:
        result = self._fetch()
        return None if result is None else result.task.module_path

    @property
    def args(self) -> list[Any] | None:
        result = self._fetch()
        return None if result is None else list(result.args)

    @property
    def kwargs(self) -> dict[str, Any] | None:
        result = self._fetch()
        return None if result is None else dict(result.kwargs)

    def get(
        self, timeout: float | None = None, propagate: bool = True, **ignored: Any
    ) -> Any:
        """Wait for the job; its value, or its exception re-raised (returned
        with propagate=False). `jobs.ResultTimeout` (a TimeoutError) after
        `timeout` seconds, as Celery's celery.exceptions.TimeoutError."""
        finished = self._backend().get_finished_result(self.id, timeout)
        self._result = finished
        if finished.status == TaskResultStatus.FAILED and not propagate:
            return self._exception(finished)
        return finished.value_or_raise()

    wait = get

    def revoke(self, terminate: bool = False, **ignored: Any) -> None:
        """Cancel the job: a queued one never runs (REVOKED); a running
        coroutine is cancelled; a running plain function finishes."""
        self._backend().cancel(self.id)
        self._result = None

    def forget(self) -> None:
        """Nothing to do: results expire after RESULT_TTL."""


class ResultSet:
    """Several AsyncResults waited on together (Celery's ResultSet)."""

    def __init__(self, results: list[AsyncResult]) -> None:
        self.results = list(results)

    def ready(self) -> bool:
        return all(r.ready() for r in self.results)

    def successful(self) -> bool:
        return all(r.successful() for r in self.results)

    def failed(self) -> bool:
        return any(r.failed() for r in self.results)

    def get(self, timeout: float | None = None, propagate: bool = True) -> list[Any]:
        return [r.get(timeout=timeout, propagate=propagate) for r in self.results]
