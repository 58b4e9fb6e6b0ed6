"""Task errors: captured in the worker, re-raised where the result is awaited."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import NoReturn

from django.tasks.base import TaskError

from jobs.exceptions import RemoteTraceback, TaskFailed
from jobs.records import ErrorEntry, error_entry


@dataclass(frozen=True, slots=True, kw_only=True)
class JobTaskError(TaskError):  # type: ignore[misc]  # stubs: not frozen
    """Django's TaskError plus the exception's message, to rebuild it."""

    message: str = ""


def capture(exc: BaseException) -> JobTaskError:
    """Return the TaskError of `exc`, traceback included."""
    return JobTaskError(**error_entry(exc))


def entry_of(error: TaskError) -> ErrorEntry:
    """The record's error entry of a TaskError."""
    return {
        "exception_class_path": error.exception_class_path,
        "traceback": error.traceback,
        "message": getattr(error, "message", ""),
    }


# Where exceptions recorded by earlier versions live now: results keep the path
# they were recorded with for up to RESULT_TTL.
MOVED = {
    "jobs.execution.JobNotRunnable": "jobs.exceptions.JobNotRunnable",
    "jobs.execution.AttemptsExhausted": "jobs.exceptions.AttemptsExhausted",
}


def _loaded_exception_class(path: str) -> type[Exception] | None:
    """Find the class among modules already imported; never import on Redis' word."""
    path = MOVED.get(path, path)
    module_name, _, qualname = path.rpartition(".")
    obj: object = sys.modules.get(module_name)
    if obj is None:
        return None
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if isinstance(obj, type) and issubclass(obj, Exception):
        return obj
    return None


def raise_remote(error: TaskError) -> NoReturn:
    """Raise the task's exception (or TaskFailed), caused by the worker's traceback."""
    message = getattr(error, "message", "")
    remote = RemoteTraceback(error.traceback)
    cls = _loaded_exception_class(error.exception_class_path)
    exc: Exception | None = None
    if cls is not None:
        try:
            exc = cls(message)
        except Exception:
            exc = None
    if exc is None:
        exc = TaskFailed(
            f"{error.exception_class_path}: {message}",
            exception_class_path=error.exception_class_path,
        )
    raise exc from remote
