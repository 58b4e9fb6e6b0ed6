"""The running job's id and task on every log record, for structured logs.

    LOGGING = {
        "filters": {"job": {"()": "jobs.logs.JobContextFilter"}},
        "formatters": {"plain": {"format": "%(job_id)s %(task)s %(message)s"}},
        ...
    }

Records logged while a job runs (by the worker or by the task itself, in a
coroutine or in the thread pool) get `job_id` and `task`; others get "-".
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

current_job: ContextVar[tuple[str, str] | None] = ContextVar(
    "jobs_current_job", default=None
)


class JobContextFilter(logging.Filter):
    """Add `job_id` and `task` attributes to every record (never filters out)."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = current_job.get()
        record.job_id, record.task = job if job is not None else ("-", "-")
        return True
