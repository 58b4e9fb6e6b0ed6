"""The heartbeat: lease renewals in order with the worker's other writes, and
the index of live workers."""

from __future__ import annotations

import asyncio
import logging

import pytest
from django.tasks import task_backends

from jobs.redis.keys import IN_PROGRESS_KEY_PREFIX, WORKER_KEY_PREFIX, WORKERS_KEY
from jobs.redis.scripts import now_ms
from jobs.worker import JobsWorker
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def worker():
    worker = JobsWorker(task_backends["default"], handle_signals=False)
    worker.connect()
    yield worker
    await worker.close()


def lease_key(job_id: str) -> str:
    return IN_PROGRESS_KEY_PREFIX + job_id


async def claim(worker, count=1):
    for i in range(count):
        await tasks.aadd.aenqueue(i, 1)
    await asyncio.sleep(0.002)  # scores carry µs: let the last one come due
    claimed, _ = await worker.claimer.claim(count)
    assert len(claimed) == count
    for job in claimed:  # as JobsWorker.start() records them; this test's task
        worker.running[job.id] = (job, asyncio.current_task())  # stands for theirs
    return claimed


async def test_a_job_finishing_as_leases_are_renewed_is_not_reported_lost(
    worker, r, caplog
):
    [claimed] = await claim(worker)
    outcome = await worker.recorder.outcome_of(claimed)
    persist = asyncio.ensure_future(worker.recorder.persist(claimed, outcome))
    while r.exists(lease_key(claimed.id)):  # FINISH has run in Redis
        await asyncio.sleep(0.001)
    with caplog.at_level(logging.WARNING, logger="jobs.worker"):
        await worker.heartbeat.renew_leases(now_ms())  # the job is still running
    await persist
    assert "lost the lease" not in caplog.text


async def test_renewal_extends_our_lease_and_reports_one_taken_over(worker, r, caplog):
    ours, taken = await claim(worker, 2)
    r.pexpire(lease_key(ours.id), 1000)
    r.set(lease_key(taken.id), "another-worker")
    with caplog.at_level(logging.WARNING, logger="jobs.worker"):
        await worker.heartbeat.renew_leases(now_ms())
    assert r.pttl(lease_key(ours.id)) > 1000
    assert f"lost the lease of job {taken.id}" in caplog.text
    assert f"lost the lease of job {ours.id}" not in caplog.text


async def test_a_beat_forgets_dead_workers_and_keeps_described_ones(worker, r):
    long_ago = now_ms() - 3_600_000
    r.zadd(
        WORKERS_KEY, {"h:1:dead": long_ago, "h:2:slow": long_ago, "h:3:new": now_ms()}
    )
    r.hset(WORKER_KEY_PREFIX + "h:2:slow", "pid", 2)  # a long LEASE: still described
    await worker.heartbeat.register()
    await worker.heartbeat.prune_workers()
    kept = {m.decode() for m in r.zrange(WORKERS_KEY, 0, -1)}
    assert kept == {"h:2:slow", "h:3:new", worker.worker_id}


async def test_a_claim_comes_after_the_writes_queued_before_it(worker, r):
    [claimed] = await claim(worker)
    # Handed back (as a shutdown does), then claimed: the claim rides the same
    # pipeline, behind the RETRY, so it finds the job due again.
    back = asyncio.ensure_future(worker.recorder.hand_back(claimed))
    await asyncio.sleep(0)  # the RETRY is queued on the batcher
    again, _ = await worker.claimer.claim(1)
    await back
    assert [job.id for job in again] == [claimed.id]
