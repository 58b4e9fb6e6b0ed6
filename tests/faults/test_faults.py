"""Nothing lost: kill workers and Redis for real and count every run.

Each job INCRs `test:runs:<key>` in Redis when it starts, so runs are counted
across processes, kills and restarts.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from django.tasks import default_task_backend
from django.test import override_settings

from jobs import QueueFull, QueueUnavailable
from tests import tasks
from tests.servers import settings_for, wait_until

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]

FAST = json.dumps({"LEASE": 2})  # worker processes: 2 s leases, heartbeat every 0.7 s


def runs(client, key: str) -> int:
    return int(client.get(f"test:runs:{key}") or 0)


def finished(result_id: str) -> bool:
    record = default_task_backend.results.get(result_id)
    return record is not None and record["status"] in ("SUCCESSFUL", "FAILED")


def test_sigkill_mid_job_loses_nothing_and_recovers_within_the_lease(worker_process, r):
    worker = worker_process("-c", "100", JOBS_TEST_OPTIONS=FAST)
    results = [tasks.counted.enqueue(f"k{i}", 2) for i in range(100)]
    wait_until(
        lambda: all(runs(r, f"k{i}") for i in range(100)), what="all 100 started"
    )
    worker.signal(signal.SIGKILL)
    worker.wait(5)
    killed_at = time.monotonic()
    worker_process("-c", "100", JOBS_TEST_OPTIONS=FAST)
    wait_until(lambda: all(finished(res.id) for res in results), timeout=30)
    recovered_in = time.monotonic() - killed_at
    print(
        f"[measured] SIGKILL of a worker running 100 x 2 s jobs: all done {recovered_in:.1f} s after the kill"
    )
    for i, result in enumerate(results):
        result.refresh()
        assert result.status == "SUCCESSFUL", result.errors
        assert runs(r, f"k{i}") in (1, 2)  # at most one extra run
    assert sum(runs(r, f"k{i}") for i in range(100)) == 200  # every one was cut short
    # A 2 s lease plus the 2 s job, not arq's job timeout + 10 s (310 s).
    assert recovered_in < 15


def test_a_job_longer_than_its_lease_runs_once_on_healthy_workers(worker_process, r):
    worker_process(JOBS_TEST_OPTIONS=FAST)
    worker_process(JOBS_TEST_OPTIONS=FAST)
    result = tasks.counted.enqueue("long", 7)  # 3.5 leases long
    assert result.get(timeout=20) == "long"
    assert runs(r, "long") == 1
    assert result.attempts == 1


def test_poison_job_fails_after_max_attempts_and_others_keep_flowing(worker_process, r):
    supervisor = worker_process("--processes", "2", "-c", "4")
    poison = tasks.poison.enqueue("p")
    others = [tasks.counted.enqueue(f"o{i}", 0.05) for i in range(20)]
    wait_until(lambda: finished(poison.id), timeout=30, what="the poison job to fail")
    poison.refresh()
    assert poison.status == "FAILED"
    assert poison.errors[-1].exception_class_path == "jobs.exceptions.AttemptsExhausted"
    assert runs(r, "p") == 2  # max_attempts=2: tried twice, never a third time
    for result in others:
        assert result.get(timeout=20).startswith("o")
    assert supervisor.proc.poll() is None
    assert "died (exit -9)" in supervisor.output()


def test_a_dead_workers_prioritised_job_is_released_at_once(worker_process, r):
    # LEASE is 30 s: within 20 s, only the supervisor's release of the dead
    # child's jobs (recovery.RECOVER, which visits the priority queues) runs it
    # again.
    worker_process("--processes", "2")
    poison = tasks.poison.using(priority=9).enqueue("prioritised")
    wait_until(lambda: finished(poison.id), timeout=20, what="the poison job to fail")
    assert runs(r, "prioritised") == 2
    poison.refresh()
    assert poison.errors[-1].exception_class_path == "jobs.exceptions.AttemptsExhausted"


def test_a_unique_job_holds_its_key_through_crashes_until_it_fails(worker_process, r):
    unique = tasks.poison.using(unique=True)
    first = unique.enqueue("unique-poison")
    # One process, no supervisor: the job's SIGKILL ends it and nothing takes the
    # job back until its lease passes. (Under -p 2 a sibling reran it within
    # milliseconds: the state between the crashes could not be observed.)
    crashed = worker_process(JOBS_TEST_OPTIONS=FAST)
    assert crashed.wait(20) == -signal.SIGKILL
    assert runs(r, "unique-poison") == 1
    assert unique.enqueue("unique-poison").id == first.id  # its worker died: held
    worker_process("--processes", "2", JOBS_TEST_OPTIONS=FAST)  # after the lease
    wait_until(lambda: finished(first.id), timeout=30, what="the poison job to fail")
    assert runs(r, "unique-poison") == 2
    assert unique.enqueue("unique-poison").id != first.id  # released with it


def test_sigterm_hands_back_a_job_longer_than_the_grace_period(worker_process, r):
    worker = worker_process("--grace", "1", JOBS_TEST_OPTIONS=FAST)
    result = tasks.counted.enqueue("slow", 30)
    wait_until(lambda: runs(r, "slow") == 1)
    stopped_at = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    exited_in = time.monotonic() - stopped_at
    print(
        f"[measured] SIGTERM with --grace 1 and a 30 s job: exited in {exited_in:.2f} s"
    )
    assert exited_in < 10  # the grace period, not the job
    result.refresh()
    assert result.status == "READY"
    assert r.zscore("arq:queue", result.id) <= time.time() * 1000  # due now
    assert r.exists(f"arq:in-progress:{result.id}") == 0
    assert "handed back to the queue" in worker.output()


def test_a_second_sigterm_hands_the_running_job_back_at_once(worker_process, r):
    # Before, the second signal logged "handing running jobs back now" and the
    # worker still waited out the whole grace period (here, the job).
    worker = worker_process("--grace", "60", JOBS_TEST_OPTIONS=FAST)
    result = tasks.counted.enqueue("second-signal", 60)
    wait_until(lambda: runs(r, "second-signal") == 1)
    worker.signal(signal.SIGTERM)
    wait_until(lambda: "waiting up to 60 s for 1 running" in worker.output())
    worker.signal(signal.SIGTERM)
    assert worker.wait(15) == 0  # raised TimeoutExpired before: 60 s to go
    result.refresh()
    assert result.status == "READY"
    assert "handed back to the queue" in worker.output()


def test_sigterm_exits_in_time_even_with_a_plain_function_running(worker_process, r):
    worker = worker_process("--grace", "1")
    result = tasks.counted_sync.enqueue("sync-slow", 30)
    wait_until(lambda: runs(r, "sync-slow") == 1)
    worker.signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    result.refresh()
    assert result.status == "READY"
    quick = worker_process("--burst", JOBS_TEST_OPTIONS=json.dumps({"TIMEOUT": 0.5}))
    assert quick.wait(20) == 0
    result.refresh()
    assert result.errors[-1].exception_class_path == "builtins.TimeoutError"
    assert runs(r, "sync-slow") == 2


def test_supervisor_sigterm_drains_every_process(worker_process, r):
    supervisor = worker_process("--processes", "2", "--grace", "20")
    results = [tasks.counted.enqueue(f"d{i}", 1) for i in range(6)]
    wait_until(lambda: all(runs(r, f"d{i}") for i in range(6)))
    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait(30) == 0
    for result in results:
        result.refresh()
        assert result.status == "SUCCESSFUL"


def children_of(pid: int) -> list[int]:
    """The pids whose parent is `pid` (Linux's /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:  # gone meanwhile
            continue
        if stat and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def test_a_terminals_ctrl_c_drains_a_supervised_worker(worker_process, r):
    # A terminal's Ctrl-C is a SIGINT to the whole process group: the supervisor
    # and its children, which also get the supervisor's SIGTERM. Counted as a
    # second signal, it handed the running jobs back instead of letting them end.
    supervisor = worker_process("--processes", "2", "--grace", "20")
    results = [tasks.counted.enqueue(f"ctrl-c{i}", 2) for i in range(4)]
    wait_until(lambda: all(runs(r, f"ctrl-c{i}") for i in range(4)))
    children = children_of(supervisor.proc.pid)
    assert len(children) == 2
    for pid in [supervisor.proc.pid, *children]:
        os.kill(pid, signal.SIGINT)
    assert supervisor.wait(30) == 0
    for result in results:
        result.refresh()
        assert result.status == "SUCCESSFUL"  # was READY: handed back
    assert "handed back" not in supervisor.output()


def test_recycling_processes_after_n_jobs_loses_nothing(worker_process, r):
    supervisor = worker_process("--processes", "2", "-c", "3", "--max-jobs", "5")
    results = [tasks.counted.enqueue(f"m{i}", 0.05) for i in range(60)]
    for result in results:
        result.get(timeout=30)
    assert [runs(r, f"m{i}") for i in range(60)] == [1] * 60
    pids = {
        w.split(":")[1]
        for res in results
        for w in default_task_backend.get_result(res.id).worker_ids
    }
    assert len(pids) >= 12  # 60 jobs, 5 per process
    assert supervisor.proc.poll() is None


def test_recycling_above_a_memory_ceiling_loses_nothing(worker_process, r):
    supervisor = worker_process(
        "--processes",
        "1",
        "--max-memory",
        "1",
        "-c",
        "2",
        JOBS_TEST_OPTIONS=json.dumps({"LEASE": 0.9}),
    )
    results = [tasks.counted.enqueue(f"mem{i}", 0.4) for i in range(12)]
    for result in results:
        result.get(timeout=60)
    assert [runs(r, f"mem{i}") for i in range(12)] == [1] * 12
    assert "over the 1 MB ceiling" in supervisor.output()


def test_redis_outage_the_worker_stays_up_and_resumes(own_redis, worker_process):
    server = own_redis("--appendonly", "yes", "--appendfsync", "everysec")
    with override_settings(**settings_for(server.url)):
        worker = worker_process("-c", "5", REDIS_URL=server.url)
        # Jobs that do not need Redis themselves: the outage is the worker's.
        before = [tasks.asleeper.enqueue(0.2) for _ in range(30)]
        wait_until(lambda: finished(before[0].id))
        server.stop(signal.SIGKILL)
        started = time.monotonic()
        with pytest.raises(QueueUnavailable, match="not enqueued"):
            tasks.add.enqueue(1, 1)
        refused_in = time.monotonic() - started
        print(
            f"[measured] enqueue with Redis down raised QueueUnavailable in {refused_in:.3f} s"
        )
        assert refused_in < 10  # an error, not a hang
        time.sleep(5)
        server.start()
        back = time.monotonic()
        after = tasks.add.enqueue(2, 2)
        assert after.get(timeout=20) == 4
        resumed_in = time.monotonic() - back
        print(
            f"[measured] first job after Redis returned finished in {resumed_in:.2f} s"
        )
        assert resumed_in < 5  # resumed within 5 s of Redis returning
        for result in before:
            assert result.get(timeout=30) == 0.2
        assert worker.proc.poll() is None
        assert "Redis is back after" in worker.output()


def test_kill_9_of_redis_with_aof_everysec_loses_no_acknowledged_job(own_redis):
    server = own_redis("--appendonly", "yes", "--appendfsync", "everysec")
    with override_settings(**settings_for(server.url)):
        acknowledged = [tasks.add.enqueue(i, i).id for i in range(500)]
        server.stop(signal.SIGKILL)  # no time to fsync
        server.start()
        client = server.client()
        queued = {m.decode() for m in client.zrange("arq:queue", 0, -1)}
        assert queued == set(acknowledged)
        assert all(client.exists(f"arq:job:{i}") for i in acknowledged)


def test_full_redis_refuses_new_jobs_clearly_and_the_worker_drains(
    own_redis, worker_process
):
    server = own_redis("--maxmemory", "4mb", "--maxmemory-policy", "noeviction")
    with override_settings(**settings_for(server.url)):
        queued = []
        with pytest.raises(QueueFull, match="full") as excinfo:
            for _ in range(5000):
                queued.append(tasks.sized.enqueue("x" * 8000))
        assert "noeviction" in str(excinfo.value)
        assert len(queued) > 10
        worker = worker_process("--burst", REDIS_URL=server.url)
        assert worker.wait(60) == 0
        for result in queued:
            result.refresh()
            assert result.status == "SUCCESSFUL"
        assert server.client().zcard("arq:queue") == 0
