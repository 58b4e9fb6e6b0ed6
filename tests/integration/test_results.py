"""Waiting on results as Celery's AsyncResult.get() did: value, re-raise, timeout."""

from __future__ import annotations

import asyncio
import threading

import pytest
from django.conf import settings
from django.core.cache import caches
from django.tasks import default_task_backend, task_backends
from django.tasks.base import TaskResultStatus
from django.tasks.exceptions import TaskResultDoesNotExist
from django.test import override_settings

from jobs import RemoteTraceback, ResultTimeout, TaskFailed
from jobs.redis import connections, scripts
from jobs.testing import adrain, drain
from jobs.worker import JobsWorker
from tests import tasks
from tests.caches import CountingRedisCache, calls

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def worker():
    worker = JobsWorker(task_backends["default"], handle_signals=False, concurrency=10)
    running = asyncio.create_task(worker.async_run())
    yield worker
    worker.stop()
    await running
    await worker.close()


async def test_aget_returns_the_value(worker):
    result = await tasks.aadd.aenqueue(20, 22)
    assert await result.aget(timeout=10) == 42
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.finished_at is not None


async def test_aget_reraises_the_task_error_with_remote_traceback(worker):
    result = await tasks.boom.aenqueue("remote kaput")
    with pytest.raises(ValueError, match="remote kaput") as excinfo:
        await result.aget(timeout=10)
    cause = excinfo.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "raise ValueError(message)" in cause.tb
    assert result.status == TaskResultStatus.FAILED


async def test_aget_reraises_a_custom_exception_class(worker):
    result = await tasks.aboom.aenqueue()
    with pytest.raises(tasks.CustomError, match="custom failure"):
        await result.aget(timeout=10)
    assert result.errors[-1].exception_class_path == "tests.tasks.CustomError"


async def test_aget_times_out_without_a_worker():
    result = await tasks.aadd.aenqueue(1, 1)
    with pytest.raises(ResultTimeout, match=f"{result.id} did not finish within 0.2 s"):
        await result.aget(timeout=0.2)
    assert isinstance(ResultTimeout("x"), TimeoutError)


async def test_aget_waits_across_retries(worker):
    result = await tasks.asks_retry.aenqueue("k3")
    assert await result.aget(timeout=10) == "done"
    assert result.attempts == 2


async def test_many_waiters_on_one_job(worker):
    result = await tasks.asleeper.aenqueue(0.3)
    values = await asyncio.gather(*(result.aget(timeout=10) for _ in range(20)))
    assert values == [0.3] * 20


def test_sync_get_from_another_thread_while_a_worker_runs():
    """The sync path (a sync view, the shell): no event loop of its own."""
    ready = threading.Event()
    stop = threading.Event()

    def run_worker():
        async def main():
            worker = JobsWorker(task_backends["default"], handle_signals=False)
            running = asyncio.create_task(worker.async_run())
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.02)
            worker.stop()
            await running
            await worker.close()

        asyncio.run(main())

    thread = threading.Thread(target=run_worker)
    thread.start()
    try:
        ready.wait(5)
        ok = tasks.add.enqueue(3, 4)
        assert ok.get(timeout=10) == 7
        bad = tasks.boom.enqueue("sync kaput")
        with pytest.raises(ValueError, match="sync kaput") as excinfo:
            bad.get(timeout=10)
        assert isinstance(excinfo.value.__cause__, RemoteTraceback)
        # Held at the barrier until the test lets go: unfinished however slow the
        # machine, and the worker's stop does not wait out a sleep.
        slow = tasks.meet_at_barrier.enqueue()
        with pytest.raises(ResultTimeout):
            slow.get(timeout=0.2)
        slow.refresh()
        assert slow.status in (TaskResultStatus.READY, TaskResultStatus.RUNNING)
    finally:
        tasks.sync_barrier.abort()
        stop.set()
        thread.join(30)


async def test_unknown_exception_class_becomes_task_failed(worker, r):
    from jobs.records import decode, encode

    result = await tasks.boom.aenqueue("x")
    with pytest.raises(ValueError):
        await result.aget(timeout=10)
    store = task_backends["default"].results
    key = store.raw_key(result.id)
    record = decode(r.get(key))
    record["errors"][-1]["exception_class_path"] = "gone_module.GoneError"
    r.set(key, encode(record))
    again = await task_backends["default"].aget_result(result.id)
    with pytest.raises(TaskFailed, match=r"gone_module\.GoneError: x"):
        await again.aget(timeout=1)


