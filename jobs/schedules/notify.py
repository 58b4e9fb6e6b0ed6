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
    SCHEDULES_RUNS_KEY,
    SCHEDULES_UNWRITTEN_KEY,
)
from jobs.schedules.counting import Totals

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
    """Drop deleted schedules' last job ids (kept in Redis for missed runs) and
    run totals."""
    fields = [str(pk) for pk in pks]
    keys = [f"db:{pk}" for pk in fields]
    for client in _schedule_redises():
        try:
            with client.pipeline(transaction=False) as pipe:
                pipe.hdel(SCHEDULES_LAST_KEY, *keys)
                pipe.hdel(SCHEDULES_RUNS_KEY, *fields)
                pipe.zrem(SCHEDULES_UNWRITTEN_KEY, *fields)
                pipe.execute()
        except RedisError as e:  # a few stale bytes; nothing reads them again
            logger.warning("could not drop deleted schedules' last runs: %s", e)


class RedisRunCounts:
    """Schedules' runs as the script queueing each run counts them
    (enqueue.counted): a total per schedule that only grows, and the totals
    not yet written to the database (see jobs.schedules.counting)."""

    def __init__(self, pool: redis.asyncio.Redis) -> None:
        self.pool = pool

    async def unwritten(self) -> Totals | None:
        async with self.pool.pipeline(transaction=True) as pipe:
            pipe.zrange(SCHEDULES_UNWRITTEN_KEY, 0, -1, withscores=True)
            pipe.hget(SCHEDULES_RUNS_KEY, "epoch")
            totals, epoch = await pipe.execute()
        if not totals or epoch is None:
            return None
        return Totals(int(epoch), {int(pk): int(n) for pk, n in totals})

    async def written(self, totals: Totals) -> None:
        """Forget the totals the database now has (not those that grew since)."""
        args = [str(x) for pk, n in totals.runs.items() for x in (pk, n)]
        await self.pool.eval(FORGET_WRITTEN, 1, SCHEDULES_UNWRITTEN_KEY, *args)  # type: ignore[misc]


# ARGV: pk, total, pk, total...: each pk's entry is removed if it still has
# that total (a run queued since then raised it: it stays, for the next write).
FORGET_WRITTEN = """
for i = 1, #ARGV, 2 do
  if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i])) == tonumber(ARGV[i + 1]) then
    redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
"""
