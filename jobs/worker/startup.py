"""What a worker checks and builds before its first claim.

arq's Worker wants a function table; ours lists the registered tasks (with
their timeouts and attempts, for arq's tooling) though the worker runs them
itself. Redis must answer and must not evict queued jobs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from arq.worker import Function
from redis.exceptions import RedisError

from jobs import registry
from jobs.conf import redact
from jobs.exceptions import WorkerError

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from jobs.conf import JobsOptions

logger = logging.getLogger("jobs.worker")

SAFE_POLICIES = ("noeviction",)


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


async def wait_for_redis(
    pool: Redis, config: JobsOptions, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await pool.ping()
            return
        except (RedisError, OSError) as e:
            if time.monotonic() > deadline:
                raise WorkerError(
                    f"Redis at {redact(config.redis_url)} did not answer "
                    f"within {timeout:.0f} s: {e}"
                ) from e
            logger.warning("waiting for Redis: %s", e)
            await asyncio.sleep(1)


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
