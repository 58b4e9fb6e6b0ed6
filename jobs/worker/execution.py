"""Run one claimed job: READY -> RUNNING -> SUCCESSFUL / FAILED (or READY to retry).

Task failures are results, not crashes: whatever the task raises is recorded as
a TaskError with its traceback, `SystemExit` included (Django's ImmediateBackend
records any BaseException), and the worker goes on. Two things propagate instead:
the CancelledError of the worker's shutdown (the job is handed back), and a
KeyboardInterrupt in a worker that leaves SIGINT to Python (`drain()`), where it
may be the user's Ctrl-C, as Django's ImmediateBackend lets it through.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from arq.worker import Retry
from django.db import close_old_connections
from django.tasks.base import TaskResultStatus
from django.tasks.exceptions import InvalidTask
from django.tasks.signals import task_started
from django.utils import timezone

from jobs import records, registry, serialization, tracing
from jobs.exceptions import (
    AttemptsExhausted,
    JobCancelled,
    JobNotRunnable,
    JobsError,
    SerializationError,
)
from jobs.failures import capture, entry_of
from jobs.records import Record
from jobs.redis.scripts import now_ms
from jobs.signals import send, task_retried
from jobs.task import RETRY_BACKOFF_MAX, JobResult, JobsTask, JobsTaskContext
from jobs.worker.progress import ProgressReporter
from jobs.worker.threads import Threads

if TYPE_CHECKING:
    from jobs.backend import JobsBackend
    from jobs.redis.batching import CommandBatcher
    from jobs.worker.processes import Processes

logger = logging.getLogger("jobs.worker")

PLAIN = (str, int, float, bool, type(None))
NO_VALUE = object()  # ended() without a return value (failed, or to retry)


@dataclass(slots=True)  # not frozen, as JobPayload (made for every job claimed)
class Claimed:
    """A job handed to this worker by the claim script."""

    id: str
    payload: bytes | None
    attempt: int  # 1 for the first run; 0: the job expired; -1: it was aborted
    queue_key: str  # the sorted set it was claimed from (see keys.queue_key)
    job: serialization.JobPayload | None = None  # decoded, when it could be
    error: JobsError | None = None  # why it could not
    wake_key: str = ""  # its queue's wake list

    @classmethod
    def decoded(
        cls,
        id: str,
        payload: bytes | None,
        attempt: int,
        queue_key: str,
        wake_key: str = "",
    ) -> Claimed:
        """Decode the payload once, keeping the refusal if it is not a valid job."""
        try:
            job = serialization.JobPayload.decode(payload) if payload else None
        except SerializationError as e:
            return cls(id, payload, attempt, queue_key, None, e, wake_key)
        except Exception as e:  # whatever else a payload makes decoding raise
            error = SerializationError(f"refused a job that cannot be decoded: {e!r}")
            return cls(id, payload, attempt, queue_key, None, error, wake_key)
        return cls(id, payload, attempt, queue_key, job, None, wake_key)

    @property
    def task_path(self) -> str:
        return self.job.task_path if self.job is not None else "-"


@dataclass(slots=True)
class Outcome:
    """What the worker must write back for one attempt."""

    record: Record
    retry_at_ms: int | None = None  # set: run again then; None: finished
    result: JobResult | None = None
    error: BaseException | None = None  # what the attempt failed with
    # A finished run's enqueue, start and finish, which its record's stamps
    # hold: arq's result record takes its ms from them (records.arq_result).
    times: records.Times | None = None


async def _no_write(record: Record) -> None:
    """Write nothing: the worker sets Runtime.mark_running when it starts."""


@dataclass(slots=True)
class Runtime:
    """What executing a job needs from its worker."""

    backend: JobsBackend
    worker_id: str
    threads: Threads  # where plain functions run
    processes: Processes | None = None  # or there, with `--pool processes`
    # The awaitable writer of RUNNING records, set once the worker has a batcher.
    mark_running: Callable[[Record], Awaitable[None]] = field(default=_no_write)
    cancelling: set[str] = field(default_factory=set)  # ids to record as cancelled
    batcher: CommandBatcher | None = None  # the worker's ordered writes
    # A worker handling SIGINT itself never sees the user's Ctrl-C as a
    # KeyboardInterrupt: one raised in a job is the task's, and its failure.
    records_interrupts: bool = True


def _ms_to_dt(ms: int | None) -> datetime | None:
    """A payload's ms as Django hands datetimes to user code (see for_user())."""
    if ms is None:
        return None
    return records.for_user(datetime.fromtimestamp(ms / 1000, tz=UTC))


def set_fields(result: JobResult, **changes: Any) -> None:
    """Change fields of a (frozen) JobResult in place."""
    for name, value in changes.items():
        object.__setattr__(result, name, value)


