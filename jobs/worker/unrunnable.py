"""The FAILED records of jobs that could not run (a payload refused, a task
not registered, a job expired or for another backend) and of jobs whose record
could not be stored: built here, written by the worker's Recorder.
"""

from __future__ import annotations

from typing import cast

from django.tasks.base import TaskResultStatus
from django.utils import timezone

from jobs import records, registry
from jobs.exceptions import (
    JobNotRunnable,
    JobsError,
    PayloadTooLarge,
    SerializationError,
    TaskNotRegistered,
)
from jobs.failures import capture
from jobs.records import Record
from jobs.task import JobResult
from jobs.worker.execution import Claimed, Outcome, Runtime, set_fields

NOT_RUNNABLE = (SerializationError, PayloadTooLarge, TaskNotRegistered, JobNotRunnable)


def failed_record(
    rt: Runtime, claimed: Claimed, exc: BaseException, previous: Record | None
) -> Record:
    """A FAILED record for a job that could not run (bad payload, unknown task...)."""
    now = records.now_stamp()
    job = claimed.job
    record: Record = {
        "id": claimed.id,
        "task": "",
        "backend": rt.backend.alias,
        "args": [],
        "kwargs": {},
        "status": "READY",
        "enqueued_at": None,
        "started_at": None,
        "finished_at": None,
        "last_attempted_at": now,
        "errors": [],
        "worker_ids": [],
    }
    if previous is not None:
        record.update(previous)
    if job is not None:
        record["task"], record["args"] = job.task_path, job.args
        record["kwargs"] = job.kwargs
        record.setdefault("queue", job.queue_name)
    record["last_attempted_at"] = now
    record["worker_ids"] = [*record["worker_ids"], rt.worker_id]
    return records.failed(record, exc, at=now)


def failed_without_running(
    rt: Runtime, claimed: Claimed, exc: BaseException, previous: Record | None
) -> Outcome:
    """The FAILED outcome of a job that could not run, with its TaskResult when
    its task is registered (so task_failed and task_finished are sent for it)."""
    record = failed_record(rt, claimed, exc, previous)
    return Outcome(record, result=result_of(record), error=exc)


def result_of(record: Record) -> JobResult | None:
    """The TaskResult of `record`; None when no registered task names it (an
    unknown task, a payload refused before its task was read)."""
    try:
        return JobResult.from_record(record, registry.get(record["task"]))
    except Exception:  # a garbage record: the failure is recorded all the same
        return None


def unrecordable(
    rt: Runtime, claimed: Claimed, outcome: Outcome, error: JobsError, bare: bool
) -> Outcome:
    """The FAILED outcome of one whose record could not be stored, with `error`.

    The record keeps all it can: everything but the return value and progress,
    or when `bare`, only who the job is (not even its arguments).
    """
    now = timezone.now()
    if bare:
        record = failed_record(rt, claimed, error, None)
        record["args"], record["kwargs"] = [], {}
        return Outcome(record, result=outcome.result, error=outcome.error)
    kept = {
        name: value
        for name, value in outcome.record.items()
        if name not in ("return_value", "progress")
    }
    record = records.failed(cast(Record, kept), error, at=records.stamp(now))
    result = outcome.result
    if result is not None:
        set_fields(
            result, status=TaskResultStatus.FAILED, finished_at=now, progress=None
        )
        result.errors.append(capture(error))
    return Outcome(record, result=result, error=error)
