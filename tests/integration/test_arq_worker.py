"""arq's own Worker running Django tasks (jobs.arq.WorkerSettings), in this
process: results as Django reads them, retries, cancels, schedules as arq's
cron_jobs, hooks. The `arq` CLI itself: tests/acceptance/test_arq_cli.py."""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType

import pytest
from arq.connections import RedisSettings
from arq.jobs import Job, JobStatus
from arq.worker import Worker, create_worker
from asgiref.sync import sync_to_async
from django.conf import settings
from django.tasks import default_task_backend
from django.tasks.base import TaskResultStatus
from django.test import override_settings

from jobs import chain, chord, group
from jobs.conf import JobsOptions
from jobs.dashboard import monitor
from jobs.failures import arq_loads
from jobs.schedules.models import Schedule
from jobs.testing import adrain
from tests import tasks
from tests.servers import RedisServer

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # arq 0.28's Worker.close() calls redis-py's deprecated close().
    pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning"),
]

HOOKS = {
    "on_startup": "tests.tasks.hook_startup",
    "on_job_start": "tests.tasks.hook_job_start",
    "on_job_end": "tests.tasks.hook_job_end",
}


@pytest.fixture
def arq_settings(test_redis: RedisServer) -> Iterator[ModuleType]:
    """jobs.arq as `arq` imports it, built for this test's settings."""
    with override_settings(JOBS_WORKER_HOOKS=HOOKS):
        module = importlib.import_module("jobs.arq")
        yield importlib.reload(module)


def worker_of(module: ModuleType, test_redis: RedisServer, **kwargs: object) -> Worker:
    settings = RedisSettings(host="127.0.0.1", port=test_redis.port)
    options = {"burst": True, "handle_signals": False, "poll_delay": 0.05, **kwargs}
    return create_worker(module.WorkerSettings, redis_settings=settings, **options)


@pytest.fixture
async def burst(
    arq_settings: ModuleType, test_redis: RedisServer
) -> AsyncIterator[object]:
    async def run() -> Worker:
        worker = worker_of(arq_settings, test_redis)
        try:
            await worker.async_run()
        finally:
            await worker.close()
        return worker

    yield run


async def test_tasks_run_and_django_reads_their_results(burst, arq_pool) -> None:
    sync = await tasks.add.aenqueue(2, 3)
    coro = await tasks.aadd.aenqueue(4, 5)
    worker = await burst()
    assert worker.jobs_complete == 2
    for result, value in ((sync, 5), (coro, 9)):
        assert await result.aget(timeout=1) == value
        assert result.status == TaskResultStatus.SUCCESSFUL
        assert result.enqueued_at <= result.started_at <= result.finished_at
        assert result.worker_ids[0].count(":") == 2
    # The dashboard's list of finished jobs has them.
    page = await sync_to_async(monitor.recent)(default_task_backend, window=60)
    assert {record["id"] for record, _ in page.rows} == {sync.id, coro.id}
    # arq's result too, written by arq's worker with our JSON serializer.
    job = Job(sync.id, arq_pool, _deserializer=json.loads)
    assert await job.status() == JobStatus.complete
    assert await job.result(timeout=1) == 5
    # Hooks of JOBS_WORKER_HOOKS ran around each job.
    assert tasks.seen.count(("hook_job_start", sync.id)) == 1
    assert tasks.seen.count(("hook_job_end", sync.id)) == 1
    assert ("hook_startup",) in tasks.seen


async def test_a_failure_is_recorded_for_django_and_arq(burst, arq_pool) -> None:
    result = await tasks.boom.aenqueue("kaput")
    worker = await burst()
    assert worker.jobs_failed == 1
    with pytest.raises(ValueError, match="kaput"):
        await result.aget(timeout=1)
    assert result.errors[-1].exception_class_path == "builtins.ValueError"
    with pytest.raises(ValueError, match="kaput"):
        await Job(result.id, arq_pool, _deserializer=arq_loads).result(timeout=1)


async def test_retries_follow_the_tasks_policy(burst) -> None:
    result = await tasks.flaky.aenqueue("arq-k1")
    worker = await burst()
    assert (worker.jobs_retried, worker.jobs_complete) == (2, 1)
    assert await result.aget(timeout=1) == 3
    assert result.attempts == 3
    assert [e.exception_class_path for e in result.errors] == [
        "builtins.ConnectionError",
        "builtins.ConnectionError",
    ]


