"""Redis Sentinel: SIGKILL the master while jobs flow and a schedule ticks.

One master, two replicas and three sentinels on loopback (tests/servers.py
SentinelSet). Jobs and schedule ticks log their runs to files, not to Redis: a
failover may lose what the dead master had not yet passed on.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.cache import caches
from django.tasks import default_task_backend
from django.test import override_settings

from jobs import QueueUnavailable
from jobs.redis import sentinel
from jobs.redis.keys import JOB_KEY_PREFIX, QUEUE_KEY_PREFIX, RECENT_KEY
from jobs.schedules.models import Schedule
from tests import tasks
from tests.servers import SentinelSet, settings_for, wait_until

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]

JOBS = 5000
KILL_AT = 1000  # jobs acknowledged before the master is killed, mid-enqueue
# Enqueue returns once a replica has the job; 2 s leases bring back the jobs
# that were running on the dead master at once. JOBS_TEST_WAIT_REPLICAS=0
# measures what is lost without WAIT (docs/deployment.md).
WAIT = int(os.environ.get("JOBS_TEST_WAIT_REPLICAS", "1"))
OPTIONS = {"WAIT_REPLICAS": WAIT, "WAIT_TIMEOUT": 1, "LEASE": 2}


@pytest.fixture
def sentinels():
    sentinel_set = SentinelSet()
    sentinel_set.start()
    yield sentinel_set
    sentinel_set.stop()


def ran(path: Path) -> list[tuple[str, float]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [(job_id, float(at)) for job_id, at in (line.split() for line in lines)]


def kill(sentinels: SentinelSet, died: list[float]) -> None:
    sentinels.master.stop(signal.SIGKILL)  # returns once the process is gone
    died.append(time.time())


def queued(sentinels: SentinelSet) -> int:
    client = redis.Redis(port=sentinels.master_port())
    try:
        return int(client.zcard(QUEUE_KEY_PREFIX + "default"))
    finally:
        client.close()


def enqueue_until_acknowledged(task: Any, *args: Any) -> tuple[str, int]:
    """Enqueue one job, retrying while Redis fails over; its id and the refusals."""
    refused = 0
    while True:
        try:
            return task.enqueue(*args).id, refused
        except QueueUnavailable:  # NotReplicated included: not acknowledged
            refused += 1
            time.sleep(0.05)


def test_sigkill_of_the_master_loses_no_acknowledged_job(
    sentinels, worker_process, tmp_path
):
    runs, ticks = tmp_path / "runs.log", tmp_path / "ticks.log"
    config = settings_for(sentinels.url)
    config["TASKS"]["default"]["OPTIONS"].update(OPTIONS)  # type: ignore[index]
    with override_settings(**config):
        Schedule.objects.create(
            name="tick",
            task="tests.tasks.logged",
            kwargs={"path": str(ticks)},
            interval=timedelta(seconds=1),
        )
        env = {"REDIS_URL": sentinels.url, "JOBS_TEST_OPTIONS": json.dumps(OPTIONS)}
        workers = [worker_process("-c", "50", **env) for _ in range(2)]
        wait_until(lambda: len(ran(ticks)) >= 2, timeout=20, what="two ticks")
        old_master = sentinels.master.port
        acknowledged, refused, died = [], 0, []
        for i in range(JOBS):
            if i == KILL_AT:  # from another thread: enqueues are in flight
                killer = threading.Thread(target=kill, args=[sentinels, died])
                killer.start()
            job_id, refusals = enqueue_until_acknowledged(tasks.logged, str(runs))
            acknowledged.append(job_id)
            refused += refusals
        killer.join()
        killed_at = died[0]
        if WAIT:
            wait_until(
                lambda: set(acknowledged) <= {job_id for job_id, _ in ran(runs)},
                timeout=60,
                what="every acknowledged job to run",
            )
        else:  # some may never run: wait until the queue is empty instead
            wait_until(lambda: queued(sentinels) == 0, timeout=60, what="no job left")
        ticks_before = len(ran(ticks))
        wait_until(lambda: len(ran(ticks)) >= ticks_before + 2, what="two more ticks")

    new_master = sentinels.master_port()
    assert new_master != old_master
    client = next(r for r in sentinels.replicas if r.port == new_master).client()
    after = client.zrangebyscore(RECENT_KEY, killed_at * 1000, "+inf", 0, 1, True)
    first = after[0][1] / 1000  # the first job finished on the new master
    runs_per_job = Counter(job_id for job_id, _ in ran(runs))
    tick_runs = Counter(job_id for job_id, _ in ran(ticks))
    tick_times = sorted(int(job_id.rsplit(":", 1)[1]) for job_id in tick_runs)
    gaps = [b - a for a, b in itertools.pairwise(tick_times)]
    lost = set(acknowledged) - set(runs_per_job)
    print(
        f"[measured] Sentinel failover under {JOBS} jobs (WAIT {WAIT}): first job "
        f"finished on the new master {first - killed_at:.1f} s after the SIGKILL; "
        f"{refused} enqueue attempts refused meanwhile; "
        f"{sum(n - 1 for n in runs_per_job.values())} jobs ran twice; "
        f"{len(tick_runs)} ticks, longest gap {max(gaps) / 1000:.0f} s; "
        f"{len(lost)} acknowledged jobs lost"
    )
    assert all(w.proc.poll() is None for w in workers)  # never restarted
    assert not lost or not WAIT
    assert max(tick_runs.values()) == 1  # no tick ran twice
    assert min(gaps) >= 1000  # one run per tick time


async def test_web_and_workers_follow_a_planned_failover(sentinels, worker_process):
    """SENTINEL FAILOVER: the old master stays up, and a master for a while;
    connections made before must leave it within RECHECK, for the new one."""
    config = settings_for(sentinels.url)
    config["TASKS"]["default"]["OPTIONS"].update(WAIT_REPLICAS=1)  # type: ignore[index]
    with override_settings(**config):
        worker_process("-c", "10", REDIS_URL=sentinels.url)
        assert tasks.add.enqueue(1, 2).get(timeout=10) == 3
        caches["default"].set("before", "kept")
        old_master = sentinels.master.port
        sentinels.sentinel(sentinels.sentinels[0][0]).execute_command(
            "SENTINEL", "FAILOVER", sentinels.service
        )
        wait_until(lambda: sentinels.master_port() != old_master, what="a new master")
        time.sleep(sentinel.RECHECK)  # then every pooled connection asks again
        job_id, _ = enqueue_until_acknowledged(tasks.add, 2, 3)
        assert tasks.add.get_result(job_id).get(timeout=10) == 5
        result = await tasks.aadd.aenqueue(3, 4)
        assert await result.aget(timeout=10) == 7
        assert caches["default"].get("before") == "kept"
        caches["default"].set("after", "written")
    new_master = sentinels.master_port()
    client = next(r for r in sentinels.replicas if r.port == new_master).client()
    assert client.get(default_task_backend.results.raw_key(result.id))
    assert client.get("cache:1:after")


async def test_pooled_connections_leave_a_server_the_sentinels_no_longer_name(
    sentinels,
):
    """The old master still up and still a master (as for a while after a planned
    failover): writes must go where the sentinels say, within RECHECK."""
    promoted = sentinels.replicas[0]
    promoted.client().replicaof("NO", "ONE")
    with override_settings(**settings_for(sentinels.url)):
        before = [tasks.add.enqueue(1, 2), await tasks.aadd.aenqueue(1, 2)]
        for port, _ in sentinels.sentinels:  # the sentinels now name `promoted`
            client = sentinels.sentinel(port)
            client.sentinel_remove(sentinels.service)
            client.sentinel_monitor(sentinels.service, "127.0.0.1", promoted.port, 2)
        time.sleep(sentinel.RECHECK)
        after = [tasks.add.enqueue(2, 3), await tasks.aadd.aenqueue(2, 3)]
    old = sentinels.master.client()
    assert all(old.exists(JOB_KEY_PREFIX + result.id) for result in before)
    assert not any(old.exists(JOB_KEY_PREFIX + result.id) for result in after)
    assert all(promoted.client().exists(JOB_KEY_PREFIX + r.id) for r in after)
