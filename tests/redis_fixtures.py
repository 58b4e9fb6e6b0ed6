"""What a tier that runs against Redis puts in its conftest:

    from tests.redis_fixtures import *  # noqa: F403

Every test of the tier then runs with TASKS and CACHES pointed at the session's
redis-server (tests/conftest.py), flushed before it, clients closed after it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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


# A star import skips private names unless they are listed.
__all__ = ["_close_async_clients", "_flush"]
