"""A Redis outage is the worker's problem, not the job's: progress reports made
while Redis is away are kept and written later, never raised into the task."""

from __future__ import annotations

import time

import pytest
from django.tasks import default_task_backend
from django.test import override_settings

from tests import tasks
from tests.servers import settings_for, wait_until

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]


def reported(result_id: str) -> bool:
    record = default_task_backend.results.get(result_id)
    return record is not None and bool(record.get("progress"))


def test_a_redis_outage_does_not_fail_jobs_that_report_progress(
    own_redis, worker_process
):
    server = own_redis("--appendonly", "yes", "--appendfsync", "everysec")
    with override_settings(**settings_for(server.url)):
        worker = worker_process("-c", "4", REDIS_URL=server.url)
        results = [tasks.progressing.enqueue(60, 0.1) for _ in range(2)]
        results += [tasks.progressing_sync.enqueue(60, 0.1) for _ in range(2)]
        wait_until(lambda: all(reported(result.id) for result in results))
        server.stop()  # 3 s away, while every job reports ten times a second
        time.sleep(3)
        server.start()
        for result in results:
            assert result.get(timeout=30) == 60
            assert result.progress["done"] == 60
            assert result.attempts == 1
        assert worker.proc.poll() is None
        output = worker.output()
        assert "progress not written" in output
        assert "progress written again" in output
