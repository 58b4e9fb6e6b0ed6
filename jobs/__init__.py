"""An asyncio-native job runner for Django: Django's Tasks API over Redis, in arq's
wire format (docs/arq.md)."""

from __future__ import annotations

from jobs.exceptions import (
    BadArguments,
    EnqueueError,
    JobCancelled,
    JobExpired,
    JobsError,
    NotReplicated,
    PayloadTooLarge,
    QueueFull,
    QueueUnavailable,
    RemoteTraceback,
    ResultTimeout,
    ScheduleError,
    SerializationError,
    TaskFailed,
    TaskNotRegistered,
    WorkflowError,
)
from jobs.schedules.cron import crontab
from jobs.task import JobResult, JobsTask, JobsTaskContext
from jobs.transactions import aenqueue_on_commit, enqueue_on_commit
from jobs.workflowresults import WorkflowResult, aget_workflow, get_workflow
from jobs.workflows import chain, chord, group

__version__ = "0.1.0"

__all__ = [
    "BadArguments",
    "EnqueueError",
    "JobCancelled",
    "JobExpired",
    "JobResult",
    "JobsError",
    "JobsTask",
    "JobsTaskContext",
    "NotReplicated",
    "PayloadTooLarge",
    "QueueFull",
    "QueueUnavailable",
    "RemoteTraceback",
    "ResultTimeout",
    "ScheduleError",
    "SerializationError",
    "TaskFailed",
    "TaskNotRegistered",
    "WorkflowError",
    "WorkflowResult",
    "aenqueue_on_commit",
    "aget_workflow",
    "chain",
    "chord",
    "crontab",
    "enqueue_on_commit",
    "get_workflow",
    "group",
]
