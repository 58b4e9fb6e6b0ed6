"""Wire compatibility with arq's own client code (arq is a dependency): jobs
enqueued by arq run here, and arq's `Job` reads ours. JSON both ways."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import arq.jobs
import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import Job, JobStatus
from django.conf import settings
from django.tasks import default_task_backend
from django.tasks.base import TaskResultStatus
from django.test import override_settings

from jobs.failures import arq_loads
from jobs.redis import connections, scripts
from jobs.redis.scripts import now_ms
from jobs.testing import adrain
from jobs.worker import JobsWorker
from tests import tasks
from tests.servers import RedisServer

pytestmark = pytest.mark.django_db(transaction=True)


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


def ours(pool: ArqRedis, job_id: str) -> Job:
    """arq's Job with django-jobs' JSON deserializer, which re-raises failures."""
    return Job(job_id, pool, _deserializer=arq_loads)


async def test_arq_job_reads_our_finished_job(arq_pool: ArqRedis) -> None:
    result = await tasks.add.aenqueue(2, 3)
    await adrain()
    job = arq_job(arq_pool, result.id)
    assert await job.status() == JobStatus.complete
    assert await job.result(timeout=1) == 5
    info = await job.result_info()
    assert info is not None
    assert (info.success, info.function, info.args, info.job_try) == (
        True,
        "tests.tasks.add",
        [2, 3],
        1,
    )
    assert info.queue_name == "arq:queue"
    assert info.enqueue_time <= info.start_time <= info.finish_time
    # The same TTL as the Django record, both written by one script.
    ttl = await arq_pool.pttl(f"arq:result:{result.id}")
    record_ttl = await arq_pool.pttl(f":1:jobs:result:{result.id}")
    assert abs(ttl - record_ttl) < 1000 and ttl > 86_000_000


async def test_arq_job_result_of_a_failure(arq_pool: ArqRedis) -> None:
    result = await tasks.boom.aenqueue("kaput")
    await adrain()
    # Plain JSON: arq raises its SerializationError with the failure's text.
    with pytest.raises(arq.jobs.SerializationError, match="ValueError: kaput"):
        await arq_job(arq_pool, result.id).result(timeout=1)
    # jobs' deserializer gives back the task's own exception.
    with pytest.raises(ValueError, match=r"^kaput$"):
        await ours(arq_pool, result.id).result(timeout=1)
    info = await arq_job(arq_pool, result.id).result_info()
    assert info is not None and info.success is False


async def test_arq_job_status_while_in_progress_then_not_found_after_expiry(
    arq_pool: ArqRedis,
) -> None:
    result = await tasks.add.aenqueue(1, 2)
    wire = connections.async_wire(default_task_backend.config)
    claimed, _ = await scripts.CLAIM.acall(
        wire,
        ["arq:queue", "jobs:wake:default", "jobs:priorities:default"],
        [now_ms() + 1, 30_000, 1, "w", 60, 262_144, "jobs:queue:default:"],
    )
    assert claimed[0][0].decode() == result.id
    assert await arq_job(arq_pool, result.id).status() == JobStatus.in_progress
    await arq_pool.delete(f"arq:in-progress:{result.id}")  # the lease given up:
    await arq_pool.zadd("arq:queue", {result.id: 0})  # due again
    await adrain()
    assert await arq_job(arq_pool, result.id).status() == JobStatus.complete
    await arq_pool.pexpire(f"arq:result:{result.id}", 1)
    await asyncio.sleep(0.01)
    assert await arq_job(arq_pool, result.id).status() == JobStatus.not_found


async def test_arq_abort_cancels_a_queued_job(arq_pool: ArqRedis) -> None:
    result = await tasks.add.using(run_after=timedelta(hours=1)).aenqueue(1, 2)

    async def drain_once_aborted() -> None:
        while not await arq_pool.zscore("arq:abort", result.id):
            await asyncio.sleep(0.01)
        await adrain()

    aborted, _ = await asyncio.gather(
        ours(arq_pool, result.id).abort(timeout=5, poll_delay=0.02),
        drain_once_aborted(),
    )
    assert aborted is True
    await result.arefresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[-1].exception_class_path == "jobs.exceptions.JobCancelled"


async def test_backend_cancel_of_a_queued_job_is_arqs_too(arq_pool: ArqRedis) -> None:
    result = await tasks.add.aenqueue(1, 2)
    await default_task_backend.acancel_outcome(result.id)
    assert await arq_job(arq_pool, result.id).status() == JobStatus.complete
    with pytest.raises(asyncio.CancelledError):
        await ours(arq_pool, result.id).result(timeout=1)


async def test_arq_results_off_writes_no_arq_record(arq_pool: ArqRedis) -> None:
    base = settings.TASKS["default"]
    options = {**base["OPTIONS"], "ARQ_RESULTS": False}
    with override_settings(TASKS={"default": {**base, "OPTIONS": options}}):
        result = await tasks.add.aenqueue(2, 3)
        await adrain()
        await result.arefresh()
    assert result.return_value == 5
    assert await arq_pool.exists(f"arq:result:{result.id}") == 0


async def test_arq_abort_cancels_a_running_coroutine_at_the_next_heartbeat(
    arq_pool: ArqRedis,
) -> None:
    base = settings.TASKS["default"]
    options = {**base["OPTIONS"], "LEASE": 0.6}  # a heartbeat every 0.2 s
    with override_settings(TASKS={"default": {**base, "OPTIONS": options}}):
        result = await tasks.asleeper.aenqueue(30)
        running = asyncio.create_task(adrain())
        while (await default_task_backend.results.aget(result.id))["status"] != (
            "RUNNING"
        ):
            await asyncio.sleep(0.02)
        await arq_pool.zadd("arq:abort", {result.id: now_ms()})  # Job.abort()
        counts = await asyncio.wait_for(running, 20)
        await result.arefresh()
    assert counts["failed"] == 1
    assert result.errors[-1].exception_class_path == "jobs.exceptions.JobCancelled"
    with pytest.raises(asyncio.CancelledError):
        await ours(arq_pool, result.id).result(timeout=1)


async def test_a_wake_token_after_arqs_enqueue_starts_the_job_at_once(
    arq_pool: ArqRedis,
) -> None:
    """arq's enqueue_job pushes no wake-up; one LPUSH after it does what ours
    does: an idle worker whose safety poll is a minute away takes the job."""
    base = settings.TASKS["default"]
    # The safety poll a minute away (reads may block that long).
    options = {
        **base["OPTIONS"],
        "POLL_INTERVAL": 60,
        "REDIS_OPTIONS": {"socket_timeout": 150},
    }
    with override_settings(TASKS={"default": {**base, "OPTIONS": options}}):
        worker = JobsWorker(default_task_backend, handle_signals=False)
        running = asyncio.create_task(worker.async_run())
        try:
            while not await blocked_on_wake_list(arq_pool):  # idle, waiting
                await asyncio.sleep(0.01)
            job = await arq_pool.enqueue_job("tests.tasks.add", 20, 22)
            assert job is not None
            await arq_pool.lpush("jobs:wake:default", 1)
            # arq's own wait: its result record is written when the job ends.
            assert await arq_job(arq_pool, job.job_id).result(10, poll_delay=0.02) == 42
        finally:
            worker.stop()
            await asyncio.wait_for(running, 10)
            await worker.close()


async def blocked_on_wake_list(pool: ArqRedis) -> bool:
    clients = await pool.client_list()
    return any(c["cmd"] == "blpop" for c in clients)
