"""Tasks used by the tests (listed in the test backend's IMPORTS)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from typing import Any

from arq.worker import Retry
from django.db import connection
from django.tasks import task

from jobs import JobsTaskContext

# Shared with the in-process worker: proof that jobs ran side by side.
sync_barrier = threading.Barrier(4, timeout=10)
seen: list[Any] = []  # what in-process jobs observed, in order


@task
def add(x: int, y: int) -> int:
    return x + y


@task
async def aadd(x: int, y: int) -> int:
    await asyncio.sleep(0)
    return x + y


# Workflows (tests/*/test_workflows.py). Runs are counted in Redis, as `counted`.


@task
def double(x: int) -> int:
    return x * 2


@task
def listed(*values: Any) -> list[Any]:
    return list(values)


@task
async def tally(values: list[int], key: str) -> int:
    """A chord's callback: count this run in Redis, return the values' sum."""
    client = _test_redis()
    client.incr(f"test:runs:{key}")
    client.rpush(f"test:tally:{key}", json.dumps(values))
    client.close()
    return sum(values)


@task(max_attempts=3, retry_backoff=0, retry_on=(ConnectionError,))
async def flaky_member(key: str, value: int) -> int:
    """Fail the first attempt (counted in Redis, across processes), then return."""
    client = _test_redis()
    attempt = client.incr(f"test:runs:{key}")
    client.close()
    if attempt < 2:
        raise ConnectionError(f"attempt {attempt} of {key} failed")
    return value


@task
async def member(key: str, value: int, seconds: float = 0.0) -> int:
    """Count this run in Redis, sleep, return `value`."""
    client = _test_redis()
    client.incr(f"test:runs:{key}")
    client.close()
    await asyncio.sleep(seconds)
    return value


@task
def boom(message: str = "boom") -> None:
    raise ValueError(message)


class CustomError(Exception):
    pass


@task
async def aboom() -> None:
    raise CustomError("custom failure")


@task(max_attempts=3, retry_backoff=0, retry_on=(ConnectionError,))
def flaky(key: str) -> int:
    """Fail until the third attempt; count attempts in Redis-free process memory."""
    seen.append(("flaky", key))
    attempts = sum(1 for s in seen if s == ("flaky", key))
    if attempts < 3:
        raise ConnectionError(f"attempt {attempts} failed")
    return attempts


@task(max_attempts=2, retry_backoff=0, retry_on=(KeyError,))
def wrong_error() -> None:
    raise ValueError("not retried: only KeyError is")


@task(max_attempts=4)
async def asks_retry(key: str) -> str:
    seen.append(("asks_retry", key))
    if sum(1 for s in seen if s == ("asks_retry", key)) < 2:
        raise Retry(defer=0.05)
    return "done"


@task(timeout=0.2)
async def slow_async(seconds: float = 5) -> None:
    await asyncio.sleep(seconds)


@task(timeout=0.2)
def slow_sync(seconds: float = 1) -> None:
    time.sleep(seconds)


@task
def sleeper(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@task
async def asleeper(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


@task
def meet_at_barrier() -> int:
    """Returns only if 4 of these run at once (never when serialized)."""
    return sync_barrier.wait()


@task
def record(label: str) -> str:
    seen.append(label)
    return label


@task
def db_connection_state() -> bool:
    """Whether this thread's DB connection was closed when the job started."""
    closed_at_start = connection.connection is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return closed_at_start


@task(takes_context=True)
def with_context(context: JobsTaskContext, value: int) -> dict[str, Any]:
    return {"job_id": context.job_id, "attempt": context.attempt, "value": value}


@task
def returns_set() -> Any:
    return {1, 2}


@task
def whoami() -> int:
    return os.getpid()


@task(queue_name="reports")
def on_reports() -> str:
    return "reports"


@task(queue_name="high")
def high(label: str) -> str:
    seen.append(label)
    return label


@task(queue_name="low")
def low(label: str) -> str:
    seen.append(label)
    return label


def _test_redis():
    """The Redis a job runs against (worker processes get it in REDIS_URL)."""
    import redis

    return redis.Redis.from_url(os.environ["REDIS_URL"])


@task
async def counted(key: str, seconds: float = 0.0) -> str:
    """Count this run in Redis (across processes and restarts), then sleep."""
    client = _test_redis()
    client.incr(f"test:runs:{key}")
    client.close()
    await asyncio.sleep(seconds)
    return key


@task
def counted_sync(key: str, seconds: float = 0.0) -> str:
    client = _test_redis()
    client.incr(f"test:runs:{key}")
    client.close()
    time.sleep(seconds)
    return key


