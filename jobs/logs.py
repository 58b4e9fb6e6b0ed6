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

current_job: ContextVar[tuple[str, str] | None] = ContextVar(
    "jobs_current_job", default=None
)


def add_job(record: logging.LogRecord) -> None:
    """Give `record` the running job's `job_id` and `task` ("-" outside a job)."""
    if not hasattr(record, "job_id"):
        job = current_job.get()
        record.job_id, record.task = job if job is not None else ("-", "-")


class JobContextFilter(logging.Filter):
    """Add `job_id` and `task` attributes to every record (never filters out)."""

    def filter(self, record: logging.LogRecord) -> bool:
        add_job(record)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, job_id, task, and
    exc_info when there is a traceback. Needs no filter: the job is read here.

    Arguments are python-json-logger's; it loads when a formatter is made, not
    in every process that imports this module.
    """

    FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(job_id)s %(task)s"
    RENAMED = {"asctime": "time", "levelname": "level", "name": "logger"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        from pythonjsonlogger.json import JsonFormatter as PythonJsonFormatter

        if not args:
            kwargs.setdefault("fmt", self.FIELDS)
        kwargs.setdefault("rename_fields", self.RENAMED)
        self.json = PythonJsonFormatter(*args, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        add_job(record)
        return self.json.format(record)
