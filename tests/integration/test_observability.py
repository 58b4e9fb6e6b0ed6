"""What the dashboard and the metrics read: recent history, workers, counters, log context."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from django.tasks import task_backends

from jobs.logs import JobContextFilter
from jobs.redis import connections, scripts
from jobs.testing import adrain
from jobs.worker import JobsWorker
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


async def test_finished_jobs_are_indexed_by_end_time(r):
    ok = await tasks.add.aenqueue(1, 1)
    bad = await tasks.boom.aenqueue()
    await adrain()
    recent = [m.decode() for m in r.zrange("jobs:recent", 0, -1)]
    assert set(recent) == {ok.id, bad.id}


async def test_the_heartbeat_trims_the_index_by_age_and_length(r):
    kept = await tasks.add.aenqueue(1, 1)
    await adrain()
    stale = (time.time() - 86_400 - 60) * 1000  # older than RESULT_TTL (a day)
    r.zadd("jobs:recent", {"stale-a": stale, "stale-b": stale})
    worker = JobsWorker(task_backends["default"], handle_signals=False)
    running = asyncio.create_task(worker.async_run())
    try:
        for _ in range(200):  # the first heartbeat comes at once
            if r.zcard("jobs:recent") == 1:
                break
            await asyncio.sleep(0.02)
    finally:
        worker.stop()
        await running
        await worker.close()
    assert [m.decode() for m in r.zrange("jobs:recent", 0, -1)] == [kept.id]
    # The length cap keeps the newest entries.
    r.zadd("jobs:recent", {f"n{i}": 1_000 + i for i in range(5)})
    wire = connections.sync_wire(task_backends["default"].config)
    scripts.TRIM_RECENT.call(wire, ["jobs:recent"], [0, 3])
    assert [m.decode() for m in r.zrange("jobs:recent", 0, -1)] == ["n3", "n4", kept.id]


async def test_counts_and_durations_reach_redis(r):
    for i in range(3):
        await tasks.add.aenqueue(i, i)
    await tasks.boom.aenqueue()
    await adrain()  # flushed when the worker stops
    metrics = {k.decode(): v.decode() for k, v in r.hgetall("jobs:metrics").items()}
    assert metrics["count|tests.tasks.add|SUCCESSFUL"] == "3"
    assert metrics["count|tests.tasks.boom|FAILED"] == "1"
    buckets = {
        k: int(v) for k, v in metrics.items() if k.startswith("bucket|tests.tasks.add|")
    }
    assert sum(buckets.values()) == 3  # one bucket per run
    assert buckets.get("bucket|tests.tasks.add|+Inf", 0) == 0  # none took over 300 s
    assert float(metrics["sum|tests.tasks.add"]) >= 0


async def test_live_workers_register_their_running_jobs(r):
    worker = JobsWorker(task_backends["default"], handle_signals=False, concurrency=3)
    running = asyncio.create_task(worker.async_run())
    try:
        result = await tasks.asleeper.aenqueue(1)
        for _ in range(500):  # started: a fixed sleep missed it on a busy machine
            if result.id in worker.running:
                break
            await asyncio.sleep(0.01)
        await worker.heartbeat.register()
        assert r.zscore("jobs:workers", worker.worker_id) is not None
        info = {
            k.decode(): v.decode()
            for k, v in r.hgetall(f"jobs:worker:{worker.worker_id}").items()
        }
        assert info["jobs"] == result.id
        assert info["queues"] == "default,reports,high,low"
        assert info["concurrency"] == "3"
    finally:
        worker.stop()
        await running
        await worker.close()
    assert r.zscore("jobs:workers", worker.worker_id) is None


async def test_logs_inside_a_job_carry_its_id_and_task(caplog):
    caplog.handler.addFilter(JobContextFilter())
    result = await tasks.boom.aenqueue("logged")
    with caplog.at_level(logging.WARNING, logger="jobs.worker"):
        await adrain()
    failed = [rec for rec in caplog.records if "attempt 1 failed" in rec.getMessage()]
    assert failed
    assert failed[0].job_id == result.id
    assert failed[0].task == "tests.tasks.boom"
    outside = logging.LogRecord("x", logging.INFO, "", 0, "m", None, None)
    JobContextFilter().filter(outside)
    assert outside.job_id == "-"
