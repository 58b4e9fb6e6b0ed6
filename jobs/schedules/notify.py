"""Tell running workers that schedules changed, through Redis; count runs there.

The model layer calls this after a commit (jobs.models); it never reads the
database itself, so the arrow goes one way: models -> notify -> Redis.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import redis
from django.tasks import task_backends
from redis.exceptions import RedisError

from jobs import conf
from jobs.backend import JobsBackend
from jobs.redis import connections
from jobs.redis.keys import (
    SCHEDULES_CHANNEL,
    SCHEDULES_LAST_KEY,
    SCHEDULES_UNCOUNTED_KEY,
)

if TYPE_CHECKING:
    import redis.asyncio

logger = logging.getLogger("jobs.scheduler")


def _schedule_redises() -> Iterator[redis.Redis]:
    """One client per Redis server a JobsBackend uses (schedules are global)."""
    done: set[str] = set()
    for backend in task_backends.all():
        if not isinstance(backend, JobsBackend) or backend.config_error is not None:
            continue
        if backend.config.redis_url not in done:
            done.add(backend.config.redis_url)
            yield connections.sync_client(backend.config)


def publish_change(pks: Iterable[int] | None) -> None:
    """Tell running workers these schedules changed (None: all of them)."""
    message = "*" if pks is None else ",".join(str(pk) for pk in pks)
    for client in _schedule_redises():
        try:
            client.publish(SCHEDULES_CHANNEL, message)
        except RedisError as e:
            logger.warning(
                "schedules changed but workers were not told (%s); they will notice "
                "within %s s",
                e,
                conf.jobs_settings.SCHEDULES_RECONCILE,
            )


def forget_last_runs(pks: Iterable[int]) -> None:
    """Drop deleted schedules' last job ids, kept in Redis for missed runs."""
    keys = [f"db:{pk}" for pk in pks]
    for client in _schedule_redises():
        try:
            client.hdel(SCHEDULES_LAST_KEY, *keys)
        except RedisError as e:  # a few stale bytes; nothing reads them again
            logger.warning("could not drop deleted schedules' last runs: %s", e)


class RedisRunCounts:
    """Schedules' runs not yet added to `Schedule.run_count`, in a Redis hash
    (pk -> runs) that the script queueing a run increments (enqueue.counted)."""

    def __init__(self, pool: redis.asyncio.Redis) -> None:
        self.pool = pool

    async def take(self) -> dict[int, int]:
        async with self.pool.pipeline(transaction=True) as pipe:
            pipe.hgetall(SCHEDULES_UNCOUNTED_KEY)
            pipe.delete(SCHEDULES_UNCOUNTED_KEY)
            counts, _ = await pipe.execute()
        return {int(pk): int(count) for pk, count in counts.items()}

    async def give_back(self, counts: dict[int, int]) -> None:
        async with self.pool.pipeline(transaction=True) as pipe:
            for pk, count in counts.items():
                pipe.hincrby(SCHEDULES_UNCOUNTED_KEY, str(pk), count)
            await pipe.execute()
