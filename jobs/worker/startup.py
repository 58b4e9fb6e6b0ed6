"""What a worker checks and builds before its first claim.

arq's Worker constructor wants a function table; this one lists the registered
tasks with placeholders, never called: the worker runs tasks itself (arq's own
worker calls real ones: jobs.worker.native). Redis must answer and must not
evict queued jobs.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import TYPE_CHECKING, Any

from arq.worker import Function
from redis.exceptions import RedisError

from jobs import registry
from jobs.conf import CLUSTER_UNSUPPORTED, redact
from jobs.exceptions import WorkerError
from jobs.redis.errors import refused

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from jobs.backend import JobsBackend
    from jobs.conf import JobsOptions

logger = logging.getLogger("jobs.worker")

SAFE_POLICIES = ("noeviction",)


def checked_queues(backend: JobsBackend, queues: list[str] | None) -> list[str]:
    """The queues to consume, in order; WorkerError for a bad backend or name."""
    if backend.config_error is not None:
        raise WorkerError(str(backend.config_error))
    chosen = list(dict.fromkeys(queues or backend.queue_order))
    if "" in chosen:
        raise WorkerError("A queue name is empty.")
    unknown = [name for name in chosen if not backend.accepts_queue(name)]
    if unknown:
        raise WorkerError(
            f"Queues {sorted(unknown)} are not in the backend's QUEUES "
            f"{sorted(backend.queues)}."
        )
    return chosen


async def _placeholder(ctx: dict[Any, Any], *args: Any, **kwargs: Any) -> None:
    """Stands in for a task in arq's function table; the worker calls execute()."""


def arq_functions() -> list[Function]:
    """The registered tasks, as arq Function entries (names, timeouts, tries)."""
    functions = [
        Function(
            name=path,
            coroutine=_placeholder,
            timeout_s=task.timeout,
            keep_result_s=None,
            keep_result_forever=None,
            max_tries=task.max_attempts,
        )
        for path, task in sorted(registry.all_tasks().items())
    ]
    return functions or [Function("noop", _placeholder, None, None, None, None)]


WAIT_FIRST = 0.5  # seconds before the second try; doubled after each failure
WAIT_MAX = 30.0  # seconds between tries at most


async def wait_for_redis(
    pool: Redis, config: JobsOptions, timeout: float | None = None
) -> None:
    """Return once Redis answers PING; wait for ever unless `timeout` (seconds).

    A process manager (systemd, Kubernetes) starts workers in any order with
    Redis: waiting is what they expect. The caller cancels the wait to stop.
    """
    started = time.monotonic()
    delay = WAIT_FIRST
    for attempt in itertools.count(1):
        try:
            await pool.ping()
            return
        except (RedisError, OSError) as e:
            if fix := refused(config, e):  # it answered: waiting changes nothing
                raise WorkerError(fix) from None
            waited = time.monotonic() - started
            if timeout is not None and waited >= timeout:
                raise WorkerError(
                    f"Redis at {redact(config.redis_url)} did not answer "
                    f"within {timeout:g} s (--redis-wait): {e}"
                ) from None
            pause = delay if timeout is None else min(delay, timeout - waited)
            logger.warning(
                "waiting for Redis at %s (try %d, next in %.1f s): %s",
                redact(config.redis_url),
                attempt,
                pause,
                e,
            )
        await asyncio.sleep(pause)
        delay = min(delay * 2, WAIT_MAX)


async def refuse_cluster(pool: Redis, config: JobsOptions) -> None:
    """Stop at start on a Redis Cluster node: its scripts would fail every claim."""
    try:
        info = await pool.info("cluster")
    except RedisError:  # INFO may be renamed on managed Redis
        return
    if info.get("cluster_enabled"):
        raise WorkerError(
            f"Redis at {redact(config.redis_url)} is a Redis Cluster node: "
            f"{CLUSTER_UNSUPPORTED}"
        )


async def check_eviction_policy(pool: Redis, config: JobsOptions) -> None:
    try:
        policy = (await pool.config_get("maxmemory-policy")).get("maxmemory-policy")
    except RedisError:  # CONFIG may be disabled on managed Redis
        return
    if policy is None or policy in SAFE_POLICIES:
        return
    message = (
        f"Redis maxmemory-policy is {policy!r}: Redis may evict queued jobs when "
        "it fills up. Set maxmemory-policy noeviction."
    )
    if config.strict_redis:
        raise WorkerError(message)
    logger.warning(message)
