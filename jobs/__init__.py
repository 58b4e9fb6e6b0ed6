"""An asyncio-native job runner for Django: Django's Tasks API on arq over Redis."""

from __future__ import annotations

from jobs.exceptions import (
    EnqueueError,
    JobCancelled,
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
)
from jobs.schedules.cron import crontab
from jobs.task import JobResult, JobsTask, JobsTaskContext
from jobs.transactions import aenqueue_on_commit, enqueue_on_commit

__version__ = "0.1.0"

__all__ = [
    "EnqueueError",
    "JobCancelled",
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
    "aenqueue_on_commit",
    "crontab",
    "enqueue_on_commit",
]
