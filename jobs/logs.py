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


class JobContextFilter(logging.Filter):
    """Add `job_id` and `task` attributes to every record (never filters out)."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = current_job.get()
        record.job_id, record.task = job if job is not None else ("-", "-")
        return True


def __getattr__(name: str) -> Any:
    # `jobs.logs.JsonFormatter` stays the name LOGGING configs use, but every
    # worker imports this module: python-json-logger loads only when asked for.
    if name == "JsonFormatter":
        from jobs.json_logs import JsonFormatter

        return JsonFormatter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
