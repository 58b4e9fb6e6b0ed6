"""arq's own CLI on Django tasks (`arq jobs.arq.WorkerSettings`), and a mixed
fleet: `jobs_worker` and arq's worker on one queue at once."""

from __future__ import annotations

import pytest
from django.tasks import default_task_backend

from jobs.redis import connections
from tests import tasks
from tests.servers import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning"),
]

FLEET_JOBS = 1000


def test_arq_burst_runs_django_tasks(arq_process):
    results = [tasks.add.enqueue(i, 1) for i in range(5)]
    worker = arq_process("--burst")
    assert worker.wait(30) == 0, worker.output()
    assert [result.get(timeout=1) for result in results] == [1, 2, 3, 4, 5]
    assert worker.output().count(":tests.tasks.add ●") == 5  # arq's own log lines


def test_arq_check_reports_a_running_workers_health(r, arq_process):
    assert arq_process("--check").wait(30) == 1  # no worker yet
    worker = arq_process()
    wait_until(lambda: r.exists("arq:queue:health-check"), what="arq's health key")
    assert arq_process("--check").wait(30) == 0, worker.output()


def test_a_mixed_fleet_runs_every_job_once(r, worker_process, arq_process):
    ours = worker_process("-c", "4")
    theirs = arq_process()
    client = connections.sync_client(default_task_backend.config)
    results = [tasks.counted.enqueue(f"fleet-{i}", 0.005) for i in range(FLEET_JOBS)]

    def finished() -> int:
        records = default_task_backend.results.get_many([x.id for x in results])
        return sum(rec["status"] == "SUCCESSFUL" for rec in records.values())

    wait_until(lambda: finished() == FLEET_JOBS, timeout=120, what="every job")
    runs = client.mget([f"test:runs:fleet-{i}" for i in range(FLEET_JOBS)])
    assert [int(n) for n in runs] == [1] * FLEET_JOBS  # none lost, none twice
    pids = {ours.proc.pid: 0, theirs.proc.pid: 0}
    records = default_task_backend.results.get_many([x.id for x in results])
    for record in records.values():
        [worker_id] = record["worker_ids"]
        pids[int(worker_id.split(":")[1])] += 1
    assert all(pids.values()), pids  # both kinds of worker took jobs
    assert client.zcard("arq:queue") == 0
