"""What cancelling a job writes (pure): the record of a job cancelled before it
ran, and the arguments of the scripts that take it off its queue or workflow."""

from __future__ import annotations

import time
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from jobs import records
from jobs.exceptions import JobCancelled
from jobs.records import Record, arq_result
from jobs.redis.keys import (
    ARQ_RESULT_KEY_PREFIX,
    DEFAULT_QUEUE,
    WORKFLOW_KEY_PREFIX,
    queue_key,
)

if TYPE_CHECKING:
    from jobs.conf import JobsOptions
    from jobs.results import ResultStore


class Cancel(IntEnum):
    """What cancelling a job did (the CANCEL script's answer)."""

    NOTHING = 0  # finished, or unknown
    DEQUEUED = 1  # was queued: recorded FAILED (JobCancelled), never runs
    SIGNALLED = 2  # is running: its worker was told to cancel it


def cancel_args(
    store: ResultStore, config: JobsOptions, cancelled: Record
) -> tuple[list[str], list[Any]]:
    """The CANCEL script's keys and args for a job, `cancelled` its record if
    the job is still queued."""
    result_key, encoded = store.script_args(cancelled)
    queue = queue_key(
        cancelled.get("queue", DEFAULT_QUEUE), int(cancelled.get("priority", 0))
    )
    keys = [queue, result_key, ""]
    now_ms = int(time.time() * 1000)
    args = [cancelled["id"], now_ms, encoded, store.ttl_ms, b""]
    if config.arq_results:
        keys[2] = ARQ_RESULT_KEY_PREFIX + cancelled["id"]
        args[4] = arq_result(cancelled, len(cancelled["worker_ids"]), queue)
    return keys, args


def cancelled_record(record: Record) -> Record:
    """The record of a job cancelled before it ran."""
    error = JobCancelled("The job was cancelled before it ran.")
    return records.failed(record, error, at=records.now_stamp())


def workflow_step_of(record: Record) -> tuple[list[str], list[Any]] | None:
    """STEP_FAILED's keys and args for a workflow's step cancelled while queued
    (it never reaches the worker's FINISH_STEP), else None."""
    step = (record.get("meta") or {}).get("workflow")
    if not isinstance(step, dict):
        return None
    now_ms = int(time.time() * 1000)
    keys = [WORKFLOW_KEY_PREFIX + step["id"]]
    return keys, [record["id"], now_ms, step["id"], step["stage"], step["index"]]
