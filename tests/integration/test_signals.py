"""jobs.signals: task_retried, task_failed, worker_ready, worker_stopping, sent
by a real (in-process, burst) worker."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.dispatch import Signal
from django.tasks.signals import task_finished
from django.test import override_settings

from jobs import signals
from jobs.backend import JobsBackend
from jobs.redis.keys import queue_key
from jobs.serialization import JobPayload
from jobs.testing import drain
from jobs.worker import JobsWorker
from tests import tasks
from tests.servers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def heard() -> Iterator[list[tuple[str, Any, dict[str, Any]]]]:
    """What each signal of jobs.signals was sent with, in order."""
    got: list[tuple[str, Any, dict[str, Any]]] = []
    receivers = {}
    for name in ("task_retried", "task_failed", "worker_ready", "worker_stopping"):

        def receiver(sender: Any, name: str = name, **named: Any) -> None:
            named.pop("signal")
            got.append((name, sender, named))

        signal: Signal = getattr(signals, name)
        signal.connect(receiver, weak=False)
        receivers[name] = receiver
    yield got
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


def test_retries_failures_and_the_worker_s_life(heard):
    flaky = tasks.flaky.enqueue("test:signals")  # fails twice, then succeeds
    boom = tasks.boom.enqueue("final")
    drain()
    names = [name for name, _, _ in heard]
    assert names[0] == "worker_ready" and names[-1] == "worker_stopping"
    assert sorted(names[1:-1]) == ["task_failed", "task_retried", "task_retried"]
    retried = [named for name, _, named in heard if name == "task_retried"]
    assert {r["task_result"].id for r in retried} == {flaky.id}
    assert all(isinstance(r["exception"], ConnectionError) for r in retried)
    assert all(r["delay"] >= 0 for r in retried)
    [(_, sender, failed)] = [h for h in heard if h[0] == "task_failed"]
    assert sender is JobsBackend and failed["task_result"].id == boom.id
    assert str(failed["exception"]) == "final"
    assert isinstance(heard[0][2]["worker"], JobsWorker)


def test_a_receiver_that_raises_changes_nothing(heard, caplog):
    def broken(sender: Any, **named: Any) -> None:
        raise RuntimeError("receiver bug")

    signals.task_failed.connect(broken, weak=False)
    try:
        result = tasks.boom.enqueue("final")
        drain()
    finally:
        signals.task_failed.disconnect(broken)
    result.refresh()
    assert result.status == "FAILED"
    assert "signal receiver" in caplog.text and "receiver bug" in caplog.text


@pytest.fixture
def ended() -> Iterator[list[tuple[str, str, str, str]]]:
    """(signal, job id, status, exception class) for task_failed and Django's
    task_finished, in the order sent."""
    got: list[tuple[str, str, str, str]] = []

    def on_failed(sender: Any, task_result: Any, exception: Any, **named: Any) -> None:
        got.append(
            ("failed", task_result.id, task_result.status, type(exception).__name__)
        )

    def on_finished(sender: Any, task_result: Any, **named: Any) -> None:
        error = sys.exc_info()[1]
        got.append(
            ("finished", task_result.id, task_result.status, type(error).__name__)
        )

    signals.task_failed.connect(on_failed, weak=False)
    task_finished.connect(on_finished, weak=False)
    yield got
    signals.task_failed.disconnect(on_failed)
    task_finished.disconnect(on_finished)


def test_jobs_recorded_failed_without_running_send_both_signals(ended, r, caplog):
    expired = tasks.add.using(expires=0.1).enqueue(1, 1)
    wait_until(lambda: not r.exists(f"arq:job:{expired.id}"), what="the expiry")
    too_big = tasks.blob.enqueue(2_000_000)  # ran; its result is over MAX_RESULT
    aborted = tasks.add.enqueue(1, 2)
    r.zadd("arq:abort", {aborted.id: 0})  # as arq's Job.abort(): seen at the claim
    exhausted = tasks.add.enqueue(1, 3)
    r.set(f"arq:retry:{exhausted.id}", 3)  # 3 runs lost with their workers
    base = settings.TASKS["default"]
    with override_settings(TASKS={"default": base, "b": base}):
        foreign = tasks.add.using(backend="b").enqueue(2, 2)  # a worker of default's
        # A task no worker has: no TaskResult can name it, so no signal; logged.
        _plant(r, "unknown", "tests.tasks.nope")
        with caplog.at_level(logging.ERROR, logger="jobs.worker"):
            drain()
    expected = {
        expired.id: "JobExpired",
        too_big.id: "PayloadTooLarge",
        aborted.id: "JobCancelled",
        exhausted.id: "AttemptsExhausted",
        foreign.id: "JobNotRunnable",
    }
    for job_id, error in expected.items():
        assert [e for e in ended if e[1] == job_id] == [
            ("failed", job_id, "FAILED", error),
            ("finished", job_id, "FAILED", error),
        ]
    assert len(ended) == 2 * len(expected)  # nothing for the unknown task
    assert "job unknown cannot run" in caplog.text


def _plant(r, job_id: str, task_path: str) -> None:
    payload = JobPayload(
        task_path=task_path,
        args=[],
        kwargs={},
        enqueued_ms=0,
        queue_name="default",
        backend="default",
    )
    r.set(f"arq:job:{job_id}", payload.encode())
    r.zadd(queue_key("default"), {job_id: 0})
