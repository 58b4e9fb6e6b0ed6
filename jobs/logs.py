"""The running job's id and task on every log record, for structured logs.

    LOGGING = {
        "filters": {"job": {"()": "jobs.logs.JobContextFilter"}},
        "formatters": {"plain": {"format": "%(job_id)s %(task)s %(message)s"}},
        ...
    }

Records logged while a job runs (by the worker or by the task itself, in a
coroutine or in the thread pool) get `job_id` and `task`; others get "-".
`JsonFormatter` writes one JSON object per line with both (`jobs_worker
--log-format json` uses it), for log pipelines that index fields.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

current_job: ContextVar[tuple[str, str] | None] = ContextVar(
    "jobs_current_job", default=None
)


class JobContextFilter(logging.Filter):
    """Add `job_id` and `task` attributes to every record (never filters out)."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = current_job.get()
        record.job_id, record.task = job if job is not None else ("-", "-")
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object a line: time, level, logger, message, job_id, task, and
    exc_info when there is a traceback. Needs no filter: the job is read here."""

    FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
    RENAMED = {"asctime": "time", "levelname": "level", "name": "logger"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if not args:
            kwargs.setdefault("fmt", self.FIELDS)
        kwargs.setdefault("rename_fields", self.RENAMED)
        super().__init__(*args, **kwargs)

    def add_fields(
        self,
        log_data: dict[str, Any],
        record: logging.LogRecord,
        message_dict: dict[str, Any],
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        if not hasattr(record, "job_id"):
            JobContextFilter().filter(record)
        log_data["job_id"] = getattr(record, "job_id", "-")
        log_data["task"] = getattr(record, "task", "-")
