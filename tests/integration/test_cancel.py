"""Cancelling queued and running jobs."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from django.tasks import task_backends

from jobs import JobCancelled
from jobs.backend import Cancel
from jobs.testing import adrain
from jobs.worker import JobsWorker
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def backend():
    return task_backends["default"]


@pytest.fixture
async def worker(backend):
    worker = JobsWorker(backend, handle_signals=False)
    running = asyncio.create_task(worker.async_run())
    yield worker
    worker.stop()
    await running
    await worker.close()


async def test_a_queued_job_is_cancelled_at_once_and_never_runs(backend, r):
    result = await tasks.record.aenqueue("never")
    deferred = await tasks.record.using(run_after=timedelta(hours=1)).aenqueue("later")
    assert await backend.acancel(result.id) is True
    assert backend.cancel(deferred.id) is True
    for cancelled in (result, deferred):
        await cancelled.arefresh()
        assert cancelled.status == "FAILED"
        assert (
            cancelled.errors[-1].exception_class_path == "jobs.exceptions.JobCancelled"
        )
    await adrain()
    assert tasks.seen == []
    assert r.zcard("arq:queue") == 0
    with pytest.raises(JobCancelled):
        await result.aget(timeout=1)


async def test_a_running_coroutine_is_cancelled(backend, worker):
    result = await tasks.asleeper.aenqueue(30)
    while (await backend.aget_result(result.id)).status != "RUNNING":
        await asyncio.sleep(0.02)
    assert await backend.acancel(result.id) is True
    with pytest.raises(JobCancelled, match="while it ran"):
        await result.aget(timeout=5)
    assert result.status == "FAILED"
    assert worker.jobs_failed == 1


async def test_a_running_plain_function_runs_to_its_end(backend, worker):
    result = await tasks.sleeper.aenqueue(0.5)
    while (await backend.aget_result(result.id)).status != "RUNNING":
        await asyncio.sleep(0.02)
    assert await backend.acancel(result.id) is True  # asked, but it cannot stop
    assert await result.aget(timeout=5) == 0.5


async def test_finished_or_unknown_jobs_cannot_be_cancelled(backend):
    result = await tasks.add.aenqueue(1, 1)
    await adrain()
    assert await backend.acancel(result.id) is False
    assert backend.cancel("0" * 32) is False
    await result.arefresh()
    assert result.status == "SUCCESSFUL"


async def test_the_outcome_tells_dequeued_from_signalled(backend, worker):
    later = await tasks.record.using(run_after=timedelta(hours=1)).aenqueue("later")
    assert await backend.acancel_outcome(later.id) is Cancel.DEQUEUED
    running = await tasks.asleeper.aenqueue(30)
    while (await backend.aget_result(running.id)).status != "RUNNING":
        await asyncio.sleep(0.02)
    assert backend.cancel_outcome(running.id) is Cancel.SIGNALLED
    with pytest.raises(JobCancelled, match="while it ran"):
        await running.aget(timeout=5)
    # Both finished now (FAILED): nothing left to cancel, sync or async.
    assert await backend.acancel_outcome(running.id) is Cancel.NOTHING
    assert backend.cancel_outcome(later.id) is Cancel.NOTHING
