"""Enqueueing through Django's Tasks API into a real Redis."""

from __future__ import annotations

import asyncio
import pickle
import socket
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.tasks import default_task_backend, task_backends
from django.tasks.base import TaskResultStatus
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from django.test import override_settings
from django.utils import timezone

from jobs import (
    BadArguments,
    EnqueueError,
    PayloadTooLarge,
    QueueUnavailable,
    SerializationError,
)
from jobs.backend import JobsBackend
from jobs.serialization import loads
from jobs.testing import drain
from tests import tasks
from tests.servers import wait_until


def test_backend_declares_its_capabilities_honestly():
    backend = task_backends["default"]
    assert isinstance(backend, JobsBackend)
    assert backend.supports_defer is True
    assert backend.supports_async_task is True
    assert backend.supports_get_result is True
    assert backend.supports_priority is True
    assert tasks.add.using(priority=10).priority == 10
    with pytest.raises(InvalidTask, match="priority"):
        tasks.add.using(priority=101)


def test_enqueue_writes_json_job_and_ready_result(r):
    result = tasks.add.enqueue(2, 3)
    assert result.status == TaskResultStatus.READY
    raw = r.get(f"arq:job:{result.id}")
    job = loads(raw)  # JSON, never a pickle
    assert job["f"] == "tests.tasks.add"
    assert job["a"] == [2, 3]
    assert r.zscore("arq:queue", result.id) is not None
    assert r.llen("jobs:wake:default") == 1
    fetched = default_task_backend.get_result(result.id)
    assert fetched.status == TaskResultStatus.READY
    assert fetched.args == [2, 3]
    assert fetched.task.func is tasks.add.func
    assert tasks.add.get_result(result.id).id == result.id


async def test_aenqueue_and_aget_result_are_native_async(r):
    result = await tasks.aadd.aenqueue(1, y=2)
    fetched = await default_task_backend.aget_result(result.id)
    assert fetched.kwargs == {"y": 2}
    assert fetched.status == TaskResultStatus.READY
    assert r.zcard("arq:queue") == 1


async def test_async_pool_is_per_event_loop():
    from jobs.redis import connections

    backend = task_backends["default"]
    first = connections.async_client(backend.config)
    assert connections.async_client(backend.config) is first

    def other_loop():
        async def get():
            return connections.async_client(backend.config)

        return asyncio.run(get())

    assert await asyncio.to_thread(other_loop) is not first


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((timezone.now(), 1), {}, "args\\[0\\] is a datetime.datetime"),
        ((1,), {"y": {1, 2}}, "kwargs\\['y'\\] is a builtins.set"),
        ((float("nan"), 1), {}, "nan"),
    ],
)
def test_non_json_arguments_are_refused_and_nothing_is_written(
    r, args, kwargs, message
):
    before = r.dbsize()
    with pytest.raises(SerializationError, match=message):
        tasks.add.enqueue(*args, **kwargs)
    assert r.dbsize() == before


def test_payload_over_the_limit_is_refused(r):
    with pytest.raises(PayloadTooLarge, match="MAX_PAYLOAD"):
        tasks.record.enqueue("x" * (256 * 1024 + 1))
    assert r.dbsize() == 0
    tasks.record.enqueue("x" * 1000)
    assert r.zcard("arq:queue") == 1


def test_run_after_defers_the_job(r):
    later = timezone.now() + timedelta(hours=1)
    result = tasks.add.using(run_after=later).enqueue(1, 1)
    score = r.zscore("arq:queue", result.id)
    assert score == pytest.approx(later.timestamp() * 1000, abs=1)
    relative = tasks.add.using(run_after=timedelta(minutes=5)).enqueue(1, 1)
    assert r.zscore("arq:queue", relative.id) > time.time() * 1000 + 290_000


def test_queue_name_maps_to_its_own_arq_queue(r):
    tasks.on_reports.enqueue()
    assert r.zcard("arq:queue:reports") == 1
    assert r.zcard("arq:queue") == 0
    with pytest.raises(InvalidTask, match="Queue 'nope' is not valid"):
        tasks.add.using(queue_name="nope")


def test_unknown_result_id_raises_does_not_exist():
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result("0" * 32)
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result("../../etc/passwd")


async def test_aget_unknown_result_raises_does_not_exist():
    with pytest.raises(TaskResultDoesNotExist):
        await default_task_backend.aget_result("f" * 32)


def test_task_enqueued_signal_is_sent():
    received = []

    def receiver(sender, task_result, **kwargs):
        received.append((sender, task_result.id))

    task_enqueued.connect(receiver)
    try:
        result = tasks.add.enqueue(1, 2)
    finally:
        task_enqueued.disconnect(receiver)
    assert received == [(JobsBackend, result.id)]


async def test_same_job_id_from_100_concurrent_enqueues_is_queued_once(r):
    backend = task_backends["default"]
    results = await asyncio.gather(
        *(
            backend.aenqueue(tasks.add, [i, i], {}, job_id="once-only")
            for i in range(100)
        )
    )
    assert {res.id for res in results} == {"once-only"}
    assert r.zcard("arq:queue") == 1
    assert loads(r.get("arq:job:once-only"))["a"] in ([i, i] for i in range(100))
    # Every caller sees the one job that was queued.
    assert len({tuple(res.args) for res in results}) == 1


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def _tasks_at(url):
    from django.conf import settings

    options = {**settings.TASKS["default"]["OPTIONS"], "REDIS_URL": url}
    return {"default": {**settings.TASKS["default"], "OPTIONS": options}}