def build_result(
    claimed: Claimed, payload: serialization.JobPayload, task: JobsTask
) -> JobResult:
    run_after = _ms_to_dt(payload.run_after_ms)
    if (
        run_after is not None
        or payload.queue_name != task.queue_name
        or payload.priority != task.priority
    ):
        task = task.using(
            queue_name=payload.queue_name,
            run_after=run_after,
            priority=payload.priority,
        )
    return JobResult(
        task=task,
        id=claimed.id,
        status=TaskResultStatus.READY,
        enqueued_at=_ms_to_dt(payload.enqueued_ms),
        started_at=None,
        finished_at=None,
        last_attempted_at=None,
        args=payload.args,
        kwargs=payload.kwargs,
        backend=payload.backend,
        errors=[],
        worker_ids=[],
        meta=payload.meta,
    )


async def _restore_history(rt: Runtime, result: JobResult) -> None:
    """Carry errors, workers and the first start over from earlier attempts."""
    record = await rt.backend.results.aget(result.id)
    if record is None:
        return
    earlier = JobResult.from_record(record, cast(JobsTask, result.task))
    set_fields(
        result,
        started_at=earlier.started_at,
        errors=list(earlier.errors),
        worker_ids=list(earlier.worker_ids),
    )


def _max_attempts(rt: Runtime, task: JobsTask) -> int:
    return task.max_attempts or rt.backend.config.max_attempts


def _timeout(rt: Runtime, task: JobsTask) -> float | None:
    return task.timeout or rt.backend.config.timeout