@task
def in_order(label: str) -> str:
    """Append `label` to the Redis list test:order: the order jobs ran in, from
    any process."""
    client = _test_redis()
    client.rpush("test:order", label)
    client.close()
    return label


@task(rate_limit="10/s")
def rated(label: str) -> str:
    """Append `label` and its start time (Redis's clock) to test:rated."""
    client = _test_redis()
    seconds, micros = client.time()
    client.rpush("test:rated", f"{label} {seconds + micros / 1e6}")
    client.close()
    return label


@task(max_attempts=2)
def poison(key: str) -> None:
    """A job that kills the process running it, every time."""
    client = _test_redis()
    client.incr(f"test:runs:{key}")
    client.close()
    os.kill(os.getpid(), 9)


@task
def exits(message: str = "exit") -> None:
    raise SystemExit(message)


@task
async def aexits(code: int = 3) -> None:
    raise SystemExit(code)


@task
def interrupts() -> None:
    raise KeyboardInterrupt("raised by the task")


@task
async def cancels_itself() -> None:
    """Raise a CancelledError of its own: nobody cancelled this job."""
    future = asyncio.get_running_loop().create_future()
    future.cancel()
    await future


@task
def sized(blob: str) -> int:
    return len(blob)


@task(takes_context=True)
async def progressing(context: JobsTaskContext, steps: int, pause: float = 0.0) -> int:
    for step in range(1, steps + 1):
        await asyncio.sleep(pause)
        await context.aset_progress(step, steps, f"step {step} of {steps}")
    return steps


@task(takes_context=True)
def progressing_sync(context: JobsTaskContext, steps: int, pause: float = 0.0) -> int:
    for step in range(1, steps + 1):
        time.sleep(pause)
        context.set_progress(step, steps, f"step {step}")
    return steps


@task
def blob(size: int) -> str:
    return "x" * size


def _number(value: Any) -> Any:
    """JSON arguments cannot carry NaN or infinities: "nan", "inf", "-inf" stand in."""
    return float(value) if value in ("nan", "inf", "-inf") else value


@task(takes_context=True)
async def bad_progress(context: JobsTaskContext, done: Any, total: Any = 1) -> None:
    await context.aset_progress(_number(done), _number(total))


@task(takes_context=True)
def bad_progress_sync(context: JobsTaskContext, done: Any, total: Any = 1) -> None:
    context.set_progress(_number(done), _number(total))


@task(takes_context=True)
async def logged(context: JobsTaskContext, path: str) -> None:
    """Append this run's job id and end time to `path`: runs counted in a file,
    whatever happens to Redis (a failover may lose what was written there)."""
    line = f"{context.task_result.id} {time.time():.6f}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)  # one write under PIPE_BUF: lines never interleave
    finally:
        os.close(fd)


async def hook_startup(ctx: dict[str, Any]) -> None:
    """JOBS_WORKER_HOOKS of the worker tests: what ran, in `seen`."""
    seen.append(("hook_startup",))


async def hook_job_start(ctx: dict[str, Any]) -> None:
    seen.append(("hook_job_start", ctx["job_id"]))


async def hook_job_end(ctx: dict[str, Any]) -> None:
    seen.append(("hook_job_end", ctx["job_id"]))


@task(timeout=1)
def stuck_sync(key: str, seconds: float = 20) -> str:
    """Count the run, then block its thread past the timeout; mark the end."""
    client = _test_redis()
    client.incr(f"test:runs:{key}")
    time.sleep(seconds)
    client.set(f"test:ended:{key}", 1)
    client.close()
    return key


@task
async def blocks_loop(key: str, seconds: float) -> str:
    """Count the run, then block the worker's event loop (no await)."""
    client = _test_redis()
    client.incr(f"test:runs:{key}")
    client.close()
    time.sleep(seconds)
    return key


@task(takes_context=True)
async def ran_then_sleeps(context: JobsTaskContext, path: str, seconds: float) -> str:
    """Append this run's job id to `path` (runs counted outside Redis), then sleep."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{context.task_result.id}\n".encode())
    finally:
        os.close(fd)
    await asyncio.sleep(seconds)
    return context.task_result.id


@task(timeout=1)
def hangs(key: str) -> None:
    """Count the run, then hang for good: only a killed process ends it."""
    client = _test_redis()
    client.incr(f"test:runs:{key}")
    client.close()
    while True:
        time.sleep(3600)


@task
def pid_of_runner() -> int:
    return os.getpid()