def test_enqueue_with_redis_down_fails_fast_with_a_clear_error():
    with override_settings(TASKS=_tasks_at(_dead_url())):
        started = time.monotonic()
        with pytest.raises(QueueUnavailable, match="unreachable"):
            tasks.add.enqueue(1, 2)
        assert time.monotonic() - started < 10  # bounded, not hanging


async def test_aenqueue_with_redis_down_fails_with_a_clear_error():
    with override_settings(TASKS=_tasks_at(_dead_url())):
        with pytest.raises(QueueUnavailable, match=r"127\.0\.0\.1"):
            await tasks.aadd.aenqueue(1, 2)


def test_a_database_number_redis_does_not_have_names_the_fix(test_redis):
    # Before: redis-py's bare ResponseError('DB index is out of range').
    with override_settings(TASKS=_tasks_at(test_redis.url.rsplit("/", 1)[0] + "/99")):
        with pytest.raises(EnqueueError, match="below Redis's `databases` setting"):
            tasks.add.enqueue(1, 2)


def test_a_wrong_password_is_not_called_unreachable(test_redis):
    # Before: "Redis at ... is unreachable (AUTH <password> called without any
    # password configured ...)", which sends one looking at the network.
    url = test_redis.url.replace("redis://", "redis://:wrong@")
    with override_settings(TASKS=_tasks_at(url)):
        with pytest.raises(QueueUnavailable, match="check the user and password"):
            tasks.add.enqueue(1, 2)


def test_task_outside_autodiscovered_modules_is_refused():
    from django.tasks import task

    def stray(x):
        return x

    stray.__module__ = "somewhere.not_discovered"
    stray.__qualname__ = "stray"
    with pytest.raises(InvalidTask, match="workers do not import"):
        task(stray)


def test_jobs_task_validates_its_own_settings():
    from django.tasks import task

    def fine(x):
        return x

    fine.__module__ = "tests.tasks"
    fine.__qualname__ = "fine"
    with pytest.raises(InvalidTask, match="max_attempts"):
        task(max_attempts=0)(fine)
    with pytest.raises(InvalidTask, match="timeout"):
        task(timeout=-1)(fine)


def test_no_pickle_anywhere_in_redis(r):
    tasks.add.enqueue(1, 2)
    for key in r.keys("*"):
        if r.type(key) == b"string":
            value = r.get(key)
            assert value[:1] != b"\x80", key
            with pytest.raises(pickle.UnpicklingError):
                pickle.loads(value)


def test_a_job_id_is_reserved_no_longer_than_its_result_is_kept(r):
    base = settings.TASKS["default"]
    options = {**base["OPTIONS"], "RESULT_TTL": 1}
    with override_settings(TASKS={"default": {**base, "OPTIONS": options}}):
        backend = task_backends["default"]
        first = backend.enqueue(tasks.add, [1, 2], {}, job_id="nightly-report")
        reserved_until = r.execute_command("PEXPIRETIME", "jobs:unique:nightly-report")
        kept_until = r.execute_command("PEXPIRETIME", backend.results.raw_key(first.id))
        assert 0 < reserved_until <= kept_until
        drain()
        assert first.get(timeout=5) == 3
        # The result expires, and the id with it: the same id queues a new job.
        wait_until(lambda: not backend.results.get("nightly-report"), timeout=5)
        again = backend.enqueue(tasks.add, [2, 3], {}, job_id="nightly-report")
        assert again.status == TaskResultStatus.READY
        drain()
        assert again.get(timeout=5) == 5


@pytest.mark.parametrize("job_id", ["", "has space", "x" * 201, "é"])
def test_a_job_id_that_no_result_could_be_read_by_is_refused(job_id):
    with pytest.raises(ValueError, match="must be 1 to 200 letters"):
        task_backends["default"].enqueue(tasks.add, [1, 2], {}, job_id=job_id)


@pytest.mark.parametrize(
    ("args", "kwargs", "problem"),
    [
        ([1], {}, "missing a required argument: 'y'"),
        ([1, 2, 3], {}, "too many positional arguments"),
        ([1, 2], {"z": 2}, "got an unexpected keyword argument 'z'"),
    ],
)
def test_arguments_the_task_cannot_take_are_refused_at_enqueue(
    r, args, kwargs, problem
):
    with pytest.raises(BadArguments) as refused:
        tasks.add.enqueue(*args, **kwargs)
    # The message schedules and the admin give for the same arguments.
    assert str(refused.value) == (
        f"tests.tasks.add cannot be called with these arguments: {problem}."
    )
    assert isinstance(refused.value, TypeError)  # what calling add() would raise
    assert r.zcard("arq:queue") == 0  # nothing written


async def test_a_context_task_is_checked_without_its_context(r):
    with pytest.raises(BadArguments, match="missing a required argument: 'value'"):
        await tasks.with_context.aenqueue()
    result = await tasks.with_context.aenqueue(5)
    assert result.args == [5]
