"""Whatever a task raises is its failure, recorded and logged as Django does.

Django's ImmediateBackend records any BaseException but KeyboardInterrupt and
sends task_finished inside the `except` block, where its log reads the
exception from sys.exc_info(). The in-process drain here; a real worker
process in tests/acceptance/test_worker_process.py.
"""

from __future__ import annotations

import logging
import sys
from logging import ERROR, INFO

import pytest
from django.tasks.base import TaskResultStatus
from django.tasks.signals import task_finished

from jobs.exceptions import TaskFailed
from jobs.testing import adrain, drain
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("task", "args", "message"),
    [(tasks.exits, ("bye",), "bye"), (tasks.aexits, (3,), "3")],
    ids=["plain", "coroutine"],
)
async def test_system_exit_is_recorded_failed_and_the_worker_goes_on(
    task, args, message
):
    failing = await task.aenqueue(*args)
    after = await tasks.add.aenqueue(1, 2)
    counts = await adrain(concurrency=1)
    assert counts == {"complete": 1, "failed": 1, "retried": 0}
    await failing.arefresh()
    assert failing.status == TaskResultStatus.FAILED
    assert failing.errors[-1].exception_class is SystemExit
    assert failing.errors[-1].traceback.endswith(f"SystemExit: {message}\n")
    # Waiting does not re-raise a SystemExit in the waiter: only Exceptions are.
    with pytest.raises(TaskFailed, match=f"builtins.SystemExit: {message}"):
        await failing.aget(timeout=1)
    assert await after.aget(timeout=1) == 3


async def test_a_cancelled_error_of_the_tasks_own_is_its_failure(r):
    # Nobody cancelled the job: it is not handed back (it would run forever).
    result = await tasks.cancels_itself.aenqueue()
    counts = await adrain()
    assert counts["failed"] == 1
    await result.arefresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[-1].exception_class_path == (
        "asyncio.exceptions.CancelledError"
    )
    assert r.zcard("arq:queue") == 0


def test_keyboard_interrupt_stops_drain_and_hands_the_job_back(r, caplog):
    # drain() leaves SIGINT to Python: a KeyboardInterrupt may be the user's
    # Ctrl-C, so it stops the worker as Django's ImmediateBackend lets it.
    result = tasks.interrupts.enqueue()
    with caplog.at_level(logging.INFO, "django.tasks"):
        with pytest.raises(KeyboardInterrupt):
            drain()
    logged = [rec.getMessage() for rec in caplog.records if rec.name == "django.tasks"]
    assert logged == [
        f"Task id={result.id} path={result.task.module_path} state=RUNNING"
    ]
    result.refresh()
    assert result.status == TaskResultStatus.READY
    assert result.errors == []
    assert r.zscore("arq:queue", result.id) is not None
    assert r.exists(f"arq:in-progress:{result.id}") == 0


async def test_finished_signal_carries_the_exception_and_django_logs_it(caplog):
    seen = []

    def on_finished(sender, task_result, **kwargs):
        seen.append((task_result.status, sys.exc_info()[1]))

    task_finished.connect(on_finished)
    try:
        failed = await tasks.boom.aenqueue("kaput")
        succeeded = await tasks.add.aenqueue(1, 1)
        with caplog.at_level(logging.INFO, "django.tasks"):
            await adrain(concurrency=1)
    finally:
        task_finished.disconnect(on_finished)
    (failed_status, error), (ok_status, none) = seen
    assert failed_status == TaskResultStatus.FAILED
    assert isinstance(error, ValueError) and str(error) == "kaput"
    assert (ok_status, none) == (TaskResultStatus.SUCCESSFUL, None)
    logged = [rec for rec in caplog.records if rec.name == "django.tasks"]
    assert [rec.levelno for rec in logged] == [INFO, ERROR, INFO, INFO]
    assert f"Task id={failed.id}" in logged[1].getMessage()
    text = caplog.text
    assert "raise ValueError(message)" in text  # the task's frame
    assert "ValueError: kaput" in text
    assert "send_finished" not in text  # only the task's traceback
    assert succeeded.id in text


async def test_non_json_return_value_is_a_type_error_with_djangos_wording():
    result = await tasks.returns_set.aenqueue()
    await adrain()
    await result.arefresh()
    assert result.status == TaskResultStatus.FAILED
    error = result.errors[-1]
    assert error.exception_class is TypeError
    assert "Unsupported type" in error.message
    assert "the return value is a builtins.set" in error.message
