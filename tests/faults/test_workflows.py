"""A chord's callback runs exactly once: with retried members, a worker SIGKILLed
mid-member, and several worker processes. Runs are counted in Redis
(`test:runs:<key>`) across processes, kills and restarts."""

from __future__ import annotations

import json
import signal

import pytest

from jobs import chord, group
from tests import tasks
from tests.servers import wait_until

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]

FAST = json.dumps({"LEASE": 2})  # worker processes: 2 s leases


def runs(client, key: str) -> int:
    return int(client.get(f"test:runs:{key}") or 0)


def test_chord_callback_once_with_retried_members_on_three_processes(worker_process, r):
    members = [
        tasks.flaky_member.bind(f"m{i}", i)
        if i % 3 == 0
        else tasks.member.bind(f"m{i}", i, 0.05)
        for i in range(30)
    ]
    worker_process("--processes", "3", "-c", "4")
    # All three up before the jobs come, so that they share them.
    wait_until(lambda: r.zcard("jobs:workers") == 3, what="three worker processes")
    result = chord(group(*members), tasks.tally.bind("cb")).enqueue()
    assert result.get(timeout=60) == sum(range(30))
    assert runs(r, "cb") == 1
    assert json.loads(r.lrange("test:tally:cb", 0, -1)[0]) == list(range(30))
    assert all(runs(r, f"m{i}") == 2 for i in range(0, 30, 3))  # retried once
    workers = {
        tasks.member.get_backend().get_result(i).worker_ids[-1].rsplit(":", 1)[0]
        for i in result.step_ids[:-1]
    }
    assert len(workers) > 1  # the members ran in more than one process


def test_chord_callback_once_after_a_worker_is_sigkilled_mid_member(worker_process, r):
    members = [tasks.member.bind(f"k{i}", i, 2) for i in range(5)]
    worker = worker_process("-c", "10", JOBS_TEST_OPTIONS=FAST)
    result = chord(group(*members), tasks.tally.bind("killed")).enqueue()
    wait_until(lambda: all(runs(r, f"k{i}") for i in range(5)), what="all started")
    worker.signal(signal.SIGKILL)
    worker.wait(5)
    worker_process("-c", "10", JOBS_TEST_OPTIONS=FAST)
    worker_process("-c", "10", JOBS_TEST_OPTIONS=FAST)
    assert result.get(timeout=30) == sum(range(5))
    assert [runs(r, f"k{i}") for i in range(5)] == [2] * 5  # every one re-ran
    assert runs(r, "killed") == 1
