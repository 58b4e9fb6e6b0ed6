"""The result record: one job's state, as JSON, in the results cache.

Every writer (enqueue, the worker, cancel, progress) and every reader (results,
waiting, the dashboard) shares this shape. Converting a record to and from
Django's `TaskResult` lives beside the result type (`jobs.task`), so the
storage code never needs the domain classes.
"""

from __future__ import annotations

import traceback
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict, overload

from django.conf import settings
from django.utils import timezone

from jobs import serialization
from jobs.exceptions import SerializationError

FINISHED = frozenset({"SUCCESSFUL", "FAILED"})


class ErrorEntry(TypedDict):
    """One failed attempt: Django's TaskError fields plus the message."""

    exception_class_path: str
    traceback: str
    message: str


class Progress(TypedDict):
    """What a running task last reported (see JobsTaskContext.set_progress)."""

    done: float
    total: float | None
    message: str
    updated_at: str


class Record(TypedDict):
    """A job's result record. Datetimes are ISO strings (aware, UTC offsets)."""

    id: str
    status: str  # a TaskResultStatus value
    task: str  # the task's module path ("" when the payload was unreadable)
    backend: str
    args: list[Any]
    kwargs: dict[str, Any]
    enqueued_at: str | None
    started_at: str | None
    finished_at: str | None
    last_attempted_at: str | None
    errors: list[ErrorEntry]
    worker_ids: list[str]
    queue: NotRequired[str]
    priority: NotRequired[int]
    run_after: NotRequired[str | None]
    expires_at: NotRequired[str]  # set when the task has its own `expires`
    return_value: NotRequired[Any]
    meta: NotRequired[dict[str, Any] | None]
    progress: NotRequired[Progress | None]


@overload
def stamp(value: datetime) -> str: ...
@overload
def stamp(value: None) -> None: ...
@overload
def stamp(value: datetime | None) -> str | None: ...
def stamp(value: datetime | None) -> str | None:
    """A datetime as records hold it: ISO, aware UTC (naive is TIME_ZONE time)."""
    if value is None:
        return None
    if value.tzinfo is UTC:  # the common case, costs nothing more
        return value.isoformat()
    if value.tzinfo is None:
        value = timezone.make_aware(value)
    return value.astimezone(UTC).isoformat()


def now_stamp() -> str:
    return datetime.now(UTC).isoformat()


def instant(value: str | None) -> datetime | None:
    """A record's datetime as Django hands datetimes to user code."""
    return None if value is None else for_user(datetime.fromisoformat(value))


def for_user(value: datetime) -> datetime:
    """`value` by Django's convention: aware UTC when USE_TZ is on, else naive
    TIME_ZONE time, so that it compares with `timezone.now()` and model fields
    (records written before this rule may hold naive TIME_ZONE times)."""
    if settings.USE_TZ:
        if value.tzinfo is UTC:  # what records and the worker's clock give
            return value
        if value.tzinfo is None:
            value = timezone.make_aware(value)
        return value.astimezone(UTC)
    if value.tzinfo is None:
        return value
    return timezone.make_naive(value)


def error_entry(exc: BaseException) -> ErrorEntry:
    """Return the error entry of `exc`, its traceback included."""
    cls = type(exc)
    try:
        message = str(exc)
    except Exception:  # an exception's own __str__ may fail: still record it
        message = f"<{cls.__qualname__}: str() failed>"
    return {
        "exception_class_path": f"{cls.__module__}.{cls.__qualname__}",
        "traceback": "".join(traceback.format_exception(exc)),
        "message": message,
    }


def failed(record: Record, exc: BaseException, *, at: str) -> Record:
    """Return `record` ended FAILED at `at` (ISO) with `exc` as its last error."""
    return {
        **record,
        "status": "FAILED",
        "finished_at": at,
        "errors": [*record.get("errors", []), error_entry(exc)],
    }


# A finished attempt's enqueue, last start and finish, as the worker holds them.
Times = tuple[datetime, datetime, datetime]


def arq_result(
    record: Record, attempt: int, queue_key: str, times: Times | None = None
) -> bytes:
    """arq's result record of a finished job (arq's field names, JSON), as
    arq's `Job.result()` / `result_info()` read it with a JSON deserializer.

    A failure's value is "<exception class path>: <message>" (JSON carries no
    exception), its class path also under "e" for `jobs.arq.deserialize`.
    `times`, when the caller has them, are the datetimes the record's
    enqueued_at, last_attempted_at and finished_at were stamped from: the same
    ms without parsing the stamps back (the worker's hot path).
    """
    if times is None:
        enqueued = _ms(record["enqueued_at"])
        started = _ms(record["last_attempted_at"])
        finished = _ms(record["finished_at"]) or 0
    else:
        enqueued, started, finished = map(epoch_ms, times)
    ok = record["status"] == "SUCCESSFUL"
    value, error = record.get("return_value"), None
    if not ok and record["errors"]:
        error = record["errors"][-1]["exception_class_path"]
        value = f"{error}: {record['errors'][-1]['message']}"
    # What serialization.dumps() writes for arq's fields in this order, its
    # parts written without an encoder call each (the worker writes one a job).
    raw = _ARQ_RECORD % (
        *(attempt, _name(record["task"]), _json(record["args"])),
        *(_json(record["kwargs"]), enqueued or finished, b"true" if ok else b"false"),
        *(_json(value), started or finished, finished, _name(queue_key)),
        _name(record["id"], keep=False),
    )
    if error is not None:
        raw += b',"e":' + _name(error, keep=False)
    return raw + b"}"


_ARQ_RECORD = (
    b'{"t":%d,"f":%b,"a":%b,"k":%b,"et":%d,"s":%b,"r":%b,"st":%d,"ft":%d,"q":%b,"id":%b'
)
_NAMES: dict[str, bytes] = {}  # task paths and queue keys as JSON
NAMES_KEPT = 1000


def _name(text: str, *, keep: bool = True) -> bytes:
    """A string as JSON; task paths and queue keys (`keep`) remembered."""
    raw = _NAMES.get(text) if keep else None
    if raw is not None:
        return raw
    if text.isalnum():  # a job id: nothing JSON escapes
        return b'"' + text.encode() + b'"'
    raw = serialization.dumps(text)
    if keep and len(_NAMES) < NAMES_KEPT:
        _NAMES[text] = raw
    return raw


def _json(value: Any) -> bytes:
    """`value` as JSON; no arguments and no return value without the encoder."""
    if value is None:
        return b"null"
    if not value and type(value) in (list, dict):
        return b"[]" if type(value) is list else b"{}"
    return serialization.dumps(value)


def _ms(iso: str | None) -> int | None:
    return None if iso is None else int(datetime.fromisoformat(iso).timestamp() * 1000)


def epoch_ms(value: datetime) -> int:
    """`value` in ms since the epoch, as _ms() reads its stamp() (naive is
    TIME_ZONE time)."""
    if value.tzinfo is None:
        value = timezone.make_aware(value)
    return int(value.timestamp() * 1000)


def encode(record: Record) -> bytes:
    return serialization.dumps(record)


def decode(raw: bytes | str) -> Record:
    """Parse a record read from Redis or a cache, refusing anything else."""
    record = serialization.loads(raw)
    if not is_record(record):
        raise SerializationError("refused a malformed result record")
    return record  # type: ignore[no-any-return]


def is_record(value: Any) -> bool:
    """Whether `value` has a record's identifying fields."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("id"), str)
        and isinstance(value.get("status"), str)
    )
