"""Tell running workers that schedules changed, through Redis.

The model layer calls this after a commit (jobs.models); it never reads the
database itself, so the arrow goes one way: models -> notify -> Redis.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import redis
from django.tasks import task_backends
from redis.exceptions import RedisError

from jobs import conf
from jobs.backend import JobsBackend
from jobs.redis import connections
from jobs.redis.keys import SCHEDULES_CHANNEL, SCHEDULES_LAST_KEY

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
