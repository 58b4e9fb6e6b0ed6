"""A hung Redis (SIGSTOPped: the kernel still accepts connections, nothing answers)
never hangs the caller: every call raises QueueUnavailable within its bound.

Each call runs in a thread joined with a generous limit: a call still blocked
after it is the defect (redis-py's nested health-check retries held a sync
enqueue for ~400 s), not a slow machine.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.tasks import default_task_backend
from django.test import override_settings

from jobs import QueueUnavailable
from jobs.backend import JobsBackend
from tests import tasks
from tests.servers import RedisServer, settings_for, wait_until

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]

LIMIT = 20  # seconds a call may take before it counts as hung (bounds are 1-5 s)
SHORT = {"socket_timeout": 1.0}  # REDIS_OPTIONS of the tests that make many calls


def outcome_of(call: Callable[[], Any]) -> BaseException | str:
    """What `call` raised (or "returned"), or "hung" after LIMIT seconds."""
    return outcomes_of([call], LIMIT)[0]


def outcomes_of(calls: list[Callable[[], Any]], limit: float) -> list[Any]:
    """outcome_of() for calls made at once, each given `limit` seconds."""
    boxes: list[list[BaseException | str]] = [[] for _ in calls]

    def run(call: Callable[[], Any], box: list[BaseException | str]) -> None:
        try:
            call()
            box.append("returned")
        except BaseException as e:
            box.append(e)

    threads = [
        threading.Thread(target=run, args=pair, daemon=True)
        for pair in zip(calls, boxes, strict=True)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + limit
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [box[0] if box else "hung" for box in boxes]


def backend() -> JobsBackend:
    return cast(JobsBackend, default_task_backend)


def settings_with(server: RedisServer, redis_options: dict[str, Any]) -> Any:
    overridden = settings_for(server.url)
    options = overridden["TASKS"]["default"]["OPTIONS"]  # type: ignore[index]
    options["REDIS_OPTIONS"] = redis_options
    return override_settings(**overridden)


def test_sync_enqueue_on_a_stopped_redis_raises_within_the_default_timeout(own_redis):
    server = own_redis()  # SIGKILLed at teardown, stopped or not
    with settings_with(server, {}):
        tasks.add.enqueue(1, 1)  # a pooled connection, as in a warm web process
        server.proc.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        error = outcome_of(lambda: tasks.add.enqueue(1, 2))
        print(
            f"[measured] enqueue on a stopped Redis: {error!r} after "
            f"{time.monotonic() - started:.2f} s (default socket_timeout)"
        )
        assert isinstance(error, QueueUnavailable), error
        assert "not enqueued" in str(error)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda r: tasks.add.enqueue(2, 2), id="enqueue"),
        pytest.param(lambda r: asyncio.run(tasks.add.aenqueue(2, 2)), id="aenqueue"),
        pytest.param(lambda r: default_task_backend.get_result(r.id), id="get_result"),
        pytest.param(
            lambda r: asyncio.run(default_task_backend.aget_result(r.id)),
            id="aget_result",
        ),
        pytest.param(lambda r: r.refresh(), id="refresh"),
        pytest.param(lambda r: r.get(timeout=30), id="get"),
        pytest.param(lambda r: asyncio.run(r.aget(timeout=30)), id="aget"),
        pytest.param(lambda r: backend().cancel(r.id), id="cancel"),
    ],
)
def test_every_call_on_a_stopped_redis_raises_queue_unavailable(own_redis, call):
    server = own_redis()
    with settings_with(server, SHORT):
        result = tasks.add.enqueue(1, 1)
        server.proc.send_signal(signal.SIGSTOP)
        error = outcome_of(lambda: call(result))
        assert isinstance(error, QueueUnavailable), error
        assert "127.0.0.1" in str(error)


def test_the_worker_survives_a_stopped_then_continued_redis(own_redis, worker_process):
    server = own_redis()
    options = json.dumps({"REDIS_OPTIONS": SHORT, "LEASE": 3})
    with settings_with(server, SHORT):
        worker = worker_process(
            "-c", "5", REDIS_URL=server.url, JOBS_TEST_OPTIONS=options
        )
        first: Any = tasks.add.enqueue(1, 1)
        assert first.get(timeout=LIMIT) == 2
        server.proc.send_signal(signal.SIGSTOP)
        # The worker's calls time out (1 s each) until it says Redis is away.
        wait_until(
            lambda: "Redis unavailable" in worker.output(),
            timeout=LIMIT,
            what="the worker to find Redis unavailable",
        )
        server.proc.send_signal(signal.SIGCONT)
        after: list[Any] = [tasks.add.enqueue(i, i) for i in range(10)]
        assert [r.get(timeout=LIMIT) for r in after] == [2 * i for i in range(10)]
        assert worker.proc.poll() is None
        assert "Redis is back after" in worker.output()


def results_cache_on(server: RedisServer, **options: Any) -> Any:
    """TASKS on the session's Redis, results in a cache of the user's on `server`."""
    cache = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": server.url,
        "OPTIONS": {"serializer": "jobs.serialization.CacheSerializer", **options},
    }
    base = settings.TASKS["default"]
    backend = {**base, "OPTIONS": {**base["OPTIONS"], "RESULTS_CACHE": "results"}}
    return override_settings(
        CACHES={**settings.CACHES, "results": cache}, TASKS={"default": backend}
    )


def test_a_results_cache_without_socket_timeout_is_warned_of_as_it_hangs(own_redis):
    server = own_redis()
    with results_cache_on(server):
        with pytest.raises(SystemCheckError, match=r"jobs\.W002"):
            call_command("check", fail_level="WARNING")
        result = tasks.add.enqueue(1, 1)
        server.proc.send_signal(signal.SIGSTOP)
        # The warning's reason: still blocked past the queue's own bound (5 s).
        calls = [lambda: tasks.add.enqueue(1, 2), lambda: result.refresh()]
        assert outcomes_of(calls, 7) == ["hung", "hung"]


def test_a_results_cache_with_the_hinted_socket_timeout_raises(own_redis):
    server = own_redis()
    with results_cache_on(server, socket_timeout=1):
        call_command("check", fail_level="WARNING")  # no warning
        result = tasks.add.enqueue(1, 1)
        server.proc.send_signal(signal.SIGSTOP)
        for call in [lambda: tasks.add.enqueue(1, 2), lambda: result.refresh()]:
            error = outcome_of(call)
            assert isinstance(error, QueueUnavailable), error
