"""Schedules end to end: `manage.py jobs_worker` processes, the admin, real Redis."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta

import pytest
from django.db import transaction

from jobs.models import Schedule
from tests.admin_forms import schedule_form
from tests.servers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def runs(r, key: str) -> int:
    return int(r.get(f"test:runs:{key}") or 0)


def quiet(value, seconds: float = 2.0, timeout: float = 20):
    """Wait until `value()` stops changing for `seconds`; return it."""
    deadline = time.monotonic() + timeout
    last, since = value(), time.monotonic()
    while time.monotonic() - since < seconds:
        assert time.monotonic() < deadline, f"still changing after {timeout} s"
        time.sleep(0.1)
        current = value()
        if current != last:
            last, since = current, time.monotonic()
    return last


def ticks_of(r, pk: int) -> list[int]:
    keys = r.keys(f"jobs:unique:schedule:{pk}:*")
    return sorted(int(k.decode().rsplit(":", 1)[1]) for k in keys)


def test_three_worker_processes_enqueue_each_run_once(worker_process, r):
    workers = [worker_process("-c", "4") for _ in range(3)]
    for worker in workers:
        wait_until(lambda w=worker: "consuming" in w.output(), timeout=30)
    with transaction.atomic():
        schedule = Schedule.objects.create(
            name="every-second",
            task="tests.tasks.counted",
            args=["procs"],
            interval=timedelta(seconds=1),
        )
    wait_until(lambda: runs(r, "procs") >= 5, timeout=30, what="5 runs")
    for worker in workers:
        worker.stop()
    ticks = ticks_of(r, schedule.pk)
    assert len(ticks) >= 5
    assert runs(r, "procs") == len(ticks)  # no run twice, whoever enqueued it
    assert all((b - a) % 1000 == 0 for a, b in itertools.pairwise(ticks))
    schedule.refresh_from_db()
    assert schedule.run_count == len(ticks)


def admin_form(**changes: str) -> dict[str, str]:
    return schedule_form(
        **{
            "name": "edited-live",
            "args": '["admin-v1"]',
            "interval": "00:00:01",
            **changes,
        }
    )


def test_admin_edits_reach_a_running_worker_and_disabling_stops_it(
    worker_process, admin_client, r
):
    # The periodic reconcile is 5 minutes away: only the live path can do this.
    worker = worker_process(JOBS_TEST_RECONCILE="300")
    wait_until(lambda: "consuming" in worker.output(), timeout=30)

    answer = admin_client.post("/admin/jobs/schedule/add/", admin_form())
    assert answer.status_code == 302, answer.content.decode()[-2000:]
    schedule = Schedule.objects.get(name="edited-live")
    wait_until(lambda: runs(r, "admin-v1") >= 1, what="the new schedule's first run")

    url = f"/admin/jobs/schedule/{schedule.pk}/change/"
    answer = admin_client.post(url, admin_form(args='["admin-v2"]'))
    assert answer.status_code == 302
    edited = time.monotonic()
    wait_until(lambda: runs(r, "admin-v2") >= 1, what="a run with the edited args")
    print(f"edit to first edited run: {time.monotonic() - edited:.2f} s")
    quiet(lambda: runs(r, "admin-v1"))  # the old arguments are gone
    assert runs(r, "admin-v2") >= 2  # while the new ones run on

    answer = admin_client.post(
        "/admin/jobs/schedule/",
        {"action": "disable", "_selected_action": [str(schedule.pk)]},
    )
    assert answer.status_code == 302
    stopped_at = quiet(lambda: runs(r, "admin-v2"))  # disabled: it stops
    time.sleep(1.5)
    assert runs(r, "admin-v2") == stopped_at
    assert worker.proc.poll() is None
    output = worker.output()
    assert "schedules:" in output
    # Each reload said at INFO: the add, the edit, the disable.
    assert output.count("schedule 'edited-live' reloaded: next run") >= 2
    assert f"schedule db:{schedule.pk} dropped (deleted or disabled)" in output


def test_no_schedules_and_burst_workers_leave_schedules_alone(worker_process, r):
    with transaction.atomic():
        Schedule.objects.create(
            name="not-here",
            task="tests.tasks.counted",
            args=["not-here"],
            interval=timedelta(seconds=1),
        )
    burst = worker_process("--burst")
    assert burst.wait(30) == 0
    worker = worker_process("--no-schedules")
    wait_until(lambda: "consuming" in worker.output(), timeout=30)
    time.sleep(2.5)
    assert runs(r, "not-here") == 0
    assert r.keys("jobs:unique:schedule:*") == []
    with_schedules = worker_process()
    wait_until(lambda: runs(r, "not-here") >= 1, what="the default: schedules on")
    assert "schedules:" in with_schedules.output()
    assert "schedules:" not in worker.output() + burst.output()
