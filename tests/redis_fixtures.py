"""What a tier that runs against Redis puts in its conftest:

    from tests.redis_fixtures import *  # noqa: F403

Every test of the tier then runs with TASKS and CACHES pointed at the session's
redis-server (tests/conftest.py), flushed before it, clients closed after it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async
from django.db import connections as db_connections
from django.test.signals import update_connections_time_zone

from jobs.redis import connections
from tests.servers import RedisServer


@pytest.fixture(autouse=True)
def _flush(test_redis: RedisServer) -> Iterator[None]:
    client = test_redis.client()
    client.flushall()
    client.close()
    from tests import tasks

    tasks.seen.clear()
    tasks.sync_barrier.reset()
    yield
    connections.close_all()


@pytest.fixture(autouse=True)
async def _close_async_clients() -> Iterator[None]:  # type: ignore[misc]
    yield
    await connections.aclose_all()
    await sync_to_async(_reset_database_connections)()


def _reset_database_connections() -> None:
    """Close this thread's connections and forget their time zones.

    sync_to_async's one thread outlives the test, and Django resets the time
    zone of the overriding thread's connections only: this one's would keep
    the old one (PostgreSQL's session time zone) in a test that overrides
    USE_TZ or TIME_ZONE.
    """
    update_connections_time_zone(setting="USE_TZ")
    db_connections.close_all()


# A star import skips private names unless they are listed.
__all__ = ["_close_async_clients", "_flush"]
