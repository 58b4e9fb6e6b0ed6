"""Tasks report progress through their context; readers see it live and at the end."""

from __future__ import annotations

import asyncio

import pytest
from django.tasks import task_backends

from jobs.testing import adrain
from jobs.worker import JobsWorker
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


async def test_progress_is_stored_with_the_result():
    async_result = await tasks.progressing.aenqueue(3)
    sync_result = await tasks.progressing_sync.aenqueue(4)
    await adrain()
    await async_result.arefresh()
    await sync_result.arefresh()
    assert async_result.progress["done"] == 3
    assert async_result.progress["total"] == 3
    assert async_result.progress["message"] == "step 3 of 3"
    assert sync_result.progress["done"] == sync_result.progress["total"] == 4
    assert async_result.return_value == 3


async def test_progress_is_readable_while_running_and_published(r):
    worker = JobsWorker(task_backends["default"], handle_signals=False)
    running = asyncio.create_task(worker.async_run())
    try:
        result = await tasks.progressing.aenqueue(20, 0.1)
        pubsub = r.pubsub()
        pubsub.subscribe(f"jobs:progress:{result.id}")
        seen = []
        while len(seen) < 3:
            await asyncio.sleep(0.05)
            await result.arefresh()
            if result.progress and result.progress["done"] not in seen:
                seen.append(result.progress["done"])
                assert result.status == "RUNNING"
        assert seen == sorted(seen)
        assert seen[-1] < 20
        messages = [pubsub.get_message(timeout=1) for _ in range(3)]
        assert any(m and m["type"] == "message" for m in messages)
        assert await result.aget(timeout=10) == 20
        assert result.progress["done"] == 20
        pubsub.close()
    finally:
        worker.stop()
        await running
        await worker.close()


@pytest.mark.parametrize("bad_task", [tasks.bad_progress, tasks.bad_progress_sync])
@pytest.mark.parametrize(
    ("done", "total", "error", "message"),
    [
        ("nan", 1, "builtins.ValueError", "progress done must be a finite number"),
        (1, "-inf", "builtins.ValueError", "progress total must be a finite number"),
        ("1", 2, "builtins.TypeError", "progress done must be a number, not '1'"),
    ],
)
async def test_bad_progress_values_raise_at_the_call_and_fail_the_job_once(
    bad_task, done, total, error, message
):
    result = await bad_task.using(max_attempts=3).aenqueue(done, total)
    await adrain()
    await result.arefresh()
    assert result.status == "FAILED"
    assert result.attempts == 1
    assert result.errors[-1].exception_class_path == error
    assert message in result.errors[-1].traceback


async def test_progress_takes_any_json_number():
    result = await tasks.bad_progress.aenqueue(10**400, 10**401)  # ints: no range
    await adrain()
    await result.arefresh()
    assert result.status == "SUCCESSFUL"
    assert result.progress["done"] == 10**400
