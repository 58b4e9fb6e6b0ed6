"""A `--processes` supervisor that dies takes its worker processes with it:
they drain (running jobs finish or are handed back) and exit, instead of
consuming on as orphans beside a restarted supervisor's children.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from jobs.redis.keys import WORKERS_KEY
from tests import tasks
from tests.servers import wait_until, worker_env

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]

FAST = json.dumps({"LEASE": 2})


def runs(client, key: str) -> int:
    return int(client.get(f"test:runs:{key}") or 0)


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def leftovers() -> Iterator[list[psutil.Process]]:
    """Processes this test started indirectly; killed if still there at the end."""
    processes: list[psutil.Process] = []
    yield processes
    for process in processes:
        if not gone(process):
            process.kill()


def test_sigkill_of_the_supervisor_drains_and_stops_its_children(
    worker_process, r, leftovers
):
    supervisor = worker_process("-p", "2", "-c", "4", JOBS_TEST_OPTIONS=FAST)
    results: list[Any] = [tasks.counted.enqueue(f"o{i}", 1.5) for i in range(6)]
    wait_until(lambda: all(runs(r, f"o{i}") for i in range(6)), what="6 running")
    children = psutil.Process(supervisor.proc.pid).children()
    leftovers.extend(children)
    assert len(children) == 2
    supervisor.signal(signal.SIGKILL)
    killed_at = time.monotonic()
    supervisor.wait(5)
    wait_until(lambda: all(map(gone, children)), timeout=20, what="the children")
    print(
        "[measured] supervisor SIGKILLed with 6 x 1.5 s jobs running: children "
        f"drained and exited {time.monotonic() - killed_at:.2f} s after"
    )
    for i, result in enumerate(results):
        result.refresh()
        assert result.status == "SUCCESSFUL"  # finished within the grace period
        assert runs(r, f"o{i}") == 1
    assert r.zcard(WORKERS_KEY) == 0  # each unregistered as it left
    assert "is gone: draining, then exiting" in supervisor.output()


# The child (grandchild of the test): the fallback where the kernel does not tell.
FOLLOWER = """
import os, signal, sys, time
import django
django.setup()
from jobs.worker import supervisor
parent = os.getpid()
if os.fork() == 0:
    def stopped(signum, frame):
        print("SIGTERM", flush=True)
        os._exit(0)
    signal.signal(signal.SIGTERM, stopped)
    supervisor.PARENT_POLL = 0.05
    supervisor.watch_parent(parent, told=False)
    time.sleep(30)
    os._exit(1)
time.sleep(30)
"""


def test_without_the_kernel_s_help_the_child_polls_and_stops_itself(tmp_path):
    out = tmp_path / "follower.log"
    with out.open("wb") as log:
        parent = subprocess.Popen(
            [sys.executable, "-c", FOLLOWER],
            env=worker_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    wait_until(lambda: psutil.Process(parent.pid).children(), what="the fork")
    child = psutil.Process(parent.pid).children()[0]
    parent.kill()
    parent.wait(5)
    try:
        wait_until(lambda: gone(child), timeout=10, what="the child to stop")
    finally:
        if not gone(child):
            child.kill()
    assert "SIGTERM" in out.read_text()
