"""Plain functions that outlive their timeout (a thread cannot be stopped) do
not take capacity: every job the worker holds starts at once, a timeout is
only what a job ran into, and coroutines keep flowing beside stuck threads.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.tasks import default_task_backend

from tests import tasks
from tests.servers import wait_until

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]


def runs(client, key: str) -> int:
    return int(client.get(f"test:runs:{key}") or 0)


def status(result: Any) -> str:
    record = default_task_backend.results.get(result.id)
    return record["status"] if record else "-"


def test_timed_out_functions_do_not_steal_capacity(worker_process, r):
    worker_process("-c", "4")
    stuck: list[Any] = [tasks.stuck_sync.enqueue(f"s{i}") for i in range(8)]
    wait_until(
        lambda: all(status(s) == "FAILED" for s in stuck), timeout=15, what="8 FAILED"
    )
    for i, result in enumerate(stuck):
        result.refresh()
        assert result.errors[-1].exception_class_path == "builtins.TimeoutError"
        assert runs(r, f"s{i}") == 1  # each ran into its own timeout
    # Eight threads still sleep; quick functions and coroutines run now.
    quick: list[Any] = [tasks.counted_sync.enqueue(f"q{i}") for i in range(4)]
    quick += [tasks.counted.enqueue(f"c{i}") for i in range(4)]
    for result in quick:
        assert result.get(timeout=10) in {f"q{i}" for i in range(4)} | {
            f"c{i}" for i in range(4)
        }
    assert not any(r.exists(f"test:ended:s{i}") for i in range(8))  # still stuck


def test_a_worker_out_of_threads_leaves_jobs_to_others(worker_process, r):
    worker_process("-c", "1")  # room for 3 stuck threads beside its one
    stuck: list[Any] = [tasks.stuck_sync.enqueue(f"t{i}") for i in range(4)]
    wait_until(lambda: all(status(s) == "FAILED" for s in stuck), timeout=15)
    waiting: Any = tasks.counted_sync.enqueue("next")
    other = worker_process("-c", "1")
    assert waiting.get(timeout=10) == "next"  # no lease held on it by the first
    assert other.output()  # the second worker took it (it logs its start)
    waiting.refresh()
    assert waiting.worker_ids[-1].split(":")[1] == str(other.proc.pid)
