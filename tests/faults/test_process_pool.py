"""`jobs_worker --pool processes`: plain functions in child processes, killed
past their timeout (a thread cannot be), the worker serving on."""

from __future__ import annotations

import contextlib
import signal
import time
from typing import Any

import psutil
import pytest
from django.tasks import default_task_backend

from jobs import TaskFailed
from jobs.redis.keys import IN_PROGRESS_KEY_PREFIX
from tests import tasks
from tests.servers import wait_until

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]


def runs(client, key: str) -> int:
    return int(client.get(f"test:runs:{key}") or 0)


def alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def finished(result: Any) -> bool:
    record = default_task_backend.results.get(result.id)
    return record is not None and record["status"] in ("SUCCESSFUL", "FAILED")


def test_functions_past_their_timeout_are_killed_and_the_worker_serves_on(
    worker_process, r
):
    worker = worker_process("-c", "4", "--pool", "processes")
    assert tasks.add.enqueue(1, 1).get(timeout=20) == 2  # the pool is up
    started = time.monotonic()
    hung: list[Any] = [tasks.hangs.enqueue(f"h{i}") for i in range(20)]
    wait_until(lambda: all(map(finished, hung)), timeout=60, what="20 ended")
    took = time.monotonic() - started
    print(f"[measured] 20 hanging plain functions, timeout 1 s, -c 4: {took:.1f} s")
    for result in hung:
        result.refresh()
    assert {result.status for result in hung} == {"FAILED"}
    ended_by = {result.errors[-1].exception_class_path for result in hung}
    assert ended_by == {"builtins.TimeoutError"}
    assert [runs(r, f"h{i}") for i in range(20)] == [1] * 20
    assert [tasks.add.enqueue(i, i).get(timeout=20) for i in range(8)] == [
        2 * i for i in range(8)
    ]
    descendants = psutil.Process(worker.proc.pid).children(recursive=True)
    assert len(descendants) <= 4 + 2  # 4 children, the fork server, its tracker


def test_a_childs_timeout_counts_from_when_it_starts_the_job(worker_process, r):
    worker = worker_process("-c", "1", "--pool", "processes")
    assert tasks.add.enqueue(1, 1).get(timeout=20) == 2  # the pool is up
    pid = worker.proc.pid
    tree = psutil.Process(pid).children(recursive=True)
    [child] = [p for p in tree if p.ppid() != pid]  # the fork server's child
    child.suspend()  # a child the machine does not schedule for a while
    try:
        result = tasks.hangs.enqueue("late")
        wait_until(lambda: worker_holds(r, result.id), timeout=20, what="claimed")
        time.sleep(2)  # twice the task's timeout, before the child can start it
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):  # killed meanwhile
            child.resume()
    wait_until(lambda: finished(result), timeout=30, what="the job ended")
    result.refresh()
    assert runs(r, "late") == 1  # it started, then its second ran out
    assert result.errors[-1].exception_class_path == "builtins.TimeoutError"


def worker_holds(client, job_id: str) -> bool:
    return client.exists(IN_PROGRESS_KEY_PREFIX + job_id) == 1


def test_values_and_failures_come_back_from_the_child(worker_process):
    worker = worker_process("-c", "2", "--pool", "processes")
    ran_in: Any = tasks.pid_of_runner.enqueue()
    assert ran_in.get(timeout=20) != worker.proc.pid  # in a child, not the worker
    failed: Any = tasks.boom.enqueue("from the child")
    with pytest.raises(ValueError, match="from the child") as raised:
        failed.get(timeout=20)
    assert "in boom" in str(raised.value.__cause__)  # the child's traceback
    returns_set: Any = tasks.returns_set.enqueue()
    with pytest.raises((TypeError, TaskFailed)):
        returns_set.get(timeout=20)
    # Starting the pool left no coroutine behind
    # (before: "RuntimeWarning: coroutine 'to_thread' was never awaited").
    assert "never awaited" not in worker.output()


def test_sigterm_hands_back_a_function_running_in_a_child(worker_process, r):
    worker = worker_process("-c", "2", "--pool", "processes", "--grace", "1")
    result: Any = tasks.counted_sync.enqueue("long", 60)
    wait_until(lambda: runs(r, "long") == 1)
    children = psutil.Process(worker.proc.pid).children(recursive=True)
    worker.signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    result.refresh()
    assert result.status == "READY"  # handed back, not counted as an attempt
    wait_until(lambda: not [c for c in children if alive(c)], what="no child left")


def test_a_sigkilled_worker_leaves_no_child_running_a_job(worker_process, r):
    worker = worker_process("-c", "1", "--pool", "processes")
    tasks.counted_sync.enqueue("orphan", 60)
    wait_until(lambda: runs(r, "orphan") == 1)
    children = psutil.Process(worker.proc.pid).children(recursive=True)
    worker.signal(signal.SIGKILL)
    worker.wait(5)
    wait_until(lambda: not [c for c in children if alive(c)], what="no child left")


def test_cancel_stops_a_plain_function_running_in_a_child(worker_process, r):
    worker_process("-c", "1", "--pool", "processes")
    result: Any = tasks.counted_sync.enqueue("cancelled", 60)
    wait_until(lambda: runs(r, "cancelled") == 1)
    assert default_task_backend.cancel(result.id)
    wait_until(lambda: finished(result), what="the job to end")
    result.refresh()
    assert result.errors[-1].exception_class_path == "jobs.exceptions.JobCancelled"
    assert tasks.add.enqueue(2, 3).get(timeout=20) == 5  # its slot serves on


def test_max_jobs_recycles_the_pool_s_children_not_the_worker(worker_process):
    worker = worker_process("-c", "1", "--pool", "processes", "--max-jobs", "3")
    ran: list[Any] = []
    for _ in range(7):
        result: Any = tasks.pid_of_runner.enqueue()
        result.get(timeout=20)
        ran.append(result)
    children = [result.return_value for result in ran]
    assert [len(set(children[i : i + 3])) for i in (0, 3)] == [1, 1]
    assert len(set(children)) == 3  # 3 jobs a child
    workers = {w.split(":")[1] for result in ran for w in result.worker_ids}
    assert workers == {str(worker.proc.pid)}  # one worker throughout, unsupervised
