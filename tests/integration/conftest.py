"""This tier runs against a real Redis: its fixtures, autouse ones included."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool

from tests.redis_fixtures import *  # noqa: F403
from tests.servers import RedisServer


def dumps(value: object) -> bytes:
    return json.dumps(value).encode()


@pytest.fixture
async def arq_pool(test_redis: RedisServer) -> AsyncIterator[ArqRedis]:
    """A pool as an arq user makes it: arq's default queue, a JSON serializer."""
    settings = RedisSettings(host="127.0.0.1", port=test_redis.port)
    pool = await create_pool(
        settings, job_serializer=dumps, job_deserializer=json.loads
    )
    yield pool
    await pool.aclose()
