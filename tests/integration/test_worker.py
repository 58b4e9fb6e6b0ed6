"""The worker, in this process, against a real Redis: outcomes, retries, bad input."""

from __future__ import annotations

import logging
import pickle

import pytest
from django.conf import settings
from django.tasks import default_task_backend
from django.tasks.base import TaskResultStatus
from django.tasks.signals import task_finished, task_started
from django.test import override_settings

from jobs.redis.keys import queue_key
from jobs.serialization import JobPayload, dumps
from jobs.testing import adrain
from tests import tasks

pytestmark = pytest.mark.django_db(transaction=True)


async def test_sync_and_async_tasks_succeed():
    sync = await tasks.add.aenqueue(2, 3)
    coro = await tasks.aadd.aenqueue(4, 5)
    counts = await adrain()
    assert counts == {"complete": 2, "failed": 0, "retried": 0}
    for result, value in ((sync, 5), (coro, 9)):
        await result.arefresh()
        assert result.status == TaskResultStatus.SUCCESSFUL
        assert result.return_value == value
        assert result.attempts == 1
        assert result.enqueued_at <= result.started_at <= result.finished_at
        assert result.last_attempted_at == result.started_at
        assert result.worker_ids[0].count(":") == 2  # host:pid:random


async def test_failure_is_recorded_with_class_and_traceback():
    result = await tasks.boom.aenqueue("kaput")
    await adrain()
    await result.arefresh()
    assert result.status == TaskResultStatus.FAILED
    error = result.errors[-1]
    assert error.exception_class_path == "builtins.ValueError"
    assert error.message == "kaput"
    assert "raise ValueError(message)" in error.traceback
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018 - Django's contract


async def test_retries_until_success_with_history():
    result = await tasks.flaky.aenqueue("k1")
    counts = await adrain()
    assert counts["retried"] == 2
    assert counts["complete"] == 1
    await result.arefresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 3
    assert result.attempts == 3
    assert [e.exception_class_path for e in result.errors] == [
        "builtins.ConnectionError"
    ] * 2
    assert result.started_at < result.last_attempted_at


async def test_retry_on_limits_which_errors_are_retried():
    result = await tasks.wrong_error.aenqueue()
    counts = await adrain()
    assert counts == {"complete": 0, "failed": 1, "retried": 0}
    await result.arefresh()
    assert result.attempts == 1


async def test_arq_retry_exception_reschedules():
    result = await tasks.asks_retry.aenqueue("k2")
    await adrain()
    await result.arefresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.attempts == 2


async def test_async_timeout_fails_the_job():
    result = await tasks.slow_async.aenqueue()
    await adrain()
    await result.arefresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[-1].exception_class_path == "builtins.TimeoutError"
    assert "Task tests.tasks.slow_async ran past its timeout of" in (
        result.errors[-1].traceback
    )


async def test_sync_timeout_fails_the_job():
    result = await tasks.slow_sync.aenqueue(0.6)
    await adrain()
    await result.arefresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[-1].exception_class_path == "builtins.TimeoutError"
    assert "Task tests.tasks.slow_sync ran past its timeout of" in (
        result.errors[-1].traceback
    )


async def test_context_is_passed_when_asked():
    result = await tasks.with_context.aenqueue(7)
    await adrain()
    await result.arefresh()
    assert result.return_value == {"job_id": result.id, "attempt": 1, "value": 7}


async def test_sync_tasks_run_side_by_side_not_behind_one_thread():
    results = [await tasks.meet_at_barrier.aenqueue() for _ in range(4)]
    await adrain(concurrency=4)
    for result in results:
        await result.arefresh()
        assert result.status == TaskResultStatus.SUCCESSFUL, result.errors
    assert sorted(r.return_value for r in results) == [0, 1, 2, 3]


async def test_db_connections_are_closed_around_sync_jobs(settings):
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 600  # kept open unless we close it
    first = await tasks.db_connection_state.aenqueue()
    second = await tasks.db_connection_state.aenqueue()
    await adrain(concurrency=1)
    for result in (first, second):
        await result.arefresh()
        assert result.status == TaskResultStatus.SUCCESSFUL, result.errors


