"""A schedule's run_count counts every run once, even when the worker that
enqueued a run is killed before, or while, it writes that run to the database."""

from __future__ import annotations

import signal
import time
from datetime import timedelta

import pytest
from django.db import transaction

from jobs.schedules.models import Schedule
from tests.servers import wait_until

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]


def ticks(r, pk: int) -> int:
    return len(r.keys(f"jobs:unique:schedule:{pk}:*"))


def last_flush(worker_process, r, pk: int) -> None:
    """A worker that runs the schedule (it enqueues a run of its own: a
    killed worker may have enqueued two at once, catching up) and stops
    (SIGTERM), writing what it saw: a worker stopped before its scheduler
    started would write nothing."""
    seen = ticks(r, pk)
    last = worker_process()
    wait_until(lambda: ticks(r, pk) > seen, timeout=20)
    last.stop()


@pytest.fixture
def every_second() -> Schedule:
    with transaction.atomic():
        return Schedule.objects.create(
            name="every-second",
            task="tests.tasks.add",
            args=[1, 2],
            interval=timedelta(seconds=1),
        )


def test_run_count_survives_workers_killed_right_after_enqueuing(
    worker_process, r, every_second
):
    schedule = every_second
    for kill in range(3):
        worker = worker_process()
        # SIGKILL within ~20 ms of a run's enqueue: before the worker's next
        # database flush (every 0.5 s), most times.
        wait_until(lambda n=kill: ticks(r, schedule.pk) > n, timeout=20)
        worker.signal(signal.SIGKILL)
        worker.wait(5)
    last_flush(worker_process, r, schedule.pk)
    schedule.refresh_from_db()
    assert schedule.run_count == ticks(r, schedule.pk)


def test_run_count_survives_a_worker_killed_while_writing_it(
    worker_process, r, every_second
):
    """The worker reads Redis's counts, then blocks on the row this test holds
    locked (SQLite: the database's write lock) and is killed there: what it
    read must still be counted, by the next worker."""
    schedule = every_second
    with transaction.atomic():
        Schedule.objects.filter(pk=schedule.pk).update(description="held")
        worker = worker_process()
        wait_until(lambda: ticks(r, schedule.pk) >= 2, timeout=20)
        time.sleep(0.6)  # a flush (every 0.5 s) since: blocked on the lock
        worker.signal(signal.SIGKILL)
        worker.wait(5)
    last_flush(worker_process, r, schedule.pk)
    schedule.refresh_from_db()
    assert schedule.run_count == ticks(r, schedule.pk)


def test_a_redis_outage_is_said_once_per_schedule_not_every_second(
    own_redis, worker_process, every_second
):
    # Before: "could not enqueue (...); retrying" once a second per schedule and
    # "could not read run counts" every 0.5 s, for as long as Redis was away.
    server = own_redis()
    worker = worker_process(REDIS_URL=server.url)
    wait_until(lambda: "'every-second': enqueued" in worker.output(), timeout=20)
    server.stop(signal.SIGKILL)
    wait_until(lambda: "could not enqueue" in worker.output(), timeout=20)
    time.sleep(3)  # three more ticks due, and six flushes

    def runs() -> int:
        return worker.output().count("'every-second': enqueued")

    enqueued = runs()
    server.start()
    wait_until(lambda: runs() > enqueued, timeout=20, what="a run after the outage")
    output = worker.output()
    assert output.count("schedule 'every-second': could not enqueue") == 1
    assert output.count("could not read run counts") <= 1
