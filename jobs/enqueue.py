"""A job made ready for the ENQUEUE script: checked and serialized, no Redis.

Everything that can refuse a job refuses it here, before anything is written:
arguments that are not JSON, a payload over MAX_PAYLOAD. The backend then
queues it (and, on the queue's Redis, its READY record) in one round trip.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.tasks.base import TaskResultStatus
from django.tasks.exceptions import InvalidTask
from django.utils import timezone

from jobs import serialization
from jobs.exceptions import BadArguments, PayloadTooLarge
from jobs.records import Record, for_user
from jobs.redis.keys import (
    JOB_KEY_PREFIX,
    LOCK_KEY_PREFIX,
    PRIORITIES_KEY_PREFIX,
    UNIQUE_KEY_PREFIX,
    UNIQUE_TTL,
    WAKE_KEY_PREFIX,
    WAKE_TOKENS_MAX,
    queue_key,
)
from jobs.task import JobResult, JobsTask

if TYPE_CHECKING:
    from jobs.conf import JobsOptions
    from jobs.results import ResultStore


@dataclass(frozen=True, slots=True)
class Prepared:
    """A checked job, ready for the enqueue script."""

    result: JobResult
    keys: list[str]
    args: list[Any]
    record: Record


def prepare(
    task: JobsTask,
    args: list[Any],
    kwargs: dict[str, Any],
    *,
    alias: str,
    config: JobsOptions,
    store: ResultStore,
    job_id: str | None = None,
    meta: dict[str, Any] | None = None,
    reserve: int | None = None,
) -> Prepared:
    """Check and serialize a job of the backend `alias` (its task validated).

    A `job_id` stays taken `reserve` seconds: by default as long as the job's
    READY record lives (RESULT_TTL, at most a day), so an enqueue that finds
    the id taken always finds its result too.
    """
    serialization.check_json(args, "args")
    serialization.check_json(kwargs, "kwargs")
    check_call(task, args, kwargs)
    now = datetime.now(UTC)
    result = new_result(task, args, kwargs, alias, job_id or new_id(), now, meta)
    payload = encode_payload(result, now, config.max_payload)
    score, due_ms = due(task.run_after, now)
    expires_ms = expiry_ms(task, due_ms, config)
    record = result.to_record()
    if task.expires is not None:  # said in the error if it passes (JobExpired)
        record["expires_at"] = datetime.fromtimestamp(
            expires_ms / 1000, UTC
        ).isoformat()
    result_key, encoded = store.script_args(record)
    queue = task.queue_name
    priority = int(task.priority)
    keys = [
        JOB_KEY_PREFIX + result.id,
        queue_key(queue, priority),
        WAKE_KEY_PREFIX + queue,
        UNIQUE_KEY_PREFIX + result.id,
        result_key,
        PRIORITIES_KEY_PREFIX + queue,
    ]
    reserve_ms = 1000 * (reserve or min(UNIQUE_TTL, store.ttl))
    if task.unique:  # after the counting keys' slots (see counted())
        keys += ["", "", lock_key(task, args, kwargs)]
    argv = [
        result.id,
        payload,
        repr(round(score, 3)),
        expires_ms - int(now.timestamp() * 1000),  # the job's own TTL, ms
        reserve_ms if job_id else "",
        encoded,
        store.ttl_ms,
        WAKE_TOKENS_MAX,
        priority or "",
    ]
    return Prepared(result=result, keys=keys, args=argv, record=record)


def new_result(
    task: JobsTask,
    args: list[Any],
    kwargs: dict[str, Any],
    alias: str,
    job_id: str,
    now: datetime,
    meta: dict[str, Any] | None,
) -> JobResult:
    """The READY result of a job enqueued `now`."""
    return JobResult(
        task=task,
        id=job_id,
        status=TaskResultStatus.READY,
        enqueued_at=for_user(now),
        started_at=None,
        finished_at=None,
        last_attempted_at=None,
        args=args,
        kwargs=kwargs,
        backend=alias,
        errors=[],
        worker_ids=[],
        meta=meta,
    )


def counted(job: Prepared, hash_key: str, unwritten_key: str, field: str) -> Prepared:
    """`job`, counted by the script that queues it, so the count and the job
    are written together: `field` of the hash `hash_key` goes up by one (the
    hash's `epoch` set to now if it starts), and the new total is noted under
    `field` in the sorted set `unwritten_key`."""
    lock = job.keys[8:]  # a unique task's lock, after the counting keys
    keys = [*job.keys[:6], hash_key, unwritten_key, *lock]
    epoch = time.time_ns() // 1000
    return replace(job, keys=keys, args=[*job.args[:9], field, epoch])


def check_call(task: JobsTask, args: list[Any], kwargs: dict[str, Any]) -> None:
    """Refuse arguments the task's function cannot take (as a call would), at
    enqueue rather than as the job's TypeError in a worker."""
    problem = call_problem(task.func, task.takes_context, len(args), tuple(kwargs))
    if problem:
        raise BadArguments(
            f"{task.module_path} cannot be called with these arguments: {problem}."
        )


@lru_cache(maxsize=4096)
def call_problem(func: Any, context: bool, count: int, names: tuple[str, ...]) -> str:
    # Whether a call binds depends only on how many positional arguments and
    # which keywords it has: every enqueue of a task shares a few answers.
    signature = inspect.signature(func)
    params = list(signature.parameters.values())[1 if context else 0 :]
    try:
        signature.replace(parameters=params).bind(*range(count), **dict.fromkeys(names))
    except TypeError as e:
        return str(e)
    return ""


def lock_key(task: JobsTask, args: list[Any], kwargs: dict[str, Any]) -> str:
    """The key a `unique` job holds: its task's, and its own or its arguments'."""
    unique = task.unique
    if unique is True:
        # Canonical JSON, so {"a": 1, "b": 2} and {"b": 2, "a": 1} are one job.
        canonical = json.dumps([args, kwargs], sort_keys=True, separators=(",", ":"))
        unique = "args:" + hashlib.sha256(canonical.encode()).hexdigest()
    return f"{LOCK_KEY_PREFIX}{task.module_path}:{unique}"


def expiry_ms(task: JobsTask, due_ms: int, config: JobsOptions) -> int:
    """When the job expires (ms): its key goes, and a worker claiming it records
    it FAILED (JobExpired) instead of running it."""
    expires = task.expires
    if isinstance(expires, datetime):
        if not timezone.is_aware(expires):
            expires = timezone.make_aware(expires)  # USE_TZ off: TIME_ZONE time
        at_ms = int(expires.timestamp() * 1000)
        if at_ms <= due_ms:
            raise InvalidTask(
                f"expires ({expires.isoformat()}) is not after the job is due: "
                "it could never run."
            )
        return at_ms
    return due_ms + int((config.expires if expires is None else expires) * 1000)


ENTROPY_CHUNK = 4096  # bytes of os.urandom read at once: 256 ids


class _Entropy(threading.local):
    """Each thread's unread os.urandom bytes."""

    buffer = b""
    at = 0


_entropy = _Entropy()


def _forget_entropy() -> None:
    global _entropy
    _entropy = _Entropy()  # a forked child must not hand out its parent's ids


os.register_at_fork(after_in_child=_forget_entropy)


def new_id() -> str:
    """A random job id, as `uuid.uuid4().hex` makes it, from os.urandom read 4 KB at
    a time: uuid4 makes a system call and a UUID object for each (13 µs here, a
    tenth of an enqueue)."""
    entropy = _entropy
    at = entropy.at
    if at >= len(entropy.buffer):
        entropy.buffer, at = os.urandom(ENTROPY_CHUNK), 0
    entropy.at = at + 16
    raw = bytearray(entropy.buffer[at : at + 16])
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # variant RFC 4122
    return raw.hex()


def due(run_after: datetime | None, now: datetime) -> tuple[float, int]:
    """The job's score in its queue and the ms it is due at."""
    # Scores are ms with a µs fraction, so jobs queued in the same millisecond
    # keep their order (a sorted set breaks ties by member).
    if run_after is not None and run_after.tzinfo is None:
        run_after = timezone.make_aware(run_after)  # USE_TZ off: TIME_ZONE time
    if run_after is not None and run_after > now:
        score = run_after.timestamp() * 1000
        return score, int(score)
    score = now.timestamp() * 1000
    return score, int(score)


def encode_payload(result: JobResult, now: datetime, max_payload: int) -> bytes:
    """The job as stored under arq:job:<id>; PayloadTooLarge over the limit."""
    task = result.task
    run_after = task.run_after
    if run_after is not None and run_after.tzinfo is None:
        run_after = timezone.make_aware(run_after)
    payload = serialization.JobPayload(
        task_path=task.module_path,
        args=result.args,
        kwargs=result.kwargs,
        enqueued_ms=int(now.timestamp() * 1000),
        queue_name=task.queue_name,
        backend=result.backend,
        run_after_ms=int(run_after.timestamp() * 1000) if run_after else None,
        meta=result.meta,
        priority=int(task.priority),
    ).encode()
    if len(payload) > max_payload:
        raise PayloadTooLarge(
            f"The job is {len(payload)} bytes, over MAX_PAYLOAD ({max_payload}). "
            "Pass a reference (a primary key, a file path) instead of the data."
        )
    return payload
