"""What a `kill -9` of a Redis without AOF loses (docs/guarantees.md): the
jobs it held that had not run, and the results of those that had. Redis keeps
everything in memory; without an append-only file nothing survives the kill.
This documents the loss, it does not prevent it: run Redis with AOF.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from django.test import override_settings

from tests import tasks
from tests.servers import settings_for, wait_until

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]

JOBS = 600
SECONDS = 0.2  # each job's run


def test_kill_9_without_aof_loses_queued_jobs_and_results(
    own_redis, worker_process, tmp_path: Path
):
    server = own_redis()  # --save "" --appendonly no: no persistence at all
    ran = tmp_path / "ran.log"
    with override_settings(**settings_for(server.url)):
        worker_process("-c", "20", REDIS_URL=server.url)
        acknowledged = [
            tasks.ran_then_sleeps.enqueue(str(ran), SECONDS).id for _ in range(JOBS)
        ]
        wait_until(lambda: ran.exists() and len(ran.read_text().split()) >= 100)
        server.stop(signal.SIGKILL)
        server.start()  # empty: what it held is gone
        time.sleep(2)  # the worker finishes what it was running, writes into the void
        ran_ids = set(ran.read_text().split())
        client = server.client()
        with_result = {
            job_id
            for job_id in acknowledged
            if client.exists(f"jobs:result:{job_id}") or client.keys(f"*:{job_id}")
        }
    never_ran = [j for j in acknowledged if j not in ran_ids]
    lost_results = [j for j in acknowledged if j in ran_ids and j not in with_result]
    print(
        f"[measured] kill -9 of a Redis without AOF, {JOBS} acknowledged jobs of "
        f"{SECONDS} s, worker -c 20: {len(never_ran)} never ran, "
        f"{len(lost_results)} ran but lost their results"
    )
    assert never_ran and lost_results  # both losses happen; AOF prevents them