async def test_started_and_finished_signals_are_sent():
    seen = []

    def on_started(sender, task_result, **kwargs):
        seen.append(("started", task_result.id, task_result.status))

    def on_finished(sender, task_result, **kwargs):
        seen.append(("finished", task_result.id, task_result.status))

    task_started.connect(on_started)
    task_finished.connect(on_finished)
    try:
        result = await tasks.add.aenqueue(1, 1)
        await adrain()
    finally:
        task_started.disconnect(on_started)
        task_finished.disconnect(on_finished)
    assert seen == [
        ("started", result.id, TaskResultStatus.RUNNING),
        ("finished", result.id, TaskResultStatus.SUCCESSFUL),
    ]


async def test_queues_are_taken_in_priority_order():
    for i in range(3):
        await tasks.low.aenqueue(f"low{i}")
    for i in range(3):
        await tasks.high.aenqueue(f"high{i}")
    await adrain(queues=["high", "low"], concurrency=1)
    assert tasks.seen == ["high0", "high1", "high2", "low0", "low1", "low2"]


async def test_worker_only_takes_its_queues(r):
    other = await tasks.on_reports.aenqueue()
    mine = await tasks.add.aenqueue(1, 1)
    await adrain(queues=["default"])
    await mine.arefresh()
    await other.arefresh()
    assert mine.status == TaskResultStatus.SUCCESSFUL
    assert other.status == TaskResultStatus.READY
    assert r.zcard("arq:queue:reports") == 1


def _plant(r, job_id: str, raw: bytes, queue: str = "default") -> None:
    r.set(f"arq:job:{job_id}", raw)
    r.zadd(queue_key(queue), {job_id: 0})


async def test_unregistered_task_is_refused_and_the_worker_goes_on(r, caplog):
    payload = JobPayload(
        task_path="os.system",
        args=["touch /tmp/jobs-pwned"],
        kwargs={},
        enqueued_ms=0,
        queue_name="default",
        backend="default",
    )
    _plant(r, "evil", payload.encode())
    good = await tasks.add.aenqueue(1, 2)
    with caplog.at_level(logging.ERROR, logger="jobs.worker"):
        counts = await adrain()
    assert counts["failed"] == 1
    assert counts["complete"] == 1
    evil = default_task_backend.results.get("evil")
    assert evil["status"] == "FAILED"
    assert "is not a registered task" in evil["errors"][-1]["message"]
    assert "os.system" in caplog.text
    await good.arefresh()
    assert good.return_value == 3
    assert r.zcard("arq:queue") == 0


@pytest.mark.parametrize(
    "raw", [b"\x00garbage", b"{}", dumps({"f": 1, "a": "x", "k": [], "et": "now"})]
)
async def test_malformed_jobs_are_refused_logged_and_dropped(r, caplog, raw):
    _plant(r, "bad", raw)
    with caplog.at_level(logging.ERROR, logger="jobs.worker"):
        counts = await adrain()
    assert counts["failed"] == 1
    assert default_task_backend.results.get("bad")["status"] == "FAILED"
    assert "cannot run" in caplog.text
    assert r.exists("arq:job:bad") == 0


async def test_pickled_job_is_never_unpickled(r, tmp_path):
    marker = tmp_path / "unpickled"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    _plant(
        r,
        "pickled",
        pickle.dumps({"f": "tests.tasks.add", "a": [Evil()], "k": {}, "et": 0}),
    )
    counts = await adrain()
    assert counts["failed"] == 1
    assert not marker.exists()
    record = default_task_backend.results.get("pickled")
    assert "pickled payload" in record["errors"][-1]["message"]


async def test_expired_job_is_recorded_as_failed(r):
    r.zadd("arq:queue", {"gone": 0})  # the job key expired
    counts = await adrain()
    assert counts["failed"] == 1
    assert (
        "expired" in default_task_backend.results.get("gone")["errors"][-1]["message"]
    )


async def test_with_empty_queues_workers_run_the_queues_they_are_told(r):
    tasks_setting = {alias: dict(b) for alias, b in settings.TASKS.items()}
    tasks_setting["default"]["QUEUES"] = []  # Django's "any queue name"
    with override_settings(TASKS=tasks_setting):
        anywhere = await tasks.add.using(queue_name="made-up").aenqueue(1, 2)
        default = await tasks.add.aenqueue(3, 4)
        assert await adrain() == {"complete": 1, "failed": 0, "retried": 0}
        assert await default.aget(timeout=1) == 7
        assert r.zcard("arq:queue:made-up") == 1  # no worker was told of it
        await adrain(queues=["made-up"])
        assert await anywhere.aget(timeout=1) == 3
