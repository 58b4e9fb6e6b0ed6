"""What a worker prints, in a project as `startproject` leaves it (DEBUG on,
Django's default logging): each line once, a final failure's traceback once at
ERROR, retries at WARNING with their attempt number."""

from __future__ import annotations

import re

import pytest

from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)

NEW_PROJECT = {"DJANGO_SETTINGS_MODULE": "tests.startproject_settings"}


def test_a_new_projects_worker_logs_each_line_once(worker_process):
    ok = tasks.add.enqueue(1, 2)
    failed = tasks.boom.enqueue("kaput")
    retried = tasks.flaky.enqueue("log")  # fails twice, then succeeds
    worker = worker_process("--burst", "-c", "1", **NEW_PROJECT)
    assert worker.wait(30) == 0, worker.output()
    output = worker.output()
    # Django's console handler printed django.tasks lines bare, ours formatted.
    for result in (ok, failed, retried):
        lines = [line for line in output.splitlines() if f"id={result.id}" in line]
        assert all(re.match(r"\d{4}-\d\d-\d\d ", line) for line in lines), lines
    assert output.count(f"Task id={ok.id} path=tests.tasks.add state=SUCCESSFUL") == 1
    # The final failure: one ERROR line, then its traceback, once.
    assert output.count(f"ERROR   django.tasks Task id={failed.id}") == 1
    assert output.count("raise ValueError(message)\nValueError: kaput") == 1
    # Retries: a WARNING each with the attempt, no traceback, no "state=READY".
    assert f"job {retried.id} tests.tasks.flaky attempt 1 failed" in output
    assert "retrying in 0.0 s (attempt 2 of 3)" in output
    assert "(attempt 3 of 3)" in output
    assert "state=READY" not in output
    assert output.count("ConnectionError: attempt") == 0  # no retry tracebacks
    assert (
        output.count(f"Task id={retried.id} path=tests.tasks.flaky state=RUNNING") == 3
    )


def test_max_jobs_says_the_process_is_replaced(worker_process):
    results = [tasks.add.enqueue(i, i) for i in range(3)]
    worker = worker_process("--max-jobs", "2", "-c", "1")
    assert [r.get(timeout=20) for r in results] == [0, 2, 4]
    worker.stop()
    output = worker.output()
    assert "started 2 jobs (--max-jobs): finishing them, then exiting" in output
    assert re.search(
        r"INFO +jobs.worker worker process \d+ exited after [\d.]+ s "
        r"\(--max-jobs/--max-memory\); starting its replacement",
        output,
    ), output
