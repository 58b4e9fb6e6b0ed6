"""A coroutine that blocks the worker's event loop past its lease runs once:
the watchdog thread names it and keeps its lease while the loop cannot."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests import tasks
from tests.servers import wait_until

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]

FAST = json.dumps({"LEASE": 2})


def test_a_job_blocking_the_loop_past_its_lease_runs_once(worker_process, r):
    workers = [worker_process(JOBS_TEST_OPTIONS=FAST) for _ in range(2)]
    warm: Any = tasks.add.enqueue(1, 1)
    assert warm.get(timeout=20) == 2  # both up (the idle one takes lapsed leases)
    result: Any = tasks.blocks_loop.enqueue("blocker", 5)  # 2.5 leases, no await
    assert result.get(timeout=20) == "blocker"
    assert int(r.get("test:runs:blocker")) == 1
    assert result.attempts == 1

    def logs() -> str:
        return "".join(worker.output() for worker in workers)

    wait_until(lambda: "event loop ran again after" in logs())
    assert "event loop blocked for" in logs()
    assert f"by job {result.id} (tests.tasks.blocks_loop)" in logs()
    assert "tests/tasks.py" in logs()  # the line it blocks at
