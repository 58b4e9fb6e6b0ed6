"""A worker without Redis still obeys signals: at start-up and when Redis dies.

Before, a worker started while Redis was down ignored SIGINT and SIGTERM until
its 30 s start-up deadline, then died with a chained traceback; one whose Redis
died under it ended a Ctrl-C with tracebacks.
"""

from __future__ import annotations

import os
import signal

import pytest

from tests.servers import WorkerProcess, free_port, wait_until

pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True)]

STOPPED = 10  # seconds a stopping worker may take here (the old wait was 30 s)
# Seconds a worker process may take to start (Python, Django, the task modules)
# before it first reaches Redis: up to 11.6 s was seen on a loaded machine, so
# STOPPED is counted from that first try, not from the process's start.
STARTED = 30


def first_try(worker: WorkerProcess) -> None:
    """Wait until the worker has tried Redis: it said it waits, or it ended."""
    wait_until(
        lambda: (
            "waiting for Redis" in worker.output() or worker.proc.poll() is not None
        ),
        timeout=STARTED,
        what="the worker's first try",
    )


def closed_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_a_worker_waiting_for_redis_stops_on_a_signal(worker_process, sig):
    worker = worker_process(REDIS_URL=closed_url())
    first_try(worker)
    wait_until(lambda: "(try 2," in worker.output(), what="a second try")
    worker.signal(sig)
    assert worker.wait(STOPPED) == 0
    output = worker.output()
    assert f"{sig.name}: stopping" in output
    assert "Traceback" not in output
    # One line a try, further apart each time (0.5 s, then 1 s...).
    assert "next in 0.5 s" in output and "next in 1.0 s" in output


def test_redis_wait_is_a_start_up_deadline(worker_process):
    worker = worker_process("--redis-wait", "0.5", REDIS_URL=closed_url())
    first_try(worker)
    assert worker.wait(STOPPED) == 1
    output = worker.output()
    assert "did not answer within 0.5 s (--redis-wait)" in output
    assert "Traceback" not in output


def test_a_database_number_redis_does_not_have_stops_the_worker(worker_process):
    # Redis answered: waiting cannot help. Before, the worker waited for ever
    # ("waiting for Redis ... DB index is out of range", one line a try).
    server_url = os.environ["REDIS_URL"]  # the session's Redis (tests/conftest.py)
    worker = worker_process(REDIS_URL=server_url.rsplit("/", 1)[0] + "/99")
    first_try(worker)
    assert worker.wait(STOPPED) == 1
    output = worker.output()
    assert "below Redis's `databases` setting" in output
    assert "waiting for Redis" not in output and "Traceback" not in output


def test_credentials_redis_refuses_stop_the_worker(worker_process):
    # Before, the worker waited for ever ("waiting for Redis ... invalid
    # username-password pair", one line a try) as if Redis were down.
    server_url = os.environ["REDIS_URL"]
    worker = worker_process(REDIS_URL=server_url.replace("redis://", "redis://:wrong@"))
    first_try(worker)
    assert worker.wait(STOPPED) == 1
    output = worker.output()
    assert "check the user and password in REDIS_URL" in output
    assert "waiting for Redis" not in output and "Traceback" not in output


def test_a_worker_whose_redis_died_stops_cleanly_on_sigint(own_redis, worker_process):
    server = own_redis()
    worker = worker_process(REDIS_URL=server.url)
    wait_until(
        lambda: "consuming" in worker.output(),
        timeout=STARTED,
        what="the worker's start",
    )
    server.stop(signal.SIGKILL)
    wait_until(lambda: "Redis unavailable" in worker.output(), what="the outage")
    worker.signal(signal.SIGINT)
    assert worker.wait(STOPPED) == 0
    output = worker.output()
    assert "Traceback" not in output
    assert "Task was destroyed" not in output
    assert "stopped without Redis" in output
