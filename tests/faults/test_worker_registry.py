"""Killed workers never unregister; the live ones forget them (`jobs:workers`
is read whole by every dashboard refresh and metrics scrape)."""

from __future__ import annotations

import json
import signal

import pytest

from jobs.redis.keys import WORKERS_KEY
from tests.servers import wait_until

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]

FAST = json.dumps({"LEASE": 1})  # descriptions expire 2 s after the last beat


def test_killed_workers_are_pruned(worker_process, r):
    doomed = [worker_process(JOBS_TEST_OPTIONS=FAST) for _ in range(3)]
    wait_until(lambda: r.zcard(WORKERS_KEY) == 3, what="3 registered workers")
    for worker in doomed:
        worker.signal(signal.SIGKILL)
        worker.wait(5)
    assert r.zcard(WORKERS_KEY) == 3  # nobody left to unregister them
    worker_process(JOBS_TEST_OPTIONS=FAST)
    wait_until(lambda: r.zcard(WORKERS_KEY) == 1, timeout=15, what="one left")
    [(live, _)] = r.zrange(WORKERS_KEY, 0, -1, withscores=True)
    assert r.exists(b"jobs:worker:" + live)
