"""Task errors: captured in the worker, re-raised where the result is awaited."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from typing import Any, NoReturn

from django.tasks.base import TaskError

from jobs import serialization
from jobs.exceptions import JobCancelled, RemoteTraceback, TaskFailed
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


JOB_CANCELLED = f"{JobCancelled.__module__}.{JobCancelled.__qualname__}"

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


def rebuilt(path: str, message: str) -> Exception:
    """The task's exception (of a class already loaded here), else TaskFailed."""
    cls = _loaded_exception_class(path)
    if cls is not None:
        try:
            return cls(message)
        except Exception:
            pass
    return TaskFailed(f"{path}: {message}", exception_class_path=path)


def raise_remote(error: TaskError) -> NoReturn:
    """Raise the task's exception (or TaskFailed), caused by the worker's traceback."""
    message = getattr(error, "message", "")
    remote = RemoteTraceback(error.traceback)
    raise rebuilt(error.exception_class_path, message) from remote


def arq_dumps(data: dict[str, Any]) -> bytes:
    """A JSON `job_serializer` for arq's Worker: a failed job's exception is
    written as `records.arq_result` writes it ("<class path>: <message>", the
    path under "e"), so both kinds of worker leave the same arq result."""
    value = data.get("r")
    if isinstance(value, BaseException):
        path = class_path(value)
        if isinstance(value, asyncio.CancelledError):
            path = JOB_CANCELLED
        data = {**data, "r": f"{path}: {value}", "e": path}
    return serialization.dumps(data)


def class_path(exc: BaseException) -> str:
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}"


def arq_loads(raw: bytes) -> Any:
    """A JSON `job_deserializer` for arq's client that re-raises our failures.

    arq's `Job.result()` re-raises a failed job's value only when it is an
    exception, which JSON cannot carry: a failed result (see
    `records.arq_result`) comes back as the task's exception (of a class loaded
    here, else TaskFailed), and a cancelled job's as CancelledError, which is
    what arq's `Job.abort()` waits for. Nothing is ever unpickled.
    """
    data = serialization.loads(raw)
    path = data.get("e") if isinstance(data, dict) and data.get("s") is False else None
    if isinstance(path, str) and isinstance(data.get("r"), str):
        message = data["r"].removeprefix(f"{path}: ")
        cancelled = path == JOB_CANCELLED
        data["r"] = (
            asyncio.CancelledError(message) if cancelled else rebuilt(path, message)
        )
    return data