def test_get_on_an_expired_result_raises_does_not_exist(r):
    result = tasks.add.enqueue(1, 1)
    r.delete(task_backends["default"].results.raw_key(result.id))
    with pytest.raises(TaskResultDoesNotExist):
        result.get(timeout=1)


async def test_results_can_live_in_a_non_redis_shared_cache():
    """Any shared Django cache works through its own API (here the database cache)."""
    from asgiref.sync import sync_to_async
    from django.conf import settings
    from django.core.management import call_command
    from django.test import override_settings

    from jobs.results import RedisResultStore, ResultStore
    from jobs.testing import adrain

    base = settings.TASKS["default"]
    tasks_setting = {
        "default": {**base, "OPTIONS": {**base["OPTIONS"], "RESULTS_CACHE": "db"}}
    }
    caches = {
        **settings.CACHES,
        "db": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "results",
        },
    }
    with override_settings(CACHES=caches, TASKS=tasks_setting):
        await sync_to_async(call_command)("createcachetable", "results")
        store = task_backends["default"].results
        assert type(store) is ResultStore and not isinstance(store, RedisResultStore)
        result = await tasks.aadd.aenqueue(5, 5)
        assert (await task_backends["default"].aget_result(result.id)).status == "READY"
        await adrain()
        assert await result.aget(timeout=5) == 10
        assert result.status == TaskResultStatus.SUCCESSFUL


@pytest.mark.parametrize("results_cache", [None, "default"])
def test_records_written_by_the_scripts_are_the_caches_own(r, results_cache):
    """Each status, written by the Lua path (enqueue, the worker's RUNNING and
    FINISH, cancel), has the bytes `cache.set()` writes for the same record,
    under the key the cache uses, and `cache.get()` reads it."""
    base = settings.TASKS["default"]
    options = {**base["OPTIONS"], "RESULTS_CACHE": results_cache}
    with override_settings(TASKS={"default": {**base, "OPTIONS": options}}):
        store = default_task_backend.results
        assert store.colocated  # the queue's scripts write the records
        cache = store.cache if results_cache is None else caches[results_cache]
        seen: dict[str, dict] = {}

        def check(result_id: str) -> None:
            record = cache.get(store.key(result_id))
            seen.setdefault(record["status"], record)
            cache.set("copy", record)
            written = r.get(cache.make_key(store.key(result_id)))
            assert written == r.get(cache.make_key("copy"))

        check(tasks.add.enqueue(1, 2).id)  # READY, by ENQUEUE
        cancelled = tasks.add.enqueue(1, 2)
        default_task_backend.cancel(cancelled.id)
        check(cancelled.id)  # FAILED, by CANCEL
        done, failed = tasks.add.enqueue(2, 3), tasks.boom.enqueue("x")
        drain()
        check(done.id)  # SUCCESSFUL, by FINISH
        check(failed.id)  # FAILED, by FINISH
        running = {**store.get(done.id), "id": "running", "status": "RUNNING"}
        key, encoded = store.script_args(running)
        wire = connections.sync_wire(default_task_backend.config)
        scripts.PROGRESS.call(wire, [key], ["running", encoded, store.ttl_ms])
        check("running")  # RUNNING with progress, by PROGRESS
        assert sorted(seen) == ["FAILED", "READY", "RUNNING", "SUCCESSFUL"]


async def test_result_reads_go_through_the_cache_api(r):
    """A cache that wraps RedisCache (instrumentation, a custom KEY_FUNCTION...)
    sees every read of a record the queue's scripts wrote."""
    base = settings.TASKS["default"]
    options = {**base["OPTIONS"], "RESULTS_CACHE": "counting"}
    counting = {
        **settings.CACHES["default"],
        "BACKEND": CountingRedisCache.__module__ + ".CountingRedisCache",
    }
    with override_settings(
        CACHES={**settings.CACHES, "counting": counting},
        TASKS={"default": {**base, "OPTIONS": options}},
    ):
        assert default_task_backend.results.colocated
        result = await tasks.add.aenqueue(2, 3)
        await adrain()
        calls.clear()
        assert (await default_task_backend.aget_result(result.id)).return_value == 5
        await result.arefresh()
        default_task_backend.results.get_many([result.id])
        assert calls == {"get": 2, "get_many": 1}


def test_celerys_ready_is_refresh_then_is_finished():
    """The README's "From Celery" row for `result.ready()`."""
    result = tasks.add.enqueue(2, 3)
    result.refresh()
    assert not result.is_finished
    drain()
    assert not result.is_finished  # a result object is a snapshot
    result.refresh()
    assert result.is_finished and result.return_value == 5