async def test_backend_cancel_stops_a_running_coroutine(
    arq_settings: ModuleType, test_redis: RedisServer
) -> None:
    result = await tasks.asleeper.aenqueue(30)
    worker = worker_of(arq_settings, test_redis)
    running = asyncio.create_task(worker.async_run())
    try:
        while (await default_task_backend.results.aget(result.id))["status"] != (
            "RUNNING"
        ):
            await asyncio.sleep(0.02)
        await default_task_backend.acancel_outcome(result.id)
        await asyncio.wait_for(running, 10)
    finally:
        running.cancel()
        await worker.close()
    await result.arefresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[-1].exception_class_path == "jobs.exceptions.JobCancelled"


async def test_an_arq_abort_of_a_queued_job_is_recorded_not_run(r, burst) -> None:
    result = await tasks.record.aenqueue("aborted")
    r.zadd("arq:abort", {result.id: 1})  # what arq's Job.abort() does
    await burst()
    await result.arefresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[-1].exception_class_path == "jobs.exceptions.JobCancelled"
    assert "aborted" not in tasks.seen


async def test_schedules_are_arqs_cron_jobs(
    arq_settings: ModuleType, test_redis: RedisServer
) -> None:
    schedule = await sync_to_async(Schedule.objects.create)(
        name="every second",
        task="tests.tasks.record",
        args=["from cron"],
        interval=timedelta(seconds=1),
    )
    module = await sync_to_async(importlib.reload)(arq_settings)  # at start-up
    [cron] = module.WorkerSettings.cron_jobs
    assert cron.name == f"db:{schedule.pk}"
    worker = worker_of(module, test_redis, burst=False)
    running = asyncio.create_task(worker.async_run())
    try:
        while not await first_run(schedule.pk):
            await asyncio.sleep(0.05)
    finally:
        running.cancel()  # arq's poll loop: no job starts after this
        await asyncio.gather(running, return_exceptions=True)
        # arq's close() cancels jobs still running (the tick that wrote the
        # run may not have returned yet): let them end first.
        await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
        await worker.close()
    job_id = await first_run(schedule.pk)
    assert job_id.startswith(f"schedule:{schedule.pk}:")
    result = await default_task_backend.aget_result(job_id)
    assert result.args == ["from cron"]
    assert result.meta["schedule"] == "every second"


async def first_run(pk: int) -> str:
    schedule = await sync_to_async(Schedule.objects.get)(pk=pk)
    return schedule.last_result_id


async def test_jobs_worker_runs_the_same_hooks() -> None:
    with override_settings(JOBS_WORKER_HOOKS=HOOKS):
        result = await tasks.add.aenqueue(1, 1)
        assert (await adrain())["complete"] == 1
    assert tasks.seen == [
        ("hook_startup",),
        ("hook_job_start", result.id),
        ("hook_job_end", result.id),
    ]


def test_arqs_redis_settings_follow_redis_url(arq_settings: ModuleType) -> None:
    url = "redis+sentinel://u:pw@s1:26379,s2:26380/mymaster/2"
    sentinel = arq_settings.redis_settings(JobsOptions(redis_url=url))
    assert (sentinel.host, sentinel.sentinel, sentinel.sentinel_master) == (
        [("s1", 26379), ("s2", 26380)],
        True,
        "mymaster",
    )
    assert (sentinel.database, sentinel.username, sentinel.password) == (2, "u", "pw")
    plain = arq_settings.redis_settings(JobsOptions(redis_url="rediss://h:6380/3"))
    assert (plain.host, plain.port, plain.database, plain.ssl) == ("h", 6380, 3, True)


async def test_arqs_worker_runs_workflows_to_the_end(burst, r) -> None:
    header = group(tasks.add.bind(1, 1), tasks.add.bind(2, 2))
    inner = group(tasks.double.bind(), tasks.add.bind(10))
    flow = chain(tasks.add.bind(0, 1), inner, tasks.tally.bind("arq"))
    result = await chord(header, tasks.tally.bind("arq-chord")).aenqueue()
    chained = await flow.aenqueue()
    for _ in range(3):  # one burst per stage
        await burst()
    assert await result.aget(timeout=1) == 6
    assert await chained.aget(timeout=1) == 2 + 11
    assert int(r.get("test:runs:arq-chord")) == 1


