"""`manage.py jobs_worker` as a real process: discovery, bad input, signals."""

from __future__ import annotations

import signal
from datetime import timedelta

import pytest
from django.conf import settings
from django.tasks import default_task_backend
from django.test import override_settings

from jobs.serialization import JobPayload
from tests import tasks
from tests.servers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _finished(result_id: str) -> bool:
    record = default_task_backend.results.get(result_id)
    return record is not None and record["status"] in ("SUCCESSFUL", "FAILED")


def test_worker_runs_autodiscovered_and_imported_tasks(worker_process):
    from webproject.tasks import add

    worker = worker_process()
    app_task = add.enqueue(1, 2)  # webproject/tasks.py, found by autodiscovery
    imported = tasks.aadd.enqueue(3, 4)  # tests/tasks.py, listed in IMPORTS
    assert app_task.get(timeout=20) == 3
    assert imported.get(timeout=20) == 7
    assert "consuming default,reports,high,low" in worker.output()


def test_unknown_task_fails_clearly_and_the_worker_goes_on(worker_process, r):
    worker = worker_process()
    payload = JobPayload(
        task_path="os.system",
        args=["id"],
        kwargs={},
        enqueued_ms=0,
        queue_name="default",
        backend="default",
    )
    r.set("arq:job:evil", payload.encode())
    r.zadd("arq:queue", {"evil": 0})
    wait_until(lambda: _finished("evil"), what="the planted job to be refused")
    record = default_task_backend.results.get("evil")
    assert record["status"] == "FAILED"
    assert (
        record["errors"][-1]["exception_class_path"]
        == "jobs.exceptions.TaskNotRegistered"
    )
    assert tasks.add.enqueue(2, 2).get(timeout=20) == 4
    assert worker.proc.poll() is None
    assert "'os.system' is not a registered task" in worker.output()


def test_sigterm_lets_the_running_job_finish_then_exits(worker_process):
    worker = worker_process("--grace", "20")
    result = tasks.sleeper.enqueue(1.5)
    wait_until(lambda: default_task_backend.get_result(result.id).status == "RUNNING")
    worker.signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    result.refresh()
    assert result.status == "SUCCESSFUL"
    assert "SIGTERM: no new jobs" in worker.output()


def test_idle_worker_exits_promptly_on_sigint(worker_process):
    worker = worker_process()
    wait_until(lambda: "consuming" in worker.output(), timeout=30)  # a start
    worker.signal(signal.SIGINT)
    assert worker.wait(10) == 0


def test_burst_worker_drains_and_exits(worker_process):
    results = [tasks.add.enqueue(i, i) for i in range(20)]
    # A deferred job is waited for (as arq's burst does): the README says so.
    later = tasks.add.using(run_after=timedelta(seconds=1)).enqueue(1, 1)
    worker = worker_process("--burst", "-c", "5")
    assert worker.wait(30) == 0
    assert [r.get(timeout=1) for r in results] == [2 * i for i in range(20)]
    assert later.get(timeout=1) == 2


def test_unknown_backend_or_queue_is_a_clear_command_error(worker_process):
    bad_queue = worker_process("--queues", "nope")
    assert bad_queue.wait(20) == 1
    assert "Queues ['nope'] are not in the backend's QUEUES" in bad_queue.output()
    bad_backend = worker_process("--backend", "missing")
    assert bad_backend.wait(20) == 1
    assert "missing" in bad_backend.output()


def test_compose_stops_the_worker_gracefully():
    """compose sends SIGTERM and waits longer than the worker's --grace."""
    from pathlib import Path

    import yaml

    compose = yaml.safe_load((Path(__file__).parents[2] / "compose.yaml").read_text())
    worker = compose["services"]["worker"]
    grace = float(worker["command"][worker["command"].index("--grace") + 1])
    assert worker["stop_signal"] == "SIGTERM"
    assert float(worker["stop_grace_period"].rstrip("s")) > grace
    redis_command = compose["services"]["redis"]["command"]
    assert "noeviction" in redis_command
    assert redis_command[redis_command.index("--appendfsync") + 1] == "everysec"


def test_system_exit_and_keyboard_interrupt_from_tasks_are_failures(worker_process):
    # The worker handles SIGINT itself, so a KeyboardInterrupt in a job is the
    # task's own: recorded like SystemExit, and the worker goes on.
    worker = worker_process()
    exits = tasks.exits.enqueue("bye")
    interrupts = tasks.interrupts.enqueue()
    for result, cls in ((exits, SystemExit), (interrupts, KeyboardInterrupt)):
        wait_until(lambda r=result: _finished(r.id), what=f"{cls.__name__} recorded")
        result.refresh()
        assert result.status == "FAILED"
        assert result.errors[-1].exception_class is cls
    assert tasks.add.enqueue(2, 2).get(timeout=20) == 4
    assert worker.proc.poll() is None
    # Django's task_finished log, with the exception and its traceback.
    output = worker.output()
    assert f"Task id={exits.id} path=tests.tasks.exits state=FAILED" in output
    assert "raise SystemExit(message)\nSystemExit: bye" in output
    assert "KeyboardInterrupt: raised by the task" in output
    worker.signal(signal.SIGINT)  # a real Ctrl-C still stops it
    assert worker.wait(10) == 0


def test_with_empty_queues_a_worker_runs_the_queues_it_is_told(worker_process):
    any_queue = {alias: dict(b) for alias, b in settings.TASKS.items()}
    any_queue["default"]["QUEUES"] = []
    with override_settings(TASKS=any_queue):
        made_up = tasks.add.using(queue_name="made-up").enqueue(1, 2)
        default = tasks.add.enqueue(3, 4)
        told = worker_process("-Q", "made-up", JOBS_TEST_QUEUES="[]")
        assert made_up.get(timeout=20) == 3
        untold = worker_process(JOBS_TEST_QUEUES="[]")
        assert default.get(timeout=20) == 7
    assert "consuming made-up from" in told.output()
    assert "consuming default from" in untold.output()
