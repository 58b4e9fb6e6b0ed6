"""Wire compatibility with arq's own client code (arq is a dependency): jobs
enqueued by arq run here, and arq's `Job` reads ours. JSON both ways."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import Job, JobStatus
from django.tasks import default_task_backend
from django.tasks.base import TaskResultStatus

from jobs.testing import adrain
from tests import tasks
from tests.servers import RedisServer

pytestmark = pytest.mark.django_db(transaction=True)


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


async def test_default_queue_is_arqs(arq_pool: ArqRedis) -> None:
    result = await tasks.add.aenqueue(1, 2)
    assert await arq_pool.zscore("arq:queue", result.id) is not None


async def test_a_job_enqueued_by_arq_runs_here(arq_pool: ArqRedis) -> None:
    job = await arq_pool.enqueue_job("tests.tasks.add", 2, 3)
    assert job is not None
    counts = await adrain()
    assert counts["complete"] == 1
    result = await default_task_backend.aget_result(job.job_id)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 5
    assert result.task.module_path == "tests.tasks.add"


async def test_a_job_enqueued_by_arq_on_another_queue_runs_there(
    arq_pool: ArqRedis,
) -> None:
    job = await arq_pool.enqueue_job(
        "tests.tasks.add", 4, y=5, _queue_name="arq:queue:reports"
    )
    assert job is not None
    assert (await adrain(queues=["default"]))["complete"] == 0
    assert (await adrain(queues=["reports"]))["complete"] == 1
    result = await default_task_backend.aget_result(job.job_id)
    assert result.return_value == 9


async def test_an_unregistered_function_from_arq_is_refused_and_recorded(
    arq_pool: ArqRedis,
) -> None:
    job = await arq_pool.enqueue_job("os.system", "echo pwned")
    assert job is not None
    counts = await adrain()
    assert counts == {"complete": 0, "failed": 1, "retried": 0}
    record = await default_task_backend.results.aget(job.job_id)
    assert record["status"] == "FAILED"
    assert record["task"] == "os.system"
    assert record["errors"][-1]["exception_class_path"] == (
        "jobs.exceptions.TaskNotRegistered"
    )
    assert await arq_pool.exists(f"arq:job:{job.job_id}") == 0
    assert await arq_pool.zcard("arq:queue") == 0


async def test_a_pickled_job_from_arq_is_refused_not_unpickled(
    test_redis: RedisServer,
) -> None:
    settings = RedisSettings(host="127.0.0.1", port=test_redis.port)
    pickling = await create_pool(settings)  # arq's default serializer: pickle
    try:
        job = await pickling.enqueue_job("tests.tasks.add", 1, 1)
        assert job is not None
        assert (await adrain())["failed"] == 1
        record = await default_task_backend.results.aget(job.job_id)
        assert record["status"] == "FAILED"
        assert "pickled" in record["errors"][-1]["message"]
    finally:
        await pickling.aclose()


async def test_arq_job_status_of_our_queued_and_deferred_jobs(
    arq_pool: ArqRedis,
) -> None:
    from datetime import timedelta

    queued = await tasks.add.aenqueue(1, 1)
    later = await tasks.add.using(run_after=timedelta(hours=1)).aenqueue(1, 1)
    assert await arq_job(arq_pool, queued.id).status() == JobStatus.queued
    assert await arq_job(arq_pool, later.id).status() == JobStatus.deferred
    info = await arq_job(arq_pool, queued.id).info()
    assert info is not None
    assert (info.function, info.args, info.kwargs) == ("tests.tasks.add", [1, 1], {})
    assert await arq_job(arq_pool, "nope").status() == JobStatus.not_found


def arq_job(pool: ArqRedis, job_id: str) -> Job:
    return Job(job_id, pool, _deserializer=json.loads)
