"""Per-job options with a real `jobs_worker` process: priority (jobs queued
while no worker runs are taken highest first, FIFO among equals), expiry,
unique jobs, rate limits."""

from __future__ import annotations

import pytest

from tests import tasks
from tests.servers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_process_takes_jobs_by_priority(worker_process, r):
    plan = [0, -10, 3, 3, 0, 100, -10, 3]
    for i, priority in enumerate(plan):
        tasks.in_order.using(priority=priority).enqueue(f"{priority}/{i}")
    worker_process("-c", "1")
    wait_until(lambda: r.llen("test:order") == len(plan), what="every job to run")
    expected = sorted(range(len(plan)), key=lambda i: (-plan[i], i))
    assert [x.decode() for x in r.lrange("test:order", 0, -1)] == [
        f"{plan[i]}/{i}" for i in expected
    ]


def test_a_worker_process_records_an_expired_job_failed(worker_process, r):
    expired = tasks.in_order.using(expires=0.2).enqueue("expired")
    wait_until(lambda: r.exists(f"arq:job:{expired.id}") == 0, what="the expiry")
    worker_process()
    fresh = tasks.in_order.enqueue("fresh")
    assert fresh.get(timeout=20) == "fresh"
    wait_until(lambda: expired.refresh() or expired.status == "FAILED")
    assert expired.errors[-1].exception_class_path == "jobs.exceptions.JobExpired"
    assert [x.decode() for x in r.lrange("test:order", 0, -1)] == ["fresh"]


def test_a_worker_process_releases_a_unique_key_when_its_job_ends(worker_process, r):
    unique = tasks.counted.using(unique=True)
    first = unique.enqueue("unique", 0.3)
    worker_process()
    wait_until(lambda: r.get("test:runs:unique") == b"1", what="the job to start")
    assert unique.enqueue("unique", 0.3).id == first.id  # running: the same job
    assert first.get(timeout=20) == "unique"
    second = unique.enqueue("unique", 0.3)
    assert second.id != first.id
    assert second.get(timeout=20) == "unique"


def test_three_worker_processes_keep_a_task_within_its_rate_limit(worker_process, r):
    count = 31  # tests.tasks.rated: 10/s, so about 3 s
    for i in range(count):
        tasks.rated.enqueue(f"r{i}")
    for _ in range(3):
        worker_process("-c", "10")
    wait_until(lambda: r.llen("test:rated") == count, timeout=30, what="every job")
    rows = [row.decode().split() for row in r.lrange("test:rated", 0, -1)]
    assert len({label for label, _ in rows}) == count  # each ran once
    starts = sorted(float(at) for _, at in rows)
    rate = (count - 1) / (starts[-1] - starts[0])
    busiest = max(sum(1 for t in starts if s <= t < s + 1) for s in starts)
    print(f"[measured] 3 workers, limit 10/s: {rate:.2f} jobs/s, {busiest} in 1 s")
    assert 9.0 <= rate <= 11.0  # the limit +-10 %
    # At most N + 1 starts granted per period (GCRA's tolerance of one turn),
    # recorded a moment after they were granted.
    assert busiest <= 12
