"""What a worker logs about leases and threads is what happened."""

from __future__ import annotations

import json
import signal

import pytest
from django.tasks import default_task_backend
from django.test import override_settings

from tests import tasks
from tests.servers import settings_for, wait_until

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]


def status(result_id: str) -> str | None:
    record = default_task_backend.results.get(result_id)
    return None if record is None else record["status"]


def runs(client, key: str) -> int:
    return int(client.get(f"test:runs:{key}") or 0)


def test_a_lease_redis_forgot_is_not_said_to_be_another_workers(
    own_redis, worker_process
):
    server = own_redis()  # no persistence: a restart forgets every lease
    with override_settings(**settings_for(server.url)):
        worker = worker_process(REDIS_URL=server.url)
        result = tasks.asleeper.enqueue(2)
        wait_until(
            lambda: "RUNNING" in str(server.client().get(f":1:jobs:result:{result.id}"))
        )
        server.stop()
        server.start()
        wait_until(lambda: "finished after its lease" in worker.output(), timeout=20)
        output = worker.output()
        assert f"job {result.id} finished after its lease had lapsed" in output
        assert "no other worker held it" in output
        assert "passed to" not in output


def test_a_worker_says_how_many_plain_functions_it_leaves_running(worker_process, r):
    quick = worker_process("-c", "50")
    done = [tasks.counted_sync.enqueue(f"quick{i}", 0.2) for i in range(50)]
    for result in done:
        result.get(timeout=20)
    quick.signal(signal.SIGTERM)  # 50 pool threads, none running a job
    assert quick.wait(15) == 0
    assert "still running" not in quick.output()
    stuck = worker_process("--grace", "1", JOBS_TEST_OPTIONS=json.dumps({"LEASE": 2}))
    tasks.counted_sync.enqueue("slow", 30)
    wait_until(lambda: runs(r, "slow") == 1)
    stuck.signal(signal.SIGTERM)
    assert stuck.wait(15) == 0
    assert "exiting with 1 plain-function job(s) still running" in stuck.output()
