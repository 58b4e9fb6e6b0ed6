"""JSON log lines with the running job's id and task (`jobs_worker --log-format
json`, or `{"()": "jobs.logs.JsonFormatter"}` in LOGGING)."""

from __future__ import annotations

import logging
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from jobs.logs import JobContextFilter


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