def run_sync(func: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
    # As Django does around a request: drop connections that are broken or past
    # CONN_MAX_AGE before the job, and after it.
    close_old_connections()
    try:
        return func(*args, **kwargs)
    finally:
        close_old_connections()


async def call_task(rt: Runtime, result: JobResult, running: Record) -> Any:
    task = cast(JobsTask, result.task)
    args = list(result.args)
    if task.takes_context:
        reporter = ProgressReporter(rt.backend, running, rt.batcher)
        args.insert(0, JobsTaskContext(task_result=result, reporter=reporter))
    timeout = _timeout(rt, task)
    try:
        if not inspect.iscoroutinefunction(task.func):
            if rt.processes is not None and not task.takes_context:
                return await rt.processes.call(
                    task.module_path, args, result.kwargs, timeout
                )
            call = functools.partial(run_sync, task.func, args, result.kwargs)
            return await rt.threads.call(result.id, call, timeout)
        if timeout is None:  # no timer to arm and reschedule for the common case
            return await task.func(*args, **result.kwargs)
        async with asyncio.timeout(timeout):
            return await task.func(*args, **result.kwargs)
    except TimeoutError as exc:
        # asyncio's own is bare (TimeoutError() from a CancelledError): say whose
        # time ran out, as Celery's TimeLimitExceeded does. A task's own
        # TimeoutError is its failure, left as it is.
        if timeout is None or not isinstance(exc.__cause__, asyncio.CancelledError):
            raise
        raise TimeoutError(
            f"Task {task.module_path} ran past its timeout of {timeout:g} s."
        ) from None


def _retry_delay(task: JobsTask, attempt: int, exc: BaseException) -> float:
    if isinstance(exc, Retry) and exc.defer_score is not None:
        return float(exc.defer_score) / 1000
    delay = min(task.retry_backoff * 2.0 ** (attempt - 1), RETRY_BACKOFF_MAX)
    return delay / 2 + random.uniform(0, delay / 2)  # jitter spreads a retry storm


def _error_of(exc: BaseException) -> BaseException:
    """The attempt's error: for a Retry raised from one (Celery's self.retry(exc=)
    and autoretry_for), that one, not '<Retry defer 0.5s>'."""
    if isinstance(exc, Retry) and exc.__cause__ is not None:
        return exc.__cause__
    return exc


def _will_retry(rt: Runtime, task: JobsTask, attempt: int, exc: BaseException) -> bool:
    if attempt >= _max_attempts(rt, task):
        return False
    return isinstance(exc, Retry) or isinstance(exc, task.retry_on)


async def execute(rt: Runtime, claimed: Claimed) -> Outcome:
    """Run one attempt of a claimed job and return what to record."""
    result = await start(rt, claimed)
    task = cast(JobsTask, result.task)
    running = result.to_record()
    await rt.mark_running(running)
    task_started.send(type(rt.backend), task_result=result)
    try:
        with tracing.run_span(result):
            value = returnable(await call_task(rt, result, running))
    except BaseException as exc:
        if _cancelled_by_backend(rt, result.id, exc):
            error = JobCancelled("The job was cancelled while it ran.")
            result.errors.append(capture(error))
            return ended(result, running, TaskResultStatus.FAILED, error=error)
        if _stops_the_worker(rt, exc):
            raise
        result.errors.append(capture(_error_of(exc)))
        if _will_retry(rt, task, claimed.attempt, exc):
            delay = _retry_delay(task, claimed.attempt, exc)
            logger.warning(
                "job %s %s attempt %d failed: %r; retrying in %.1f s "
                "(attempt %d of %d)",
                *(result.id, task.module_path, claimed.attempt, _error_of(exc), delay),
                *(claimed.attempt + 1, _max_attempts(rt, task)),
            )
            named = {"task_result": result, "exception": exc, "delay": delay}
            send(task_retried, type(rt.backend), **named)
            return ended(
                result, running, TaskResultStatus.READY, retry_in=delay, error=exc
            )
        # One line here; django.tasks logs the traceback at ERROR (task_finished).
        logger.warning(
            "job %s %s attempt %d failed: %r; recorded FAILED",
            *(result.id, task.module_path, claimed.attempt, exc),
        )
        return ended(result, running, TaskResultStatus.FAILED, error=exc)
    object.__setattr__(result, "_return_value", value)
    return ended(result, running, TaskResultStatus.SUCCESSFUL, return_value=value)


def returnable(value: Any) -> Any:
    """The return value as a reader will see it (tuples become lists).

    Raise TypeError, as Django records for a value it cannot store, when it is
    not JSON.
    """
    try:
        serialization.check_json(value, "the return value")
    except SerializationError as e:
        raise TypeError(*e.args) from None
    if not isinstance(value, PLAIN):
        value = serialization.loads(serialization.dumps(value))
    return value


def _cancelled_by_backend(rt: Runtime, job_id: str, exc: BaseException) -> bool:
    """Whether `exc` is backend.cancel() stopping the job (then forget the cancel)."""
    if not isinstance(exc, asyncio.CancelledError) or job_id not in rt.cancelling:
        return False
    rt.cancelling.discard(job_id)
    current = asyncio.current_task()
    if current is not None:
        current.uncancel()
    return True


def _stops_the_worker(rt: Runtime, exc: BaseException) -> bool:
    """Whether `exc` is the worker stopping rather than the task failing."""
    if isinstance(exc, asyncio.CancelledError):
        # Shutdown cancels the job's asyncio task; a CancelledError the task
        # raised of its own (from a future cancelled elsewhere) is its failure.
        current = asyncio.current_task()
        return current is not None and current.cancelling() > 0
    return isinstance(exc, KeyboardInterrupt) and not rt.records_interrupts


async def start(rt: Runtime, claimed: Claimed) -> JobResult:
    """Decode a claimed job into its RUNNING result, or raise JobNotRunnable & co."""
    if claimed.job is None:
        raise claimed.error or SerializationError("refused an empty job")
    payload = claimed.job
    task = registry.get(payload.task_path)
    if payload.backend != rt.backend.alias:
        raise JobNotRunnable(
            f"The job was queued for the backend {payload.backend!r}; this worker "
            f"runs {rt.backend.alias!r} (give each backend a Redis of its own)."
        )
    try:
        result = build_result(claimed, payload, task)
    except (InvalidTask, ValueError, OverflowError, OSError) as e:
        raise JobNotRunnable(f"The job cannot run as queued: {e}") from e
    if claimed.attempt > 1:
        await _restore_history(rt, result)
    started = timezone.now()
    set_fields(
        result,
        status=TaskResultStatus.RUNNING,
        started_at=result.started_at or started,
        last_attempted_at=started,
    )
    result.worker_ids.append(rt.worker_id)
    if claimed.attempt > _max_attempts(rt, task):
        raise AttemptsExhausted(
            f"Gave up after {claimed.attempt - 1} attempts that never finished: "
            "the worker running them stopped (killed, out of memory?)."
        )
    return result


def ended(
    result: JobResult,
    running: Record,
    status: TaskResultStatus,
    *,
    retry_in: float | None = None,
    return_value: Any = NO_VALUE,
    error: BaseException | None = None,
) -> Outcome:
    """The outcome of a run that ended with `status` (READY: to be retried)."""
    finished_at = None if status == TaskResultStatus.READY else timezone.now()
    set_fields(
        result, status=status, finished_at=finished_at, progress=running.get("progress")
    )
    # The RUNNING record already holds everything else, serialized.
    record: Record = {
        **running,
        "status": str(status),
        "finished_at": records.stamp(finished_at),
    }
    if return_value is not NO_VALUE:
        record["return_value"] = return_value
    if len(result.errors) != len(running["errors"]):
        record["errors"] = [entry_of(e) for e in result.errors]
    retry_at = None if retry_in is None else now_ms() + int(retry_in * 1000)
    begun, started = result.enqueued_at, result.last_attempted_at
    times = (begun, started, finished_at) if begun and started and finished_at else None
    return Outcome(record, retry_at, result, error, times)


__all__ = [
    "Claimed",
    "Outcome",
    "Runtime",
    "execute",
]