async def test_arqs_worker_reads_arqs_queue_only(burst) -> None:
    """Jobs with a per-job priority wait in sets of ours, which arq never reads."""
    result = await tasks.add.using(priority=5).aenqueue(1, 1)
    assert (await burst()).jobs_complete == 0
    await result.arefresh()
    assert result.status == TaskResultStatus.READY


async def test_plain_functions_run_side_by_side_in_threads(burst) -> None:
    results = [await tasks.meet_at_barrier.aenqueue() for _ in range(4)]
    await burst()
    values = sorted([await result.aget(timeout=1) for result in results])
    assert values == [0, 1, 2, 3]  # four threads met at one barrier


async def run_with_options(arq_settings, test_redis, **changes: object) -> None:
    """Run arq's worker (burst) under this backend's OPTIONS plus `changes`."""
    base = settings.TASKS["default"]
    options = {**base["OPTIONS"], **changes}
    with override_settings(TASKS={"default": {**base, "OPTIONS": options}}):
        module = await sync_to_async(importlib.reload)(arq_settings)
        worker = worker_of(module, test_redis)
        try:
            await worker.async_run()
        finally:
            await worker.close()


async def test_a_result_over_max_result_is_recorded_failed(arq_settings, test_redis):
    result = await tasks.blob.aenqueue(400_000)
    await run_with_options(arq_settings, test_redis, MAX_RESULT=300_000)
    await result.arefresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[-1].exception_class_path == "jobs.exceptions.PayloadTooLarge"


async def test_a_payload_over_max_payload_is_recorded_failed_not_run(
    arq_settings, test_redis, r
):
    big = await tasks.sized.aenqueue("x" * 900)  # under the limit at enqueue
    r.set(f"arq:job:{big.id}", r.get(f"arq:job:{big.id}").replace(b"x", b"xx"))
    await run_with_options(arq_settings, test_redis, MAX_PAYLOAD=1000)
    await big.arefresh()
    assert big.status == TaskResultStatus.FAILED
    assert big.errors[-1].exception_class_path == "jobs.exceptions.PayloadTooLarge"
    assert "over MAX_PAYLOAD (1000)" in big.errors[-1].traceback


async def test_cron_and_clocked_schedules_become_arq_cron_jobs(
    arq_settings: ModuleType,
) -> None:
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    create = sync_to_async(Schedule.objects.create)
    cron = await create(
        name="fives", task="tests.tasks.add", args=[1, 2], cron="*/5 * * * *"
    )
    once = await create(
        name="once", task="tests.tasks.add", args=[1, 2], clocked_time=at
    )
    module = await sync_to_async(importlib.reload)(arq_settings)
    by_name = {job.name: job for job in module.WorkerSettings.cron_jobs}
    now = datetime(2026, 1, 1, 10, 2, 30, tzinfo=UTC)
    job = by_name[f"db:{cron.pk}"]
    job.calculate_next(now)  # what arq's run_cron calls
    assert job.next_run == datetime(2026, 1, 1, 10, 5, tzinfo=UTC)
    job = by_name[f"db:{once.pk}"]
    job.calculate_next(at - timedelta(minutes=1))
    assert job.next_run == at
    job.calculate_next(at)
    assert job.next_run is None  # arq never fires it again


def test_the_arq_defaults_docs_arq_md_quotes(
    arq_settings: ModuleType, test_redis: RedisServer
) -> None:
    """docs/arq.md's "What this mode does not have" quotes arq's defaults as
    WorkerSettings leaves them: the 0.5 s poll, the 300 s job timeout, recovery
    after the timeout + 10 s, SIGTERM cancelling running jobs to run again."""
    settings = RedisSettings(host="127.0.0.1", port=test_redis.port)
    worker = create_worker(
        arq_settings.WorkerSettings, redis_settings=settings, handle_signals=False
    )
    assert worker.poll_delay_s == 0.5
    assert worker.job_timeout_s == 300
    untimed = [f for f in worker.functions.values() if f.timeout_s is None]
    assert untimed, "a task without a timeout runs under arq's job_timeout"
    longest = max(
        f.timeout_s or worker.job_timeout_s for f in worker.functions.values()
    )
    assert worker.in_progress_timeout_s == longest + 10 >= 310
    assert not worker._job_completion_wait  # SIGTERM: arq's handle_sig, cancel
    assert worker.retry_jobs  # a job cancelled by shutdown is run again
